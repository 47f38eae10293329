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
 * Repositories are untrusted, so everything is bounded: the bytes downloaded,
 * the size every fetched object inflates to (checked before git reads the
 * pack), the number of package files, the size of each and of all of them
 * together, and the time taken.
 * Credentials are handed to git only through its auth callback; they are
 * never written to the clone's config and never appear in error messages.
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
 * - Reading objects through isomorphic-git costs about 0.3 ms
 *   each, so what a sync read is memoized in-process by object id (see
 *   `memos`): a refresh then reads only the trees and blobs that are new.
 *
 * Calls for the same directory are serialized within this process.
 * The directory belongs to this module: a fresh clone replaces it wholesale.
 */
import fs from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import * as git from "isomorphic-git";
import nodeHttp from "isomorphic-git/http/node";
import type { GitHttpRequest, GitHttpResponse, HttpClient } from "isomorphic-git/http/node";
import {
  isRepositoryPath,
  MAX_PACKAGE_FILE_BYTES,
  MAX_REPOSITORY_BYTES,
  MAX_REPOSITORY_FILES,
  TownError,
  type RepositoryFile,
} from "@townos/format";
import { redactText } from "../redact.js";
import { oversizedObject } from "./pack-check.js";

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

/** A progress report: git's own phases ("Receiving objects", …) and "Reading files". */
export interface SyncProgress {
  phase: string;
  loaded: number;
  total?: number;
}

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
  onProgress?: (progress: SyncProgress) => void;
}

