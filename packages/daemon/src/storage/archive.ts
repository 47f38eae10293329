/**
 * Archives into and out of volumes.
 *
 * `unpackArchive` takes an upload as a stream (tar, tar.gz, tar.xz, tar.bz2
 * or zip, recognised by its first bytes) and unpacks it into a directory:
 * - Streamed: tar formats are decompressed and unpacked as the bytes arrive
 *   (gzip in-process, xz and bzip2 through the system's `xz -dc` and
 *   `bzip2 -dc`); memory stays flat whatever the size. A zip needs random
 *   access, so it is first spooled to a file in the staging directory
 *   (counting against the limits) and read with yauzl.
 * - Bounded: archive bytes, unpacked bytes, entries and time. Going past a
 *   bound fails the whole unpack (`payload_too_large`, or `io` for time).
 * - Hostile entries are refused one by one and reported as `{path, reason}`:
 *   absolute paths, `..`, links whose target leaves the target directory,
 *   hard links to anything but a file unpacked before, device files, FIFOs,
 *   entries inside refused or non-directory entries, unsupported types.
 *   Nothing is ever written outside the target.
 * - Atomic-ish: everything is unpacked into a private staging directory in
 *   `stagingRoot`, outside the target (see `staging.ts`), then each
 *   top-level entry moves into place whole. A top-level name that exists already fails the unpack
 *   (`conflict`) before anything moved. A failure leaves the target as it was.
 * - Owners in the archive are ignored: everything belongs to `owner` when
 *   given, else to the daemon. Modes are kept without set-id bits; file
 *   modification times are kept.
 * - `asBackedUp` (a backup's own archive, `packVolume` with `owners`) keeps
 *   the archive's owners (`owner` for entries without one) and links
 *   whatever they point at: a link is data, never followed, and nothing is
 *   written through one. The rest of the above holds.
 *
 * `packVolume` streams a directory (or chosen paths in it) out as tar.gz or
 * tar.xz, links stored as links, read through handles (`pack.ts`). Pack a
 * snapshot, or a volume whose apps are stopped, for a consistent archive:
 * files that change while being read are caught as they are.
 */
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { Readable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import * as yauzl from "yauzl";
import { TownError } from "@townos/format";
import { requireProgram } from "./exec.js";
import { Extraction, type ExtractionLimits } from "./extract.js";
import { formatDuration, printable } from "./names.js";
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
import { ByteReader, readTar } from "./tar-reader.js";
import { packTree } from "./pack.js";
import { lstatAt, openInside } from "./tree.js";

export type ArchiveFormat = "tar" | "tar.gz" | "tar.xz" | "tar.bz2" | "zip";
export type PackFormat = "tar.gz" | "tar.xz";
export const ARCHIVE_FORMATS: readonly ArchiveFormat[] = [
  "tar",
  "tar.gz",
  "tar.xz",
  "tar.bz2",
  "zip",
];

export const DEFAULT_MAX_ENTRIES = 100_000;
export const DEFAULT_UNPACK_TIMEOUT_MS = 30 * 60_000;
/** Largest pax header or GNU long name: paths are at most 4 KiB, so this is generous. */
const MAX_META_BYTES = 1024 * 1024;
/** Most paths `packVolume` takes. */
const MAX_PACK_PATHS = 10_000;
/** The longest delay `setTimeout` honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const PROGRESS_STEP_BYTES = 4 * 1024 * 1024;
/** What tar adds per entry (a header, padding) and per archive (end marker, record padding). */
const TAR_OVERHEAD_PER_ENTRY = 1024;
const TAR_OVERHEAD = 64 * 1024;

export interface UnpackOptions {
  /** Private directory on the target's file system to unpack into first (`StorageDriver.stagingRoot`). */
  stagingRoot: string;
  /** Most bytes of file content unpacked, all entries together. */
  maxBytes: number;
  /**
   * Most bytes of archive read (compressed, as uploaded). Default: `maxBytes`
   * plus what an uncompressed tar of `maxEntries` entries adds.
   */
  maxArchiveBytes?: number;
  /** Most entries, refused ones included. Default `DEFAULT_MAX_ENTRIES`. */
  maxEntries?: number;
  /** Default `DEFAULT_UNPACK_TIMEOUT_MS`. */
  timeoutMs?: number;
  owner?: Owner;
  /** Owners and links as the archive has them (see the module comment). */
  asBackedUp?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: UnpackProgress) => void;
}

