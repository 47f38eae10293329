/**
 * Keeps a local copy of a package repository in step with its git remote and
 * reads the package files out of it.
 *
 * Package repositories are git repositories laid out as
 * `packages/<name>/<version>.yaml` plus an optional `featured.json` at the
 * root. `syncRepository` clones one into a directory on first use and fetches
 * into that clone afterwards, over http(s) with isomorphic-git (no system git
 * needed). There is no work tree: files are read straight from the git
 * objects of the fetched commit, and `changedPaths` says which repository
 * files differ from the commit the previous sync returned.
 *
 * Repositories are untrusted, so everything is bounded: the bytes downloaded
 * and the size every fetched object inflates to (`git/transport.ts`), the
 * number of package files, the size of each and of all of them together
 * (`snapshot.ts`), and the time taken. Credentials never reach the clone's
 * config or a message (`git/remote.ts`).
 *
 * How the clone is kept:
 * - The first clone is shallow (depth 1): only the current snapshot.
 * - Later syncs fetch without a depth. isomorphic-git re-sends the whole
 *   snapshot on every `depth: 1` fetch (the server ignores what we have), so
 *   a plain fetch, which downloads only the commits since the last sync, is
 *   far cheaper.
 * - The local branch (`HEAD`) always points at the commit the last successful
 *   sync returned. It only moves once the files of the new commit have been
 *   read, so a failed sync is simply retried by the next one.
 * - isomorphic-git never repacks: every fetch adds a pack file. After
 *   `MAX_PACK_FILES` of them, or when the URL or branch changed, the local
 *   state looks broken, the remote history was rewritten out of reach, or a
 *   fetch would download more than allowed, the repository is cloned afresh
 *   into a temporary sibling directory and swapped in. `changedPaths` is still
 *   computed against the old clone when it was readable.
 * - What a sync read is memoized in-process by object id (`memos`,
 *   `git/objects.ts`): a refresh then reads only the trees and blobs that are new.
 *
 * Calls for the same directory are serialized within this process.
 * The directory belongs to this module: a fresh clone replaces it wholesale.
 */