/** A repository file that was not read, and why. */
export interface SkippedFile {
  path: string;
  reason: string;
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
  const username = options.username ?? remote.username;
  const password = options.password ?? remote.password;
  const timeoutMs = options.timeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS;
  if (!(timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
    throw new TownError("invalid_argument", `git: timeout ${String(timeoutMs)} ms is out of range`);
  }
  const controller = new AbortController();
  const dir = resolve(options.dir);
  const ctx: SyncContext = {
    dir,
    url: remote.url,
    display: remote.display,
    branch: options.branch,
    credentials:
      username !== undefined || password !== undefined
        ? { username: username ?? "", password: password ?? "" }
        : undefined,
    maxDownloadBytes: options.maxDownloadBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES,
    maxFiles: options.maxFiles ?? DEFAULT_MAX_REPOSITORY_FILES,
    maxBytes: options.maxBytes ?? MAX_REPOSITORY_BYTES,
    onProgress: options.onProgress,
    signal: controller.signal,
    objects: new ObjectReader(memos.get(dir)),
    pending: new Set(),
  };
  const timer = setTimeout(() => {
    controller.abort(new Timeout(timeoutMs));
  }, timeoutMs);
  const onCallerAbort = () => {
    controller.abort(new Aborted());
  };
  options.signal?.addEventListener("abort", onCallerAbort, { once: true });
  if (options.signal?.aborted) onCallerAbort();
  try {
    return await withDirLock(ctx, async () => {
      const result = await sync(ctx);
      memos.set(dir, ctx.objects.used);
      return result;
    });
  } catch (error) {
    throw toTownError(error, ctx, "sync");
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onCallerAbort);
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
  const ctx: SyncContext = {
    dir: path,
    url: stored ?? "",
    display,
    branch: undefined,
    credentials: undefined,
    maxDownloadBytes: 0,
    maxFiles: options.maxFiles ?? DEFAULT_MAX_REPOSITORY_FILES,
    maxBytes: options.maxBytes ?? MAX_REPOSITORY_BYTES,
    onProgress: undefined,
    signal: new AbortController().signal,
    objects: new ObjectReader(memos.get(path)),
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
    throw toTownError(error, ctx, "read");
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

interface Credentials {
  username: string;
  password: string;
}

interface SyncContext {
  dir: string;
  /** The URL git talks to: no credentials, no fragment, no trailing slash. */
  url: string;
  /** The URL shown in messages: also without the query, which may hold tokens. */
  display: string;
  branch: string | undefined;
  credentials: Credentials | undefined;
  maxDownloadBytes: number;
  maxFiles: number;
  maxBytes: number;
  onProgress: ((progress: SyncProgress) => void) | undefined;
  signal: AbortSignal;
  objects: ObjectReader;
  /** Git operations still running after their caller gave up on them. */
  pending: Set<Promise<unknown>>;
}

/** What is known about a local clone before syncing it. */
interface LocalState {
  commit: string;
  localBranch: string;
  url: string | undefined;
  branch: string | undefined;
  packFiles: number;
  entries: Map<string, TreeFile>;
}

/** A repository path in a git tree. */
interface TreeFile {
  oid: string;
  mode: string;
  type: string;
}

interface Snapshot {
  entries: Map<string, TreeFile>;
  files: RepositoryFile[];
  skipped: SkippedFile[];
}

/** The config key that records which branch option a clone was made for. */
const BRANCH_CONFIG = "townos.branch";
const DEFAULT_BRANCH_VALUE = "HEAD";
/** The longest delay `setTimeout` honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

class Timeout extends Error {
  constructor(readonly ms: number) {
    super(`timed out after ${ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`}`);
  }
}

class Aborted extends Error {
  constructor() {
    super("aborted");
  }
}

/** The download limit was hit: a fresh shallow clone may still fit. */
class DownloadLimit extends Error {
  constructor(readonly limit: number) {
    super(`the download is larger than ${limit} bytes`);
  }
}

/** A fetched pack holds an object that would inflate past `MAX_OBJECT_BYTES`. */
class ObjectTooLarge extends Error {}

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
  const gitdir = join(ctx.dir, ".git");
  // isomorphic-git records the new shallow commits before the pack arrives.
  const shallow = await readFile(join(gitdir, "shallow")).catch(() => undefined);
  let commit: string | null;
  try {
    const fetched = await runGit(ctx, "fetch", (http, cache) =>
      git.fetch({
        fs,
        http,
        cache,
        dir: ctx.dir,
        ref: local.localBranch,
        remoteRef: ctx.branch === undefined ? "HEAD" : `refs/heads/${ctx.branch}`,
        singleBranch: true,
        tags: false,
        ...gitCallbacks(ctx),
      }),
    );
    commit = fetched.fetchHead;
  } catch (error) {
    if (shallow) await writeFile(join(gitdir, "shallow"), shallow).catch(() => undefined);
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
    await runGit(ctx, "clone", (http, cache) =>
      git.clone({
        fs,
        http,
        cache,
        dir: temp,
        url: ctx.url,
        ref: ctx.branch,
        singleBranch: true,
        noCheckout: true,
        noTags: true,
        depth: 1,
        ...gitCallbacks(ctx),
      }),
    );
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
      throw toTownError(error, ctx, "read");
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
 * Lists the repository files of a commit without reading them. Only the
 * root, `packages` and `packages/<name>` trees are read: nothing else in the
 * repository costs anything.
 */
async function listRepositoryFiles(
  ctx: SyncContext,
  dir: string,
  commit: string,
): Promise<Map<string, TreeFile>> {
  const entries = new Map<string, TreeFile>();
  const add = (path: string, entry: git.TreeEntry) => {
    if (!isRepositoryPath(path)) return;
    if (entries.size >= ctx.maxFiles) {
      throw new TownError(
        "invalid_argument",
        `git: ${ctx.display}: the repository has more than ${ctx.maxFiles} package files`,
      );
    }
    entries.set(path, { oid: entry.oid, mode: entry.mode, type: entry.type });
  };
  const root = await ctx.objects.tree(dir, commit);
  for (const entry of root) add(entry.path, entry);
  const packages = root.find((entry) => entry.path === "packages" && entry.type === "tree");
  if (!packages) return entries;
  const names = await ctx.objects.tree(dir, packages.oid);
  if (names.length > ctx.maxFiles) {
    throw new TownError(
      "invalid_argument",
      `git: ${ctx.display}: the repository has more than ${ctx.maxFiles} package directories`,
    );
  }
  for (const name of names) {
    if (name.type !== "tree") continue;
    ctx.signal.throwIfAborted();
    for (const version of await ctx.objects.tree(dir, name.oid)) {
      add(`packages/${name.path}/${version.path}`, version);
    }
  }
  return entries;
}

/** Lists and reads the repository files of a commit. */
async function readSnapshot(ctx: SyncContext, dir: string, commit: string): Promise<Snapshot> {
  const entries = await listRepositoryFiles(ctx, dir, commit);
  const files: RepositoryFile[] = [];
  const skipped: SkippedFile[] = [];
  const paths = [...entries.keys()].sort();
  let loaded = 0;
  let bytes = 0;
  for (const path of paths) {
    const entry = entries.get(path);
    if (!entry) continue;
    ctx.signal.throwIfAborted();
    if (entry.type !== "blob" || entry.mode === "120000") {
      const kind =
        entry.type === "tree" ? "a directory" : entry.type === "commit" ? "a submodule" : "a link";
      skipped.push({ path, reason: `not a regular file (${kind})` });
    } else {
      const content = await ctx.objects.blob(dir, entry.oid);
      if ("text" in content) {
        bytes += Buffer.byteLength(content.text, "utf8");
        if (bytes > ctx.maxBytes) {
          throw new TownError(
            "invalid_argument",
            `git: ${ctx.display}: the package files hold more than ${ctx.maxBytes} bytes`,
          );
        }
        files.push({ path, text: content.text });
      } else skipped.push({ path, reason: content.reason });
    }
    loaded++;
    if (loaded % 200 === 0) report(ctx, { phase: "Reading files", loaded, total: paths.length });
  }
  report(ctx, { phase: "Reading files", loaded: paths.length, total: paths.length });
  return { entries, files, skipped };
}

/** What a blob holds once read: its text, or why it is skipped. */
type BlobContent = { text: string } | { reason: string };

/** Trees (as entries) and blobs (as content) by object id. */
interface ObjectMemo {
  trees: Map<string, git.TreeEntry[]>;
  blobs: Map<string, BlobContent>;
}

/**
 * Per clone directory, the objects the last successful sync read. Git
 * objects never change under their id, so the next sync reads from git only
 * what is new: an unchanged refresh reads no object at all. This holds one
 * snapshot of the package files per directory, the same strings the caller
 * was given.
 */
const memos = new Map<string, ObjectMemo>();

/** Reads trees and blobs for one sync, through the previous sync's memo. */
class ObjectReader {
  /** What this sync read: the memo for the next one. */
  readonly used: ObjectMemo = { trees: new Map(), blobs: new Map() };
  private readonly caches = new Map<string, object>();
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });

  constructor(private readonly previous: ObjectMemo | undefined) {}

  /** The entries of a tree, or of a commit's root tree. */
  async tree(dir: string, oid: string): Promise<git.TreeEntry[]> {
    let entries = this.used.trees.get(oid) ?? this.previous?.trees.get(oid);
    entries ??= (await git.readTree({ fs, dir, oid, cache: this.cache(dir) })).tree;
    this.used.trees.set(oid, entries);
    return entries;
  }

  async blob(dir: string, oid: string): Promise<BlobContent> {
    let content = this.used.blobs.get(oid) ?? this.previous?.blobs.get(oid);
    if (!content) {
      // isomorphic-git cannot tell an object's size without inflating it;
      // every fetched object was checked to inflate to MAX_OBJECT_BYTES at most.
      const { blob } = await git.readBlob({ fs, dir, oid, cache: this.cache(dir) });
      if (blob.byteLength > MAX_PACKAGE_FILE_BYTES) {
        content = {
          reason: `file is ${blob.byteLength} bytes, more than the ${MAX_PACKAGE_FILE_BYTES} allowed`,
        };
      } else {
        try {
          content = { text: this.decoder.decode(blob) };
        } catch {
          content = { reason: "not valid UTF-8 text" };
        }
      }
    }
    this.used.blobs.set(oid, content);
    return content;
  }

  /** isomorphic-git's own cache (parsed pack indexes), one per git directory. */
  private cache(dir: string): object {
    let cache = this.caches.get(dir);
    if (!cache) {
      cache = {};
      this.caches.set(dir, cache);
    }
    return cache;
  }
}

/** Paths whose mode or blob differs, or that exist on one side only. */
function diffEntries(before: Map<string, TreeFile>, after: Map<string, TreeFile>): string[] {
  const changed = new Set<string>();
  for (const [path, entry] of after) {
    const old = before.get(path);
    if (old?.oid !== entry.oid || old.mode !== entry.mode) changed.add(path);
  }
  for (const path of before.keys()) if (!after.has(path)) changed.add(path);
  return [...changed].sort();
}

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

// --- running git ------------------------------------------------------------

function gitCallbacks(
  ctx: SyncContext,
): Pick<Parameters<typeof git.fetch>[0], "onAuth" | "onAuthFailure" | "onProgress"> {
  const credentials = ctx.credentials;
  return {
    // Asked only after the server answered 401; a second 401 ends the attempt.
    onAuth: credentials ? () => ({ ...credentials }) : undefined,
    onAuthFailure: () => ({ cancel: true }),
    onProgress: (event) => {
      report(ctx, event);
    },
  };
}

function report(ctx: SyncContext, event: { phase: string; loaded: number; total?: number }): void {
  if (!ctx.onProgress) return;
  const progress: SyncProgress = { phase: event.phase, loaded: event.loaded };
  if (typeof event.total === "number" && event.total > 0) progress.total = event.total;
  try {
    ctx.onProgress(progress);
  } catch {
    // A failing progress callback must not fail the sync.
  }
}

/**
 * Runs one isomorphic-git network operation with an HTTP client that obeys
 * the abort signal and the download limit. The returned promise settles as
 * soon as the signal aborts; the operation itself, whose requests are torn
 * down by then, is remembered in `ctx.pending` so the directory lock is kept
 * until it has actually stopped.
 */
async function runGit<T>(
  ctx: SyncContext,
  operation: "clone" | "fetch",
  work: (http: HttpClient, cache: object) => Promise<T>,
): Promise<T> {
  const limit = new AbortController();
  const signal = AbortSignal.any([ctx.signal, limit.signal]);
  const http = guardedHttp(signal, ctx.maxDownloadBytes, (error) => {
    limit.abort(error);
  });
  const running = work(http, {});
  ctx.pending.add(running);
  running.then(
    () => ctx.pending.delete(running),
    () => ctx.pending.delete(running),
  );
  try {
    return await raceAbort(running, signal);
  } catch (error) {
    const reason: unknown = signal.aborted ? signal.reason : error;
    if (reason instanceof DownloadLimit && operation === "fetch") throw reason;
    throw toTownError(reason, ctx, operation);
  } finally {
    // Tears down any response a failed operation left unread.
    limit.abort(new Aborted());
  }
}

/**
 * isomorphic-git's Node HTTP client, made abortable and with a byte budget;
 * the objects of a fetched pack are checked before git reads it.
 */
function guardedHttp(
  signal: AbortSignal,
  maxBytes: number,
  onLimit: (error: DownloadLimit | ObjectTooLarge) => void,
): HttpClient {
  let received = 0;
  const count = (bytes: number) => {
    received += bytes;
    if (received > maxBytes) {
      const error = new DownloadLimit(maxBytes);
      onLimit(error);
      throw error;
    }
  };
  return {
    async request(request: GitHttpRequest): Promise<GitHttpResponse> {
      signal.throwIfAborted();
      const response = await raceAbort(nodeHttp.request({ ...request, signal }), signal);
      const body = response.body;
      if (!body) return response;
      const guarded = guardedBody(body, signal, count);
      const pack = request.url.endsWith("/git-upload-pack");
      return { ...response, body: pack ? checkedPack(guarded, onLimit) : guarded };
    },
  };
}

/** Holds an upload-pack response until all of it (bounded by the download limit) is checked. */
async function* checkedPack(
  body: AsyncIterable<Uint8Array>,
  onLimit: (error: ObjectTooLarge) => void,
): AsyncGenerator<Uint8Array, void, undefined> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const all = Buffer.concat(chunks);
  const problem = oversizedObject(all, MAX_OBJECT_BYTES);
  if (problem !== undefined) {
    const error = new ObjectTooLarge(problem);
    onLimit(error);
    throw error;
  }
  yield all;
}

async function* guardedBody(
  body: AsyncIterableIterator<Uint8Array>,
  signal: AbortSignal,
  count: (bytes: number) => void,
): AsyncGenerator<Uint8Array, void, undefined> {
  try {
    for (;;) {
      const next = await raceAbort(body.next(), signal);
      if (next.done) return;
      count(next.value.byteLength);
      yield next.value;
    }
  } finally {
    await body.return?.();
  }
}

/** Settles like `promise`, or rejects with the signal's reason as soon as it aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolvePromise, reject) => {
    const onAbort = () => {
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolvePromise(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

// --- serializing per directory ---------------------------------------------

const locks = new Map<string, Promise<void>>();
/** How long a released lock waits for git work that ignored an abort. */
const ABANDON_GRACE_MS = 10_000;

/**
 * Runs `work` once every earlier call for the same directory has finished.
 * Waiting counts against the caller's timeout.
 */
async function withDirLock<T>(
  ctx: Pick<SyncContext, "dir" | "signal" | "pending">,
  work: () => Promise<T>,
): Promise<T> {
  const previous = locks.get(ctx.dir) ?? Promise.resolve();
  let release = () => {};
  const mine = new Promise<void>((resolveLock) => {
    release = resolveLock;
  });
  const chained = previous.then(() => mine);
  locks.set(ctx.dir, chained);
  try {
    await raceAbort(previous, ctx.signal);
    return await work();
  } finally {
    void settleWithin([...ctx.pending], ABANDON_GRACE_MS).then(() => {
      release();
      if (locks.get(ctx.dir) === chained) locks.delete(ctx.dir);
    });
  }
}

async function settleWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  if (promises.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(promises),
    new Promise((resolveWait) => {
      timer = setTimeout(resolveWait, ms);
    }),
  ]);
  clearTimeout(timer);
}

