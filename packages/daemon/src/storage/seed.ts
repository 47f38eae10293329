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
import { constants } from "node:fs";
import { link, open, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { isTownError, TownError, type Issue } from "@townos/format";
import { checkoutHead } from "../git/checkout.js";
import { cloneShallow, type GitProgress, type GitSession } from "../git/network.js";
import { checkBranchName, parseRemoteUrl } from "../git/remote.js";
import { checkTimeout, deadline } from "../git/transport.js";
import {
  unpackArchive,
  type ArchiveFormat,
  type UnpackOptions,
  type UnpackResult,
} from "./archive.js";
import { KeyedLock } from "../system/mutex.js";
import { printable } from "./names.js";
import { checkRelativePath, RESERVED_ENTRY_PREFIX } from "./paths.js";
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
/**
 * The largest a file of a seeded repository may be: isomorphic-git inflates
 * each object whole, so this bounds its memory whatever the download.
 */
export const DEFAULT_GIT_MAX_OBJECT_BYTES = 256 * 1024 * 1024;
/** Most template files in one call. */
export const MAX_TEMPLATE_FILES = 1000;
/** Largest rendered template file. */
export const MAX_TEMPLATE_BYTES = 4 * 1024 * 1024;
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
  onProgress?: (progress: GitProgress) => void;
  /** Stops the download (the seed fails) when aborted. */
  signal?: AbortSignal;
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
  const remote = parseRemoteUrl(source.url);
  if (source.branch !== undefined) checkBranchName(source.branch);
  checkOwner(options.owner);
  const timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS);
  const maxFiles = checkLimit("git", "maxFiles", options.maxFiles ?? DEFAULT_GIT_MAX_FILES);
  const maxDownloadBytes = checkLimit(
    "git",
    "maxDownloadBytes",
    options.maxDownloadBytes ?? DEFAULT_GIT_MAX_DOWNLOAD_BYTES,
  );
  const context = `git: clone ${remote.display}`;
  return withEmptyVolume(volumeDir, options.stagingRoot, context, async (staging) => {
    const dir = staging.tree;
    const cache = {};
    const bound = deadline(timeoutMs, options.signal);
    const session: GitSession = {
      url: remote.url,
      display: remote.display,
      branch: source.branch,
      credentials: remote.credentials,
      maxDownloadBytes,
      maxObjectBytes: DEFAULT_GIT_MAX_OBJECT_BYTES,
      signal: bound.signal,
      onProgress: options.onProgress,
    };
    try {
      await cloneShallow(session, dir, cache);
    } catch (error) {
      // Seeds have always named a missing branch so (install errors show it).
      if (isTownError(error) && error.code === "not_found" && source.branch !== undefined) {
        throw new TownError("not_found", `${context}: no branch "${printable(source.branch)}"`);
      }
      throw error;
    } finally {
      bound.stop();
    }
    const commit = await checkoutHead({
      dir,
      cache,
      maxFiles,
      context,
      onProgress: options.onProgress,
    });
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
