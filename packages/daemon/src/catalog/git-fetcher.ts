import { readLocalRepository, removeRepository, syncRepository } from "../repos/git-sync.js";
import type { RepositoryFetcher } from "./catalog.js";

/** The catalog's access to git: isomorphic-git over http(s), clones under the data dir. */
export const gitFetcher: RepositoryFetcher = {
  sync: (config, dir) =>
    syncRepository({
      dir,
      url: config.url,
      ...(config.username !== null ? { username: config.username } : {}),
      ...(config.password !== null ? { password: config.password } : {}),
    }),
  readLocal: (dir) => readLocalRepository(dir),
  remove: (dir) => removeRepository(dir),
};
