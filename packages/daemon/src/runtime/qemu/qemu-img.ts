/**
 * Debian's `qemu-img`, for disk images the box did not make: probe (`info`),
 * check, convert to qcow2 and make copy-on-write overlays. Always an argument
 * array (never a shell), absolute paths (qemu-img reads `json:…` or
 * `nbd:…` filenames as options), a time limit and bounded output.
 *
 * A downloaded image is hostile: a qcow2 naming a backing or data file, or a
 * VMDK descriptor naming extents, would let its guest read host files such as
 * /etc/shadow. `info` never follows a backing chain, every later step passes
 * the probed format explicitly (raw data is never probed again as something
 * else), and `convertImage` refuses an image that names any other file.
 */
import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, isAbsolute, join } from "node:path";
import { randomBytes } from "node:crypto";
import { TownError } from "@townos/format";
import { NO_FOLLOW } from "../../system/proc.js";
import { formatDuration, printable } from "../../storage/names.js";

/** The formats accepted as sources (qemu-img's names); the store keeps qcow2 only. */
export const SOURCE_FORMATS = ["qcow2", "raw", "vmdk", "vdi", "vhdx", "vpc"] as const;
export type SourceFormat = (typeof SOURCE_FORMATS)[number];

export const INFO_TIMEOUT_MS = 60_000;
export const CONVERT_TIMEOUT_MS = 60 * 60_000;
const MAX_OUTPUT_BYTES = 1024 * 1024;
const MAX_STDERR_BYTES = 16 * 1024;
/** `qemu-img check`'s exit status for a format it has no check for. */
const CHECK_UNSUPPORTED = 63;

/** What `qemu-img info` says of one image (its own header; a backing chain is not followed). */
export interface ImageInfo {
  format: string;
  virtualSize: number;
  /** Bytes the file takes on the host; null when qemu-img does not say. */
  actualSize: number | null;
  /** The backing file the header names, as written there; null when none. */
  backingFile: string | null;
  /**
   * Every other file the image would make qemu open: backing file, qcow2
   * external data file, VMDK extents besides the image itself.
   */
  externalFiles: string[];
  dirty: boolean;
  /** qcow2's own "corrupt" bit. */
  corrupt: boolean;
}

export interface ImageInfoOptions {
  /** Read the image as this format instead of probing it. */
  format?: string;
  /** `-U`: read an image a running QEMU holds open (e.g. a VM's disk). */
  forceShare?: boolean;
}

export interface CheckResult {
  /** False when qemu-img found corruptions or could not finish the check. */
  ok: boolean;
  checkErrors: number;
  corruptions: number;
  leaks: number;
}

export function isSourceFormat(format: string): format is SourceFormat {
  return (SOURCE_FORMATS as readonly string[]).includes(format);
}

/** Runs `qemu-img info --output=json` without `--backing-chain`. */
export async function imageInfo(path: string, options: ImageInfoOptions = {}): Promise<ImageInfo> {
  requireAbsolute(path);
  const args = ["info", "--output=json"];
  if (options.format !== undefined) args.push("-f", options.format);
  if (options.forceShare === true) args.push("-U");
  args.push(path);
  const result = await qemuImg(args, INFO_TIMEOUT_MS);
  if (result.status !== 0) throw badImage(path, result.stderr);
  return parseImageInfo(result.stdout, path);
}

/** The fields of `qemu-img info --output=json` the store relies on. @throws TownError invalid_argument */
export function parseImageInfo(json: string, path: string): ImageInfo {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new TownError("invalid_argument", `qemu-img info gave no readable answer for ${path}`);
  }
  const info = record(raw);
  const format = info["format"];
  const virtualSize = info["virtual-size"];
  if (typeof format !== "string" || !isSize(virtualSize))
    throw new TownError(
      "invalid_argument",
      `qemu-img info did not give a format and size for ${path}`,
    );
  const specific = record(record(info["format-specific"])["data"]);
  const backing = info["backing-filename"] ?? info["full-backing-filename"];
  const backingFile = typeof backing === "string" ? backing : null;
  const external: string[] = [];
  if (backingFile !== null) external.push(backingFile);
  else if (info["backing-filename-format"] !== undefined) external.push("(unnamed backing file)");
  const dataFile = specific["data-file"];
  if (typeof dataFile === "string") external.push(dataFile);
  const extents = specific["extents"];
  if (Array.isArray(extents)) {
    for (const extent of extents) {
      const name = record(extent)["filename"];
      // A monolithic VMDK lists itself as its one extent, by the name it was opened with.
      if (typeof name !== "string" || (name !== path && name !== basename(path)))
        external.push(typeof name === "string" ? name : "(unnamed extent)");
    }
  }
  const actual = info["actual-size"];
  return {
    format,
    virtualSize,
    actualSize: isSize(actual) ? actual : null,
    backingFile,
    externalFiles: external,
    dirty: info["dirty-flag"] === true,
    corrupt: specific["corrupt"] === true,
  };
}

/**
 * Refuses an image unfit as a base: a format not in SOURCE_FORMATS, a
 * backing or any other external file, qcow2's corrupt bit.
 * @throws TownError invalid_argument
 */
export function assertSelfContained(info: ImageInfo, what: string): void {
  if (!isSourceFormat(info.format))
    throw new TownError(
      "invalid_argument",
      `${what} is a "${printable(info.format)}" image; accepted are ${SOURCE_FORMATS.join(", ")}`,
    );
  if (info.externalFiles.length > 0)
    throw new TownError(
      "invalid_argument",
      `${what} refers to other files (${info.externalFiles.map((f) => `"${printable(f)}"`).join(", ")}): ` +
        "an image must be self-contained, as a backing file could expose host files to the guest",
    );
  if (info.corrupt) throw new TownError("invalid_argument", `${what} is marked corrupt`);
}

