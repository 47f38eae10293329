import { DEFAULT_SYNC_TIMEOUT_MS, removeRepository } from "../repos/git-sync.js";
import type { RepositoryFetcher } from "./catalog.js";
import type { RepositoryJobs } from "./repository-jobs.js";

/**
 * The catalog's access to git: isomorphic-git over http(s), clones under the
 * data dir, each fetch or read (and the parsing of what it read) in a worker.
 */
export function gitFetcher(jobs: RepositoryJobs): RepositoryFetcher {
  return {
    sync: async (config, dir) => {
      const options = {
        dir,
        url: config.url,
        ...(config.username !== null ? { username: config.username } : {}),
        ...(config.password !== null ? { password: config.password } : {}),
      };
      // git has its own timeout (a little grace for the worker to notice); the budget is for parsing.
      const { fetched } = await jobs.run({ kind: "sync", options }, DEFAULT_SYNC_TIMEOUT_MS + 5000);
      if (!fetched) throw new Error("git: the sync returned nothing");
      return fetched;
    },
    readLocal: async (dir) => (await jobs.run({ kind: "read", dir })).fetched,
    remove: (dir) => removeRepository(dir),
  };
}
