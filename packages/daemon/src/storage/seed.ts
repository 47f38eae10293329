/**
 * Filling volumes at install time, never overwriting what is there.
 *
 * - `seedFromGit`, `seedFromDirectory` and `seedFromArchive` fill an *empty*
 *   volume (`git_sources`, `archives`, `volumes.*.archive` of a package); a
 *   volume holding anything (names starting with `.town-` aside) is left
 *   alone and reported as such. Content is built in a staging directory in
 *   `stagingRoot`, outside the volume, and moved into place when complete
 *   (`staging.ts`); what a crash interrupted is finished or discarded when
 *   the storage driver next opens.
 * - `writeTemplates` writes rendered template files only where no file is,
 *   so edits made by people or apps survive upgrades. It may run while the
 *   volume's app does: the volume is only ever reached through handles.
 * Everything written belongs to the volume's owner when one is given.
 * Calls for the same volume are serialized within this process; seed a
 * volume before the apps using it start.
 */
import fs, { constants } from "node:fs";
import { link, open, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import * as git from "isomorphic-git";
import nodeHttp from "isomorphic-git/http/node";
import type { GitHttpRequest, GitHttpResponse, HttpClient } from "isomorphic-git/http/node";
import { TownError, type Issue } from "@townos/format";
import {
  unpackArchive,
  type ArchiveFormat,
  type UnpackOptions,
  type UnpackResult,
} from "./archive.js";
import { KeyedLock } from "../system/mutex.js";
import { formatDuration, printable } from "./names.js";
import { checkRelativePath, hasControl, MAX_DEPTH, RESERVED_ENTRY_PREFIX } from "./paths.js";
import {
  checkLimit,
  checkOwner,
  entryNames,
  errnoCode,
  ioError,
  PathRefused,
  realDirectory,
  type Owner,
  type RefusedEntry,
} from "./safe-fs.js";
import { commitStaging, createStaging, discardStaging, type Staging } from "./staging.js";
import { at, chownTree, copyTree, lstatAt, openDirectories } from "./tree.js";

export const DEFAULT_GIT_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_GIT_MAX_DOWNLOAD_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_GIT_MAX_FILES = 200_000;
/** Most template files in one call. */
export const MAX_TEMPLATE_FILES = 1000;
/** Largest rendered template file. */
export const MAX_TEMPLATE_BYTES = 4 * 1024 * 1024;
const MAX_TIMER_MS = 2 ** 31 - 1;
const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Why a seed did nothing. */
export interface NotSeeded {
  seeded: false;
  reason: string;
}

const NOT_EMPTY: NotSeeded = { seeded: false, reason: "the volume is not empty" };

// --- git ---------------------------------------------------------------------

export interface GitSource {
  /** `http://` or `https://`; credentials in it are used for the clone and never stored. */
  url: string;
  /** Default: the remote's default branch. */
  branch?: string;
}

export interface GitSeedOptions {
  /** Private directory on the volume's file system to build the content in (`StorageDriver.stagingRoot`). */
  stagingRoot: string;
  owner?: Owner;
  /** Default `DEFAULT_GIT_TIMEOUT_MS`. Bounds the download; checking files out is bounded by `maxFiles`. */
  timeoutMs?: number;
  /** Default `DEFAULT_GIT_MAX_DOWNLOAD_BYTES`. */
  maxDownloadBytes?: number;
  /** Most paths in the commit's tree. Default `DEFAULT_GIT_MAX_FILES`. */
  maxFiles?: number;
  onProgress?: (progress: { phase: string; loaded: number; total?: number }) => void;
}

/**
 * Clones a branch (depth 1, with a work tree) into an empty volume. The tree
 * is checked before checkout: paths named `.git`, `..` or holding control
 * characters, and duplicate names, fail the seed. Links in the repository
 * are checked out as links, as git does.
 * @throws TownError `invalid_argument` (URL, branch, unsafe tree, limits),
 *   `not_found` (no such branch), `io` (network, HTTP, timeout).
 */
export async function seedFromGit(
  volumeDir: string,
  source: GitSource,
  options: GitSeedOptions,
): Promise<{ seeded: true; commit: string } | NotSeeded> {
  const remote = parseGitUrl(source.url);
  if (source.branch !== undefined) checkBranch(source.branch);
  checkOwner(options.owner);
  const timeoutMs = options.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS;
  if (!(Number.isSafeInteger(timeoutMs) && timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
    throw new TownError("invalid_argument", `git: timeout ${String(timeoutMs)} ms is out of range`);
  }
  const maxFiles = checkLimit("git", "maxFiles", options.maxFiles ?? DEFAULT_GIT_MAX_FILES);
  const maxBytes = checkLimit(
    "git",
    "maxDownloadBytes",
    options.maxDownloadBytes ?? DEFAULT_GIT_MAX_DOWNLOAD_BYTES,
  );
  const context = `git: clone ${remote.display}`;
  const credentials = remote.credentials;
  return withEmptyVolume(volumeDir, options.stagingRoot, context, async (staging) => {
    const dir = staging.tree;
    const cache = {};
    const controller = new AbortController();
    const timer = setTimeout(() => {
      controller.abort(
        new TownError("io", `${context}: timed out after ${formatDuration(timeoutMs)}`),
      );
    }, timeoutMs);
    const overLimit = () => {
      controller.abort(
        new TownError(
          "invalid_argument",
          `${context}: the download is larger than ${maxBytes} bytes`,
        ),
      );
    };
    try {
      await git.clone({
        fs,
        http: guardedHttp(controller.signal, maxBytes, overLimit),
        cache,
        dir,
        url: remote.url,
        ...(source.branch === undefined ? {} : { ref: source.branch }),
        singleBranch: true,
        depth: 1,
        noTags: true,
        noCheckout: true,
        onAuth: credentials ? () => ({ ...credentials }) : undefined,
        onAuthFailure: () => ({ cancel: true }),
        onProgress: (event) => {
          report(options.onProgress, event);
        },
      });
      // isomorphic-git can swallow a failed request and carry on: the signal remembers.
      controller.signal.throwIfAborted();
    } catch (error) {
      throw gitError(error, controller.signal, context, source.branch);
    } finally {
      clearTimeout(timer);
    }
    let commit: string;
    let branch: string | undefined;
    try {
      commit = await git.resolveRef({ fs, dir, ref: "HEAD" });
      branch = (await git.currentBranch({ fs, dir })) ?? undefined;
    } catch {
      throw new TownError("not_found", `${context}: the repository has no commits`);
    }
    await checkGitTree(dir, commit, maxFiles, cache, context);
    try {
      await git.checkout({
        fs,
        dir,
        cache,
        ref: branch ?? commit,
        onProgress: (event) => {
          report(options.onProgress, event);
        },
      });
    } catch (error) {
      throw ioError(`${context}: checkout`, error);
    }
    if (options.owner) await chownTree(dir, options.owner);
    return { seeded: true as const, commit };
  });
}

// --- a directory on the host -------------------------------------------------

export interface DirectorySeedOptions {
  /** As for `seedFromGit`. */
  stagingRoot: string;
  owner?: Owner;
  maxBytes: number;
  maxEntries: number;
  signal?: AbortSignal;
}

/**
 * Copies a host directory's tree (e.g. one exported out of a container
 * image) into an empty volume. Links are copied as links, never followed;
 * devices, FIFOs and sockets are skipped and reported.
 * @throws TownError `payload_too_large` past the limits, `not_found` without
 *   the source, `io`.
 */
export async function seedFromDirectory(
  volumeDir: string,
  sourceDir: string,
  options: DirectorySeedOptions,
): Promise<{ seeded: true; entries: number; bytes: number; skipped: RefusedEntry[] } | NotSeeded> {
  checkOwner(options.owner);
  checkLimit("seed", "maxBytes", options.maxBytes);
  checkLimit("seed", "maxEntries", options.maxEntries);
  const source = await realDirectory(sourceDir, "seed");
  return withEmptyVolume(volumeDir, options.stagingRoot, "seed: copy", async (staging) => {
    const copied = await copyTree(source, staging.tree, {
      maxBytes: options.maxBytes,
      maxEntries: options.maxEntries,
      owner: options.owner,
      signal: options.signal,
    });
    return { seeded: true as const, ...copied };
  });
}

// --- an uploaded archive -----------------------------------------------------

/**
 * Unpacks an archive into an empty volume (see `unpackArchive`); the input
 * is destroyed unread when the volume is not empty.
 */
export async function seedFromArchive(
  volumeDir: string,
  input: Readable,
  format: ArchiveFormat | "auto",
  options: UnpackOptions,
): Promise<{ seeded: true; result: UnpackResult } | NotSeeded> {
  const root = await realDirectory(volumeDir, "seed");
  return seeding.run([root], async () => {
    if (!(await isEmptyVolume(root))) {
      input.destroy();
      return NOT_EMPTY;
    }
    return { seeded: true as const, result: await unpackArchive(input, format, root, options) };
  });
}

// --- templates ---------------------------------------------------------------

export interface TemplateFile {
  /** Name of the volume (a key of `volumes`). */
  volume: string;
  /** Relative path inside the volume. */
  path: string;
  /** The rendered content. */
  content: string;
}

export interface TemplateVolume {
  dir: string;
  owner?: Owner;
}

export interface TemplateOutcome {
  volume: string;
  path: string;
  /** False when a file (or anything else) was there already and was kept. */
  written: boolean;
}

/**
 * Writes each file only where nothing is: mode 0600, new parent directories
 * 0750, owned by the volume's owner when given. A file appears complete or
 * not at all (written aside, then hard-linked into place, which never
 * replaces anything). Paths that lead through a link or a non-directory in
 * the volume are refused; the others are still written.
 * @throws TownError `invalid_argument` for bad input (nothing is written),
 *   `conflict` listing the refused files in `issues`, `io`.
 */
export async function writeTemplates(
  files: readonly TemplateFile[],
  volumes: Readonly<Record<string, TemplateVolume>>,
): Promise<TemplateOutcome[]> {
  const checked = checkTemplates(files, volumes);
  const outcomes: TemplateOutcome[] = [];
  const refused: Issue[] = [];
  for (const file of checked) {
    const volume = volumes[file.volume];
    if (!volume) continue;
    checkOwner(volume.owner);
    const root = await realDirectory(volume.dir, `template ${file.volume}`);
    try {
      const written = await seeding.run([root], () =>
        writeTemplate(root, file.parts, file.content, volume.owner),
      );
      outcomes.push({ volume: file.volume, path: file.path, written });
    } catch (error) {
      if (!(error instanceof PathRefused))
        throw ioError(`template ${file.volume}:${file.path}`, error);
      refused.push({ field: `${file.volume}:${file.path}`, message: error.reason });
    }
  }
  if (refused.length > 0) {
    throw new TownError(
      "conflict",
      `templates: ${refused.length} file(s) could not be written safely`,
      {
        issues: refused,
      },
    );
  }
  return outcomes;
}

function checkTemplates(
  files: readonly TemplateFile[],
  volumes: Readonly<Record<string, TemplateVolume>>,
): (TemplateFile & { parts: string[] })[] {
  if (files.length > MAX_TEMPLATE_FILES) {
    throw new TownError("invalid_argument", `templates: more than ${MAX_TEMPLATE_FILES} files`);
  }
  const issues: Issue[] = [];
  const seen = new Set<string>();
  const checked: (TemplateFile & { parts: string[] })[] = [];
  for (const file of files) {
    const field = `${printable(file.volume)}:${printable(file.path)}`;
    if (!Object.hasOwn(volumes, file.volume)) {
      issues.push({ field, message: "no such volume" });
      continue;
    }
    const check = checkRelativePath(file.path);
    if ("reason" in check) {
      issues.push({ field, message: check.reason });
      continue;
    }
    if (Buffer.byteLength(file.content) > MAX_TEMPLATE_BYTES) {
      issues.push({ field, message: `larger than ${MAX_TEMPLATE_BYTES} bytes` });
      continue;
    }
    const key = `${file.volume}\0${check.parts.join("/")}`;
    if (seen.has(key)) {
      issues.push({ field, message: "listed twice" });
      continue;
    }
    seen.add(key);
    checked.push({ ...file, parts: check.parts });
  }
  if (issues.length > 0) {
    throw new TownError("invalid_argument", `templates: ${issues.length} invalid file(s)`, {
      issues,
    });
  }
  return checked;
}

/** Writes one template file unless something is at its path; true when written. */
async function writeTemplate(
  root: string,
  parts: string[],
  content: string,
  owner: Owner | undefined,
): Promise<boolean> {
  const name = parts[parts.length - 1] ?? "";
  const dir = await openDirectories(root, parts.slice(0, -1), { mode: 0o750, owner });
  try {
    if (await lstatAt(dir, name)) return false;
    const scratch = `${RESERVED_ENTRY_PREFIX}tmp-${randomBytes(8).toString("hex")}`;
    const handle = await open(at(dir, scratch), NEW_FILE, 0o600);
    try {
      try {
        await handle.writeFile(content, "utf8");
        await handle.chmod(0o600);
        if (owner) await handle.chown(owner.uid, owner.gid);
        await handle.sync();
      } finally {
        await handle.close();
      }
      try {
        // link(2) never replaces: whatever appeared meanwhile is kept.
        await link(at(dir, scratch), at(dir, name));
        return true;
      } catch (error) {
        if (errnoCode(error) === "EEXIST") return false;
        throw error;
      }
    } finally {
      await unlink(at(dir, scratch)).catch(() => undefined);
    }
  } finally {
    await dir.close();
  }
}

// --- shared --------------------------------------------------------------------

/** Seeds and template writes for one volume, one at a time. */
const seeding = new KeyedLock();

/** Empty: nothing but names starting with `.town-` (never taken from uploads). */
async function isEmptyVolume(root: string): Promise<boolean> {
  return (await entryNames(root, RESERVED_ENTRY_PREFIX)).length === 0;
}

/** Runs `fill` on a staging tree when the volume is empty and moves the result into place. */
async function withEmptyVolume<T>(
  volumeDir: string,
  stagingRoot: string,
  context: string,
  fill: (staging: Staging) => Promise<T>,
): Promise<T | NotSeeded> {
  const root = await realDirectory(volumeDir, "seed");
  return seeding.run([root], async () => {
    if (!(await isEmptyVolume(root))) return NOT_EMPTY;
    const staging = await createStaging(stagingRoot);
    try {
      const result = await fill(staging);
      await commitStaging(staging, root);
      return result;
    } catch (error) {
      await discardStaging(staging);
      throw error instanceof TownError ? error : ioError(context, error);
    }
  });
}

interface GitRemote {
  url: string;
  display: string;
  credentials: { username: string; password: string } | undefined;
}

function parseGitUrl(input: string): GitRemote {
  let parsed: URL;
  try {
    parsed = new URL(input);
  } catch {
    throw new TownError("invalid_argument", "git: the source URL is not a valid URL");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TownError(
      "invalid_argument",
      `git: ${parsed.protocol}// URLs are not supported, only http:// and https://`,
    );
  }
  const credentials =
    parsed.username || parsed.password
      ? {
          username: decodeURIComponent(parsed.username),
          password: decodeURIComponent(parsed.password),
        }
      : undefined;
  parsed.username = "";
  parsed.password = "";
  parsed.hash = "";
  return { url: parsed.href, display: `${parsed.origin}${parsed.pathname}`, credentials };
}

function checkBranch(branch: string): void {
  const valid =
    /^[A-Za-z0-9._/-]{1,200}$/.test(branch) &&
    !branch.startsWith("-") &&
    !branch.startsWith("/") &&
    !branch.endsWith("/") &&
    !branch.endsWith(".lock") &&
    !branch.includes("..") &&
    !branch.includes("//");
  if (!valid)
    throw new TownError("invalid_argument", `git: "${printable(branch)}" is not a valid branch`);
}

/**
 * Walks the commit's tree before anything is checked out: a hostile server
 * can send trees that real git would never make, and checkout would write
 * them as they are.
 */
async function checkGitTree(
  dir: string,
  commit: string,
  maxFiles: number,
  cache: object,
  context: string,
): Promise<void> {
  const issues: Issue[] = [];
  let files = 0;
  const visit = async (oid: string, prefix: string, depth: number): Promise<void> => {
    const { tree } = await git.readTree({ fs, dir, oid, cache });
    const names = new Set<string>();
    for (const entry of tree) {
      const path = `${prefix}${entry.path}`;
      if (++files > maxFiles)
        throw new TownError("invalid_argument", `${context}: more than ${maxFiles} paths`);
      const problem =
        entry.path === "" || entry.path === "." || entry.path === ".." || entry.path.includes("/")
          ? "not a valid name"
          : entry.path.toLowerCase() === ".git"
            ? "a path named .git"
            : hasControl(entry.path)
              ? "a control character in the name"
              : names.has(entry.path)
                ? "a name listed twice"
                : undefined;
      names.add(entry.path);
      if (problem) {
        if (issues.length < 20) issues.push({ field: printable(path, 200), message: problem });
        continue;
      }
      if (entry.type === "tree") {
        if (depth >= MAX_DEPTH)
          throw new TownError(
            "invalid_argument",
            `${context}: nested deeper than ${MAX_DEPTH} levels`,
          );
        await visit(entry.oid, `${path}/`, depth + 1);
      }
    }
  };
  try {
    await visit(commit, "", 1);
  } catch (error) {
    if (error instanceof TownError) throw error;
    throw new TownError("io", `${context}: reading the tree failed: ${errorMessage(error)}`);
  }
  if (issues.length > 0) {
    throw new TownError(
      "invalid_argument",
      `${context}: the repository holds paths that are not safe to check out`,
      {
        issues,
      },
    );
  }
}

/** isomorphic-git's Node HTTP client, bound to a signal and a download budget (`overLimit` aborts). */
function guardedHttp(signal: AbortSignal, maxBytes: number, overLimit: () => void): HttpClient {
  let received = 0;
  return {
    async request(request: GitHttpRequest): Promise<GitHttpResponse> {
      signal.throwIfAborted();
      const response = await nodeHttp.request({ ...request, signal });
      const body = response.body;
      if (!body) return response;
      return {
        ...response,
        body: (async function* () {
          for await (const chunk of body) {
            received += chunk.byteLength;
            // Aborting (rather than throwing here) keeps the reason: isomorphic-git rewraps errors.
            if (received > maxBytes) overLimit();
            signal.throwIfAborted();
            yield chunk;
          }
        })(),
      };
    },
  };
}

function report(
  onProgress: GitSeedOptions["onProgress"],
  event: { phase: string; loaded: number; total?: number },
): void {
  if (!onProgress) return;
  try {
    onProgress(
      event.total
        ? { phase: event.phase, loaded: event.loaded, total: event.total }
        : { phase: event.phase, loaded: event.loaded },
    );
  } catch {
    // A failing progress callback must not fail the seed.
  }
}

/** Clone failures, without request details (isomorphic-git errors can carry them). */
function gitError(
  error: unknown,
  signal: AbortSignal,
  context: string,
  branch: string | undefined,
): TownError {
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    return reason instanceof TownError ? reason : new TownError("io", `${context}: aborted`);
  }
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  if (code === "NotFoundError") {
    return new TownError(
      "not_found",
      `${context}: ${branch === undefined ? "no default branch" : `no branch "${printable(branch)}"`}`,
    );
  }
  if (code === "HttpError") {
    const data = (error as { data?: { statusCode?: number; statusMessage?: string } }).data;
    return new TownError(
      "io",
      `${context}: HTTP ${String(data?.statusCode ?? "error")} ${data?.statusMessage ?? ""}`.trim(),
    );
  }
  if (code === "UserCanceledError")
    return new TownError("io", `${context}: the credentials were rejected`);
  if (code === "SmartHttpError")
    return new TownError("io", `${context}: not a git smart-HTTP server`);
  return new TownError("io", `${context}: ${errorMessage(error)}`);
}

function errorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // Never echo credentials that a URL in a message may carry.
  return printable(text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s]*@/gi, "$1"), 300);
}