export interface UnpackProgress {
  /** Archive bytes read so far. */
  archiveBytes: number;
  /** File content bytes written so far. */
  bytes: number;
  entries: number;
}

export interface UnpackResult {
  format: ArchiveFormat;
  /** Entries seen, refused ones included. */
  entries: number;
  bytes: number;
  /** The first `MAX_REPORTED` refused entries. */
  refused: RefusedEntry[];
  refusedCount: number;
}

/** The format an archive's first bytes (up to 512 of them) reveal, if any. */
export function detectArchiveFormat(head: Uint8Array): ArchiveFormat | undefined {
  const starts = (...bytes: number[]) => bytes.every((byte, index) => head[index] === byte);
  if (starts(0x1f, 0x8b)) return "tar.gz";
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return "tar.xz";
  if (starts(0x42, 0x5a, 0x68) && (head[3] ?? 0) >= 0x31 && (head[3] ?? 0) <= 0x39)
    return "tar.bz2";
  if (starts(0x50, 0x4b, 0x03, 0x04) || starts(0x50, 0x4b, 0x05, 0x06)) return "zip";
  if (head.length >= 512) {
    const block = Buffer.from(head.buffer, head.byteOffset, 512);
    if (block.subarray(257, 262).toString("latin1") === "ustar") return "tar";
    // Pre-POSIX (v7) tar has no magic: a valid header checksum will do.
    const sum = block.reduce(
      (total, byte, index) => total + (index >= 148 && index < 156 ? 0x20 : byte),
      0,
    );
    const recorded = Number.parseInt(
      block
        .subarray(148, 156)
        .toString("latin1")
        .replace(/[\0 ]+$/, ""),
      8,
    );
    if (recorded === sum && block.some((byte) => byte !== 0)) return "tar";
  }
  return undefined;
}

/**
 * Unpacks an archive into `targetDir` (see the module comment). `format`
 * "auto" takes what the first bytes say; a named format must match them.
 * The input is read to the archive's end and then destroyed (with anything
 * after the end, or the rest of a failed upload): to answer an HTTP upload
 * with an error, pass a PassThrough fed from the request, not the request.
 * @throws TownError `invalid_argument` (not an archive, corrupt, wrong
 *   format, bad options), `payload_too_large` (a limit or the volume's quota),
 *   `conflict` (a top-level name is taken), `not_found` (no target), `io`.
 */