import fs from "node:fs";
import { mkdir, mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import * as git from "isomorphic-git";
import {
  MAX_PACKAGE_FILE_BYTES,
  MAX_REPOSITORY_BYTES,
  MAX_REPOSITORY_FILES,
  TownError,
  type RepositoryFile,
} from "@townos/format";
import { diffEntries, type TreeFile } from "../git/diff.js";
import { DownloadLimit, emptyRepository, gitError, type GitErrorContext } from "../git/errors.js";
import { cloneShallow, fetchBranch, type GitProgress, type GitSession } from "../git/network.js";
import { ObjectReader, type ObjectMemo } from "../git/objects.js";
import { checkBranchName, credentialsFor, parseRemoteUrl } from "../git/remote.js";
import { ABANDON_GRACE_MS, deadline, settleWithin } from "../git/transport.js";
import { KeyedLock } from "../system/mutex.js";
import {
  readSnapshot,
  listRepositoryFiles,
  type SkippedFile,
  type Snapshot,
  type SnapshotContext,
} from "./snapshot.js";

/** How long one sync may take, lock wait and network included. */
export const DEFAULT_SYNC_TIMEOUT_MS = 120_000;
/** How many bytes one clone or fetch may download, across all its HTTP responses. */
export const DEFAULT_MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024;
/** How many repository files (and package directories) one repository may have. */
export const DEFAULT_MAX_REPOSITORY_FILES = MAX_REPOSITORY_FILES;
/**
 * The largest a git object may be once inflated: isomorphic-git inflates each
 * object of a pack whole, so this bounds its memory whatever the download.
 */
export const MAX_OBJECT_BYTES = 64 * 1024 * 1024;
/** Pack files a clone may gather (one per fetch that brought something) before it is re-cloned. */
export const MAX_PACK_FILES = 32;

export interface SyncOptions {
  /** The directory of the local clone; created when missing, owned by this module. */
  dir: string;
  /** `http://` or `https://` URL of the repository. Credentials in it are used, then dropped. */
  url: string;
  /** Branch to follow. Default: the remote's default branch (its `HEAD`), followed as it moves. */
  branch?: string;
  /** HTTP basic-auth user; taken over credentials embedded in the URL. */
  username?: string;
  password?: string;
  signal?: AbortSignal;
  /** Default `DEFAULT_SYNC_TIMEOUT_MS`. */
  timeoutMs?: number;
  /** Default `DEFAULT_MAX_DOWNLOAD_BYTES`. */
  maxDownloadBytes?: number;
  /** Default `DEFAULT_MAX_REPOSITORY_FILES`. */
  maxFiles?: number;
  /** How many bytes the package files may hold together; default `MAX_REPOSITORY_BYTES`. */
  maxBytes?: number;
  /** Git's own phases ("Receiving objects", …) and "Reading files". */
  onProgress?: (progress: GitProgress) => void;
}

export interface SyncResult {
  /** The commit the files were read from. */
  commit: string;
  /** The commit the previous sync returned, when the clone had one. */
  previousCommit: string | null;
  /** `featured.json` and `packages/<name>/<version>.yaml`, sorted by path. */
  files: RepositoryFile[];
  /** Repository files left out: too large, not UTF-8, not a regular file. */
  skipped: SkippedFile[];
  /**
   * Repository paths (read or skipped) added, modified or deleted since
   * `previousCommit`, sorted; `null` when there is nothing to compare with
   * (first clone, unreadable old clone): treat every file as changed.
   */
  changedPaths: string[] | null;
}

/**
 * Brings the clone in `options.dir` up to date with the remote and returns
 * the repository files of the remote branch's head commit.
 *
 * @throws TownError `invalid_argument` for a URL that is not http(s) or a bad
 *   branch name, or a repository over the download or file-count limits;
 *   `not_found` when the branch does not exist or the repository is empty;
 *   `io` for network, HTTP, authentication and git failures, and timeouts.
 */
export async function syncRepository(options: SyncOptions): Promise<SyncResult> {
  const remote = parseRemoteUrl(options.url);
  if (options.branch !== undefined) checkBranchName(options.branch);
  const bound = deadline(options.timeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS, options.signal);
  const dir = resolve(options.dir);
  const ctx: SyncContext = {
    dir,
    url: remote.url,
    display: remote.display,
    branch: options.branch,
    credentials: credentialsFor(remote, options.username, options.password),
    maxDownloadBytes: options.maxDownloadBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES,
    maxObjectBytes: MAX_OBJECT_BYTES,
    maxFiles: options.maxFiles ?? DEFAULT_MAX_REPOSITORY_FILES,
    maxBytes: options.maxBytes ?? MAX_REPOSITORY_BYTES,
    onProgress: options.onProgress,
    signal: bound.signal,
    objects: new ObjectReader(memos.get(dir), MAX_PACKAGE_FILE_BYTES),
    pending: new Set(),
  };
  try {
    return await withDirLock(ctx, async () => {
      const result = await sync(ctx);
      memos.set(dir, ctx.objects.used);
      return result;
    });
  } catch (error) {
    throw gitError(error, ctx, "sync");
  } finally {
    bound.stop();
  }
}

/**
 * Reads the files of the commit the last sync returned, from the local clone
 * alone (no network): what a daemon serves right after it starts. Also warms
 * the memo, so the first sync afterwards reads only what changed.
 * `changedPaths` and `previousCommit` are null. Undefined when `dir` holds no
 * clone.
 *
 * @throws TownError `io` when the clone is unreadable (the next sync replaces
 *   it), `invalid_argument` when it has more than `maxFiles` package files.
 */
export async function readLocalRepository(
  dir: string,
  options: { maxFiles?: number; maxBytes?: number } = {},
): Promise<SyncResult | undefined> {
  const path = resolve(dir);
  if (!fs.existsSync(join(path, ".git"))) return undefined;
  const stored = await git
    .getConfig({ fs, dir: path, path: "remote.origin.url" })
    .then(configString, () => undefined);
  const display = stored === undefined ? path : parseRemoteUrl(stored).display;
  const ctx: SnapshotContext & LockContext & GitErrorContext = {
    dir: path,
    display,
    branch: undefined,
    credentials: undefined,
    maxFiles: options.maxFiles ?? DEFAULT_MAX_REPOSITORY_FILES,
    maxBytes: options.maxBytes ?? MAX_REPOSITORY_BYTES,
    onProgress: undefined,
    signal: new AbortController().signal,
    objects: new ObjectReader(memos.get(path), MAX_PACKAGE_FILE_BYTES),
    pending: new Set(),
  };
  try {
    return await withDirLock(ctx, async () => {
      if (!fs.existsSync(join(path, ".git"))) return undefined;
      const commit = await git.resolveRef({ fs, dir: path, ref: "HEAD" });
      const snapshot = await readSnapshot(ctx, path, commit);
      memos.set(path, ctx.objects.used);
      return {
        commit,
        previousCommit: null,
        files: snapshot.files,
        skipped: snapshot.skipped,
        changedPaths: null,
      };
    });
  } catch (error) {
    throw gitError(error, ctx, "read");
  }
}

/** Deletes a clone made by `syncRepository`, with any temporary directory left beside it. */
export async function removeRepository(dir: string): Promise<void> {
  const path = resolve(dir);
  const ctx = {
    dir: path,
    signal: new AbortController().signal,
    pending: new Set<Promise<unknown>>(),
  };
  await withDirLock(ctx, async () => {
    memos.delete(path);
    await rm(path, { recursive: true, force: true });
    await removeLeftovers(path);
  });
}

// ---------------------------------------------------------------------------

interface LockContext {
  dir: string;
  signal: AbortSignal;
  /** Git operations still running after their caller gave up on them. */
  pending: Set<Promise<unknown>>;
}

type SyncContext = GitSession & SnapshotContext & LockContext;

/** What is known about a local clone before syncing it. */
interface LocalState {
  commit: string;
  localBranch: string;
  url: string | undefined;
  branch: string | undefined;
  packFiles: number;
  entries: Map<string, TreeFile>;
}

/** The config key that records which branch option a clone was made for. */
const BRANCH_CONFIG = "townos.branch";
const DEFAULT_BRANCH_VALUE = "HEAD";

async function sync(ctx: SyncContext): Promise<SyncResult> {
  const local = await readLocalState(ctx);
  const canFetch =
    local !== undefined &&
    local.url === ctx.url &&
    local.branch === (ctx.branch ?? DEFAULT_BRANCH_VALUE) &&
    local.packFiles <= MAX_PACK_FILES;
  if (local && canFetch) {
    const fetched = await fetchInto(ctx, local);
    if (fetched) {
      await git.writeRef({
        fs,
        dir: ctx.dir,
        ref: `refs/heads/${local.localBranch}`,
        value: fetched.commit,
        force: true,
      });
      return result(fetched.commit, fetched.snapshot, local);
    }
  }
  return cloneFresh(ctx, local);
}

/**
 * Fetches into an existing clone and reads the new head. Returns undefined
 * when the clone cannot be brought up to date this way and must be replaced.
 */
async function fetchInto(
  ctx: SyncContext,
  local: LocalState,
): Promise<{ commit: string; snapshot: Snapshot } | undefined> {
  let commit: string | null;
  try {
    commit = await fetchBranch(ctx, ctx.dir, local.localBranch);
  } catch (error) {
    if (error instanceof DownloadLimit) return undefined;
    throw error;
  }
  if (commit === null) throw emptyRepository(ctx, "fetch");
  try {
    // The memo may know the trees even when this clone lacks the commit.
    await git.readCommit({ fs, dir: ctx.dir, oid: commit });
    return { commit, snapshot: await readSnapshot(ctx, ctx.dir, commit) };
  } catch (error) {
    // A missing or broken object: e.g. the branch was reset to a commit
    // beyond our shallow boundary, which the server assumes we have.
    if (error instanceof TownError || ctx.signal.aborted) throw error;
    return undefined;
  }
}

/** Clones into a temporary sibling directory, reads it, then swaps it in for `ctx.dir`. */
async function cloneFresh(ctx: SyncContext, local: LocalState | undefined): Promise<SyncResult> {
  await mkdir(dirname(ctx.dir), { recursive: true });
  await removeLeftovers(ctx.dir);
  const temp = await mkdtemp(`${ctx.dir}.clone-`);
  try {
    await cloneShallow(ctx, temp);
    let commit: string;
    try {
      commit = await git.resolveRef({ fs, dir: temp, ref: "HEAD" });
    } catch {
      throw emptyRepository(ctx, "clone");
    }
    await git.setConfig({
      fs,
      dir: temp,
      path: BRANCH_CONFIG,
      value: ctx.branch ?? DEFAULT_BRANCH_VALUE,
    });
    let snapshot: Snapshot;
    try {
      snapshot = await readSnapshot(ctx, temp, commit);
    } catch (error) {
      throw gitError(error, ctx, "read");
    }
    await replaceDir(temp, ctx.dir);
    return result(commit, snapshot, local);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

function result(commit: string, snapshot: Snapshot, local: LocalState | undefined): SyncResult {
  return {
    commit,
    previousCommit: local?.commit ?? null,
    files: snapshot.files,
    skipped: snapshot.skipped,
    changedPaths: local ? diffEntries(local.entries, snapshot.entries) : null,
  };
}

/** Reads what the existing clone holds; undefined when there is none or it is unreadable. */
async function readLocalState(ctx: SyncContext): Promise<LocalState | undefined> {
  if (!fs.existsSync(join(ctx.dir, ".git"))) return undefined;
  try {
    const localBranch = await git.currentBranch({ fs, dir: ctx.dir, fullname: false });
    if (!localBranch) return undefined;
    const commit = await git.resolveRef({ fs, dir: ctx.dir, ref: "HEAD" });
    const url = configString(await git.getConfig({ fs, dir: ctx.dir, path: "remote.origin.url" }));
    const branch = configString(await git.getConfig({ fs, dir: ctx.dir, path: BRANCH_CONFIG }));
    const packs = await readdir(join(ctx.dir, ".git", "objects", "pack"));
    const entries = await listRepositoryFiles(ctx, ctx.dir, commit);
    return {
      commit,
      localBranch,
      url,
      branch,
      packFiles: packs.filter((name) => name.endsWith(".pack")).length,
      entries,
    };
  } catch {
    ctx.signal.throwIfAborted();
    return undefined;
  }
}

function configString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/**
 * Per clone directory, the objects the last successful sync read (see
 * `ObjectReader`). This holds one snapshot of the package files per
 * directory, the same strings the caller was given.
 */
const memos = new Map<string, ObjectMemo>();

async function replaceDir(from: string, to: string): Promise<void> {
  if (!fs.existsSync(to)) {
    await rename(from, to);
    return;
  }
  const old = `${to}.old-${process.pid.toString()}-${Date.now().toString(36)}`;
  await rename(to, old);
  await rename(from, to);
  await rm(old, { recursive: true, force: true });
}

/** Removes `<dir>.clone-*` and `<dir>.old-*` siblings a crashed sync may have left. */
async function removeLeftovers(dir: string): Promise<void> {
  const parent = dirname(dir);
  const prefix = basename(dir);
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(`${prefix}.clone-`) || name.startsWith(`${prefix}.old-`)) {
      await rm(join(parent, name), { recursive: true, force: true });
    }
  }
}

/** Syncs, reads and removals of one clone directory, one at a time. */
const dirLocks = new KeyedLock();

/**
 * Runs `work` once every earlier call for the same directory has finished;
 * waiting counts against the caller's timeout. The directory stays locked
 * until git work the caller gave up on has stopped (or a grace period passed).
 */
async function withDirLock<T>(ctx: LockContext, work: () => Promise<T>): Promise<T> {
  const release = await dirLocks.acquire(ctx.dir, ctx.signal);
  try {
    return await work();
  } finally {
    void settleWithin([...ctx.pending], ABANDON_GRACE_MS).then(release);
  }
}