// --- URLs and errors --------------------------------------------------------

interface RemoteUrl {
  url: string;
  display: string;
  username: string | undefined;
  password: string | undefined;
}

function parseRemoteUrl(input: string): RemoteUrl {
  let parsed: URL;
  try {
    parsed = new URL(input);
  } catch {
    throw new TownError("invalid_argument", `git: "${redactText(input)}" is not a valid URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TownError(
      "invalid_argument",
      `git: ${parsed.protocol}// URLs are not supported, only http:// and https://`,
    );
  }
  const username = parsed.username ? decodeURIComponent(parsed.username) : undefined;
  const password = parsed.password ? decodeURIComponent(parsed.password) : undefined;
  parsed.username = "";
  parsed.password = "";
  parsed.hash = "";
  parsed.pathname = parsed.pathname.replace(/\/+$/, "");
  const url = parsed.href.replace(/\/+$/, "");
  return { url, display: `${parsed.origin}${parsed.pathname}`, username, password };
}

function checkBranchName(branch: string): void {
  const valid =
    /^[A-Za-z0-9._/-]+$/.test(branch) &&
    !branch.startsWith("-") &&
    !branch.startsWith("/") &&
    !branch.endsWith("/") &&
    !branch.endsWith(".lock") &&
    !branch.includes("..") &&
    !branch.includes("//");
  if (!valid) throw new TownError("invalid_argument", `git: "${branch}" is not a valid branch`);
}