export async function unpackArchive(
  input: Readable,
  format: ArchiveFormat | "auto",
  targetDir: string,
  options: UnpackOptions,
): Promise<UnpackResult> {
  let limits: ExtractionLimits & { maxArchiveBytes: number };
  let timeoutMs: number;
  try {
    ({ limits, timeoutMs } = checkUnpackOptions(options));
  } catch (error) {
    input.destroy();
    throw error;
  }

  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(new StopReason(`timed out after ${formatDuration(timeoutMs)}`));
  }, timeoutMs);
  const onCallerAbort = () => {
    controller.abort(new StopReason("cancelled"));
  };
  options.signal?.addEventListener("abort", onCallerAbort, { once: true });
  if (options.signal?.aborted) onCallerAbort();
  // A stalled upload only notices an abort when it is torn down.
  const onAbort = () => input.destroy(controller.signal.reason as Error);
  controller.signal.addEventListener("abort", onAbort, { once: true });

  let staging: Staging | undefined;
  try {
    const target = await realDirectory(targetDir, "archive");
    staging = await createStaging(options.stagingRoot);
    const source = new Source(input, limits.maxArchiveBytes, controller.signal);
    const detected = detectArchiveFormat(await source.head(512));
    if (!detected) {
      throw new TownError(
        "invalid_argument",
        "archive: not a tar, tar.gz, tar.xz, tar.bz2 or zip archive",
      );
    }
    if (format !== "auto" && format !== detected) {
      throw new TownError(
        "invalid_argument",
        `archive: expected ${format}, but this is ${detected}`,
      );
    }
    let reported = -Infinity;
    const progress = (force = false) => {
      const moved = source.bytes + extraction.bytes;
      if (!options.onProgress || (!force && moved - reported < PROGRESS_STEP_BYTES)) return;
      reported = moved;
      try {
        options.onProgress({
          archiveBytes: source.bytes,
          bytes: extraction.bytes,
          entries: extraction.entries,
        });
      } catch {
        // A failing progress callback must not fail the unpack.
      }
    };
    const extraction = new Extraction(
      staging.tree,
      limits,
      { owner: options.owner, asBackedUp: options.asBackedUp === true },
      controller.signal,
      progress,
    );
    source.onChunk = progress;
    if (detected === "zip") await unpackZip(source, staging, extraction, controller.signal);
    else await unpackTar(source, detected, extraction, controller.signal);
    await extraction.finish();
    await commitStaging(staging, target);
    staging = undefined;
    progress(true);
    return {
      format: detected,
      entries: extraction.entries,
      bytes: extraction.bytes,
      refused: extraction.refused,
      refusedCount: extraction.refusedCount,
    };
  } catch (error) {
    if (controller.signal.aborted) {
      const reason: unknown = controller.signal.reason;
      throw new TownError(
        "io",
        `archive: unpacking ${reason instanceof StopReason ? reason.message : "stopped"}`,
      );
    }
    throw archiveError(error);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onCallerAbort);
    controller.signal.removeEventListener("abort", onAbort);
    // What follows a tar's end marker, or the rest of a failed upload, is not read.
    if (!input.readableEnded) input.destroy();
    if (staging) await discardStaging(staging);
  }
}

export interface PackOptions {
  format: PackFormat;
  /** Paths inside `dir` to pack (relative, `/`-separated); default: everything. */
  paths?: readonly string[];
  /** Records each entry's numeric owner (a backup); default: none (portable). */
  owners?: boolean;
}

/**
 * Streams `dir` (or `paths` in it) out as an archive. Paths are checked
 * before anything is sent: relative, inside, existing, not through a link.
 * Town OS's own work in progress (`.town-*` at the top) is left out.
 * Failures while streaming surface as an error on the returned stream;
 * destroying the stream stops the work.
 * @throws TownError `invalid_argument` for a bad path, `not_found` for a
 *   missing one, `unavailable` for tar.xz without `xz`.
 */
export async function packVolume(dir: string, options: PackOptions): Promise<Readable> {
  const root = await realDirectory(dir, "archive");
  let paths: string[][];
  if (options.paths === undefined) {
    paths = (await entryNames(root, RESERVED_ENTRY_PREFIX)).map((name) => [name]);
  } else {
    if (options.paths.length > MAX_PACK_PATHS) {
      throw new TownError("invalid_argument", `archive: more than ${MAX_PACK_PATHS} paths`);
    }
    paths = [];
    for (const path of new Set(options.paths)) {
      const check = checkRelativePath(path);
      if ("reason" in check) {
        throw new TownError("invalid_argument", `archive: "${printable(path)}": ${check.reason}`);
      }
      let parent;
      try {
        parent = await openInside(root, check.parts.slice(0, -1));
      } catch (error) {
        if (error instanceof PathRefused) {
          throw new TownError("invalid_argument", `archive: "${printable(path)}" ${error.reason}`);
        }
        throw error;
      }
      const stats = parent && (await lstatAt(parent, check.parts[check.parts.length - 1] ?? ""));
      await parent?.close();
      if (!stats) throw new TownError("not_found", `archive: "${printable(path)}" does not exist`);
      paths.push(check.parts);
    }
  }
  const xz = options.format === "tar.xz" ? await requireProgram("xz", "archive") : undefined;
  const tar = packTree(root, paths, { owners: options.owners === true });
  if (xz) return Readable.from(throughProgram(tar, xz, ["-zc", "-T1"], "io"));
  return Readable.from(throughTransform(tar, createGzip()));
}

