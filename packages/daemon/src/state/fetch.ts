/**
 * Fetching a state repository: a shallow clone of its branch into a scratch
 * directory (no checkout), the commit's author and message, and the files of
 * the state layout read straight from git's objects. Nothing of the
 * repository touches the file system as files, so links in it are never
 * followed: a link or a submodule where a state file belongs is reported.
 * Bounded in time, bytes downloaded, files and bytes per file.
 */
import fs from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import type { StateFile, StateProblem } from "@townos/api";
import * as git from "isomorphic-git";
import { cloneShallow, type GitSession } from "../git/network.js";
import { ObjectReader } from "../git/objects.js";
import { checkBranchName, parseRemoteUrl } from "../git/remote.js";
import { deadline } from "../git/transport.js";
import { gitError } from "../git/errors.js";
import { MAX_STATE_FILE_BYTES, MAX_STATE_FILES } from "./layout.js";

/** Directories holding state files, and how deep their files are. */
const STATE_DIRS: ReadonlyMap<string, number> = new Map([
  ["apps", 2],
  ["volumes", 1],
  ["pages", 1],
]);
const TIMEOUT_MS = 120_000;
const MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024;
const MAX_MESSAGE_CHARS = 200;

export interface StateRemote {
  url: string;
  branch: string | null;
  username: string | null;
  password: string | null;
}

export interface FetchedState {
  commit: string;
  /** "Name <email>" of the commit's author. */
  author: string | null;
  /** The message's first line. */
  message: string | null;
  files: StateFile[];
  /** Entries where a state file belongs that are not one (links, submodules, too large). */
  problems: StateProblem[];
}

/**
 * @throws TownError `invalid_argument` (URL, branch), `not_found` (branch,
 *   empty repository), `io` (network, HTTP, credentials, timeout)
 */
export async function fetchState(
  remote: StateRemote,
  options: { scratchRoot: string; signal?: AbortSignal; timeoutMs?: number },
): Promise<FetchedState> {
  const parsed = parseRemoteUrl(remote.url);
  if (remote.branch !== null) checkBranchName(remote.branch);
  await mkdir(options.scratchRoot, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(options.scratchRoot, "state-"));
  const bound = deadline(options.timeoutMs ?? TIMEOUT_MS, options.signal);
  const session: GitSession = {
    url: parsed.url,
    display: parsed.display,
    branch: remote.branch ?? undefined,
    credentials:
      remote.username !== null
        ? { username: remote.username, password: remote.password ?? "" }
        : parsed.credentials,
    maxDownloadBytes: MAX_DOWNLOAD_BYTES,
    maxObjectBytes: MAX_DOWNLOAD_BYTES,
    signal: bound.signal,
    onProgress: undefined,
  };
  try {
    const cache = {};
    await cloneShallow(session, dir, cache);
    try {
      const commit = await git.resolveRef({ fs, dir, ref: "HEAD" });
      const { commit: object } = await git.readCommit({ fs, dir, oid: commit, cache });
      const read = await readStateFiles(dir, commit, bound.signal);
      return {
        commit,
        author: `${object.author.name} <${object.author.email}>`.slice(0, MAX_MESSAGE_CHARS),
        message: (object.message.split("\n")[0] ?? "").slice(0, MAX_MESSAGE_CHARS) || null,
        ...read,
      };
    } catch (error) {
      throw gitError(error, session, "read");
    }
  } finally {
    bound.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The state layout's files of the commit: root YAML files and those in the state directories. */
async function readStateFiles(
  dir: string,
  commit: string,
  signal: AbortSignal,
): Promise<{ files: StateFile[]; problems: StateProblem[] }> {
  const reader = new ObjectReader(undefined, MAX_STATE_FILE_BYTES);
  const files: StateFile[] = [];
  const problems: StateProblem[] = [];
  const take = async (path: string, entry: git.TreeEntry, depth: number): Promise<void> => {
    signal.throwIfAborted();
    if (files.length + problems.length >= MAX_STATE_FILES) {
      throw new Error(`the repository has more than ${MAX_STATE_FILES} state files`);
    }
    if (depth > 0) {
      if (entry.type !== "tree") {
        if (/\.ya?ml$/.test(path))
          problems.push({ path, message: "is not where a state file goes" });
        return;
      }
      for (const child of await reader.tree(dir, entry.oid)) {
        await take(`${path}/${child.path}`, child, depth - 1);
      }
      return;
    }
    if (!/\.ya?ml$/.test(path)) return;
    // 100644/100755 are files; 120000 a link, 160000 a submodule.
    if (entry.type !== "blob" || entry.mode === "120000") {
      problems.push({ path, message: "must be a regular file (links are not followed)" });
      return;
    }
    const content = await reader.blob(dir, entry.oid);
    if ("reason" in content) problems.push({ path, message: content.reason });
    else files.push({ path, text: content.text });
  };
  for (const entry of await reader.tree(dir, commit)) {
    await take(entry.path, entry, STATE_DIRS.get(entry.path) ?? 0);
  }
  return { files: files.sort((a, b) => a.path.localeCompare(b.path)), problems };
}