/**
 * `qemu-img check` of an image read as `format`; leaked clusters alone still
 * pass, and so does a format qemu-img cannot check (raw).
 */
export async function checkImage(path: string, format = "qcow2"): Promise<CheckResult> {
  requireAbsolute(path);
  const result = await qemuImg(["check", "--output=json", "-f", format, path], CONVERT_TIMEOUT_MS);
  if (result.status === CHECK_UNSUPPORTED)
    return { ok: true, checkErrors: 0, corruptions: 0, leaks: 0 };
  // Exit 0: clean; 2: corruptions; 3: leaks only; 1 and others: the check itself failed.
  if (![0, 2, 3].includes(result.status)) throw badImage(path, result.stderr);
  let report: Record<string, unknown>;
  try {
    report = record(JSON.parse(result.stdout));
  } catch {
    throw badImage(path, result.stderr);
  }
  const count = (key: string): number => {
    const value = report[key];
    return typeof value === "number" ? value : 0;
  };
  const checkErrors = count("check-errors");
  const corruptions = count("corruptions");
  return {
    ok: result.status !== 2 && corruptions === 0 && checkErrors === 0,
    checkErrors,
    corruptions,
    leaks: count("leaks"),
  };
}

export interface ConvertOptions {
  timeoutMs?: number;
}

/**
 * Converts `src` (read as `srcFormat`) to a qcow2 at `dest`: written to a
 * temporary file beside `dest` (mode 0600) and renamed, so `dest` is either
 * absent or complete. Refuses a source that names other files.
 * @throws TownError invalid_argument for a bad image, unavailable without qemu-img or out of time
 */
export async function convertImage(
  src: string,
  srcFormat: string,
  dest: string,
  options: ConvertOptions = {},
): Promise<void> {
  requireAbsolute(src);
  requireAbsolute(dest);
  if (!isSourceFormat(srcFormat))
    throw new TownError(
      "invalid_argument",
      `"${printable(srcFormat)}" is not an accepted image format`,
    );
  assertSelfContained(await imageInfo(src, { format: srcFormat }), src);
  const temp = join(dirname(dest), `.${basename(dest)}.${randomBytes(6).toString("hex")}.tmp`);
  await createPrivateFile(temp);
  try {
    const args = ["convert", "-f", srcFormat, "-O", "qcow2", src, temp];
    const result = await qemuImg(args, options.timeoutMs ?? CONVERT_TIMEOUT_MS);
    if (result.status !== 0) throw badImage(src, result.stderr);
    await rename(temp, dest);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * Makes `overlay`, a qcow2 (mode 0600) whose backing file is the qcow2 `base`.
 * @throws TownError conflict when `overlay` exists
 */
export async function createOverlay(base: string, overlay: string): Promise<void> {
  requireAbsolute(base);
  requireAbsolute(overlay);
  await createPrivateFile(overlay);
  try {
    const args = ["create", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay];
    const result = await qemuImg(args, INFO_TIMEOUT_MS);
    if (result.status !== 0) throw badImage(base, result.stderr);
  } catch (error) {
    await rm(overlay, { force: true });
    throw error;
  }
}

/** Creates an empty file only this user may read, refusing one that exists (or a link). */
async function createPrivateFile(path: string): Promise<void> {
  try {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NO_FOLLOW;
    await (await open(path, flags, 0o600)).close();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST")
      throw new TownError("conflict", `${path} already exists`);
    throw new TownError("io", `cannot create ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function requireAbsolute(path: string): void {
  // qemu-img reads "json:{…}" and "protocol:…" filenames as options; an absolute path is a file.
  // eslint-disable-next-line no-control-regex -- a control character is what this refuses
  if (!isAbsolute(path) || /[\u0000-\u001f]/.test(path))
    throw new TownError("invalid_argument", `"${printable(path)}" is not an absolute path`);
}

function badImage(path: string, stderr: string): TownError {
  const last = stderr
    .split("\n")
    .map((line) => line.replace(/^qemu-img:\s*/, "").trim())
    .filter((line) => line !== "")
    .at(-1);
  return new TownError(
    "invalid_argument",
    `${path} is not a usable disk image: ${last === undefined ? "qemu-img failed" : printable(last, 300)}`,
  );
}

interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs qemu-img; a non-zero exit is the caller's to judge (`check` reports
 * through it). Only the end of stderr is kept: `check` of a large damaged
 * image prints a line per bad cluster.
 */
function qemuImg(args: readonly string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("qemu-img", args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LC_ALL: "C", LANG: "C" },
    });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = Buffer.alloc(0);
    let failure: TownError | undefined;
    const stop = (error: TownError): void => {
      failure ??= error;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(() => {
      stop(
        new TownError(
          "unavailable",
          `qemu-img ${args[0] ?? ""} took longer than ${formatDuration(timeoutMs)} and was stopped`,
        ),
      );
    }, timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > MAX_OUTPUT_BYTES)
        stop(new TownError("io", `qemu-img ${args[0] ?? ""} printed too much`));
      else stdout.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = Buffer.concat([stderr, chunk]);
      if (stderr.length > MAX_STDERR_BYTES) stderr = stderr.subarray(-MAX_STDERR_BYTES);
    });
    child.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        error.code === "ENOENT"
          ? new TownError("unavailable", "qemu-img is not installed (Debian package qemu-utils)")
          : new TownError("io", `qemu-img ${args[0] ?? ""}: ${error.message}`),
      );
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (failure !== undefined) reject(failure);
      else
        resolve({
          status: code ?? -1,
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: stderr.toString("utf8"),
        });
    });
  });
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function isSize(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