// --- reading the upload ------------------------------------------------------

/** Why an unpack was stopped from outside. */
class StopReason extends Error {}

/** The upload as chunks: counted against the archive limit, with a peek at the head. */
class Source {
  bytes = 0;
  onChunk: () => void = () => undefined;
  private readonly iterator: AsyncIterator<unknown>;
  private readonly buffered: Buffer[] = [];

  constructor(
    input: Readable,
    private readonly limit: number,
    private readonly signal: AbortSignal,
  ) {
    this.iterator = input[Symbol.asyncIterator]();
  }

  /** At least `count` bytes from the start (fewer for a shorter input), kept for `chunks`. */
  async head(count: number): Promise<Buffer> {
    let have = 0;
    while (have < count) {
      const chunk = await this.next();
      if (!chunk) break;
      this.buffered.push(chunk);
      have += chunk.length;
    }
    return Buffer.concat(this.buffered);
  }

  async *chunks(): AsyncGenerator<Buffer> {
    try {
      while (this.buffered.length > 0) {
        const chunk = this.buffered.shift();
        if (chunk) yield chunk;
      }
      for (;;) {
        const chunk = await this.next();
        if (!chunk) return;
        yield chunk;
      }
    } finally {
      await this.iterator.return?.();
    }
  }

  private async next(): Promise<Buffer | undefined> {
    this.signal.throwIfAborted();
    const next = await this.iterator.next();
    if (next.done) return undefined;
    const value: unknown = next.value;
    const chunk = Buffer.isBuffer(value)
      ? value
      : value instanceof Uint8Array
        ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
        : Buffer.from(String(value));
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      throw new TownError(
        "payload_too_large",
        `archive: the archive is larger than ${this.limit} bytes`,
      );
    }
    this.onChunk();
    return chunk;
  }
}

async function unpackTar(
  source: Source,
  format: Exclude<ArchiveFormat, "zip">,
  extraction: Extraction,
  signal: AbortSignal,
): Promise<void> {
  let decoded: AsyncGenerator<Buffer>;
  if (format === "tar") decoded = source.chunks();
  else if (format === "tar.gz") decoded = throughTransform(source.chunks(), createGunzip());
  else {
    const program = format === "tar.xz" ? "xz" : "bzip2";
    decoded = throughProgram(
      source.chunks(),
      await requireProgram(program, "archive"),
      ["-dc"],
      "invalid_argument",
      signal,
    );
  }
  try {
    const reader = new ByteReader(decoded);
    await readTar(reader, (entry, body) => extraction.tarEntry(entry, body), {
      maxMetaBytes: MAX_META_BYTES,
      signal,
    });
  } finally {
    // Whatever follows the end marker is not read: stop the decoder and the upload.
    await decoded.return(undefined);
  }
}

async function unpackZip(
  source: Source,
  staging: Staging,
  extraction: Extraction,
  signal: AbortSignal,
): Promise<void> {
  const spool = join(staging.dir, "upload.zip");
  await pipeline(
    Readable.from(source.chunks()),
    createWriteStream(spool, { flags: "wx", mode: 0o600 }),
  );
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(spool, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
      validateEntrySizes: true,
    });
  } catch (error) {
    throw notZip(error);
  }
  try {
    if (zip.entryCount > extraction.limits.maxEntries) {
      throw new TownError(
        "payload_too_large",
        `archive: more than ${extraction.limits.maxEntries} entries`,
      );
    }
    for await (const entry of zip.eachEntry()) {
      signal.throwIfAborted();
      await extraction.zipEntry(zip, entry);
    }
  } catch (error) {
    throw notZip(error);
  } finally {
    zip.close();
  }
  await rm(spool, { force: true });
}