function emptyRepository(ctx: SyncContext, operation: string): TownError {
  const what =
    ctx.branch === undefined ? "the repository has no commits" : `no branch "${ctx.branch}"`;
  return new TownError("not_found", `git: ${operation} ${ctx.display}: ${what}`);
}

/**
 * Turns anything thrown while syncing into a TownError with a message of the
 * form `git: <operation> <url>: <what happened>`. The original error is not
 * kept as the cause: isomorphic-git errors can carry request details.
 */
function toTownError(
  error: unknown,
  ctx: Pick<SyncContext, "display" | "branch" | "credentials">,
  operation: string,
): TownError {
  if (error instanceof TownError) return error;
  const prefix = `git: ${operation} ${ctx.display}`;
  if (error instanceof DownloadLimit || error instanceof ObjectTooLarge) {
    return new TownError("invalid_argument", `${prefix}: ${error.message}`);
  }
  const detail = redactSecrets(describe(error, ctx), ctx.credentials);
  const code = isGitError(error, "NotFoundError") && operation !== "read" ? "not_found" : "io";
  return new TownError(code, `${prefix}: ${detail}`);
}

function describe(error: unknown, ctx: Pick<SyncContext, "branch" | "credentials">): string {
  if (error instanceof Timeout || error instanceof Aborted) return error.message;
  if (isGitError(error, "HttpError")) {
    const data = (error as { data?: { statusCode?: number; statusMessage?: string } }).data;
    const status =
      `HTTP ${String(data?.statusCode ?? "error")} ${data?.statusMessage ?? ""}`.trim();
    if (data?.statusCode === 401 || data?.statusCode === 403) {
      return ctx.credentials
        ? `${status}: the credentials were rejected`
        : `${status}: the repository needs credentials`;
    }
    return status;
  }
  if (isGitError(error, "UserCanceledError")) {
    return "HTTP 401 Unauthorized: the credentials were rejected";
  }
  if (isGitError(error, "SmartHttpError")) {
    return "the server did not answer as a git smart-HTTP server (is the URL a git repository?)";
  }
  if (isGitError(error, "NotFoundError")) {
    return ctx.branch === undefined
      ? "the remote default branch was not found"
      : `branch "${ctx.branch}" not found`;
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" && !error.message.includes(code)
      ? `${code}: ${error.message}`
      : error.message;
  }
  return String(error);
}

function isGitError(error: unknown, code: string): boolean {
  return error instanceof Error && (error as { code?: unknown }).code === code;
}

/** Redacts URLs and, for good measure, the configured password (also as basic auth) anywhere in a text. */
function redactSecrets(text: string, credentials: Credentials | undefined): string {
  if (!credentials?.password) return redactText(text);
  const basic = Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64");
  return redactText(text, [credentials.password, basic]);
}