/** yauzl's own complaints (no errno code) mean a broken zip file. */
function notZip(error: unknown): unknown {
  if (error instanceof TownError || errnoCode(error) !== undefined || !(error instanceof Error))
    return error;
  if (error.name === "AbortError") return error;
  return new TownError(
    "invalid_argument",
    `archive: not a valid zip file: ${printable(error.message, 200)}`,
  );
}

// --- streams through decoders ------------------------------------------------

/** Chunks of `source` after passing through a zlib transform. */
async function* throughTransform(
  source: AsyncIterable<Buffer>,
  transform: Transform,
): AsyncGenerator<Buffer> {
  const feeding = pipeline(source, transform).then(
    () => undefined,
    (error: unknown) => error,
  );
  try {
    for await (const chunk of transform) yield chunk as Buffer;
    const error = await feeding;
    if (error !== undefined) throw asError(error);
  } finally {
    transform.destroy();
  }
}

/**
 * Chunks of `source` after passing through a program's stdin and stdout (no
 * shell). A failing program is `failureCode` with its last stderr line; the
 * source's own failure (a limit) wins over the program's complaint about it.
 */
async function* throughProgram(
  source: AsyncIterable<Buffer>,
  program: string,
  args: readonly string[],
  failureCode: "invalid_argument" | "io",
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  const child = spawn(program, args, {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, LC_ALL: "C" },
  });
  const kill = () => child.kill("SIGKILL");
  signal?.addEventListener("abort", kill, { once: true });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    if (stderr.length < 4096) stderr += text;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => {
      resolve(code);
    });
  }).then(
    (code) => ({ code }),
    (error: unknown) => ({ error }),
  );
  const feeding = pipeline(source, child.stdin).then(
    () => undefined,
    (error: unknown) => error,
  );
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const outcome = await exited;
    const fed = await feeding;
    if (fed !== undefined && errnoCode(fed) !== "EPIPE") throw asError(fed);
    if ("error" in outcome) throw asError(outcome.error);
    if (outcome.code !== 0) {
      const name = basename(program);
      // "/usr/bin/xz: (stdin): Unexpected end of input" → "Unexpected end of input"
      const last = (stderr.trim().split("\n").at(-1) ?? "")
        .replace(/^\S+: /, "")
        .replace(/^\(stdin\): /, "");
      throw new TownError(
        failureCode,
        `archive: ${name}: ${printable(last || `exit status ${String(outcome.code)}`, 300)}`,
      );
    }
  } finally {
    signal?.removeEventListener("abort", kill);
    if (child.exitCode === null && child.signalCode === null) kill();
  }
}

// --- helpers -----------------------------------------------------------------

function checkUnpackOptions(options: UnpackOptions): {
  limits: ExtractionLimits & { maxArchiveBytes: number };
  timeoutMs: number;
} {
  const maxBytes = checkLimit("archive", "maxBytes", options.maxBytes);
  const maxEntries = checkLimit("archive", "maxEntries", options.maxEntries ?? DEFAULT_MAX_ENTRIES);
  const maxArchiveBytes = checkLimit(
    "archive",
    "maxArchiveBytes",
    options.maxArchiveBytes ?? maxBytes + TAR_OVERHEAD_PER_ENTRY * maxEntries + TAR_OVERHEAD,
  );
  const timeoutMs = options.timeoutMs ?? DEFAULT_UNPACK_TIMEOUT_MS;
  if (!(Number.isSafeInteger(timeoutMs) && timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
    throw new TownError(
      "invalid_argument",
      `archive: timeout ${String(timeoutMs)} ms is out of range`,
    );
  }
  checkOwner(options.owner);
  return { limits: { maxBytes, maxEntries, maxArchiveBytes }, timeoutMs };
}

function archiveError(error: unknown): TownError {
  if (error instanceof TownError) return error;
  const code = errnoCode(error);
  if (code?.startsWith("Z_"))
    return new TownError("invalid_argument", "archive: the gzip data is corrupt");
  return ioError("archive", error);
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
