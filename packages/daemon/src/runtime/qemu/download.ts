/**
 * Streaming download of a VM image over http(s) into `<file>.part`, renamed
 * to `<file>` once complete. A `.part` left by an earlier attempt is resumed
 * with a `Range` request (kept only when the server answers 206 from exactly
 * where the part ends); a connection that drops midway is retried from where
 * it stopped. Bounded in size and idle time, and the sha256 covers the whole
 * file, the resumed part included.
 *
 * `decompress` unpacks an image published as .xz or .gz (found by its magic
 * bytes) before qemu-img sees it.
 *
 * The URL may come from a package, which must not make the box fetch its LAN
 * into a guest the package controls: unless `allowPrivateAddresses`, every
 * hop (redirects included) must resolve to public addresses only.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, type Hash } from "node:crypto";
import { constants } from "node:fs";
import { lstat, open, rename, rm, type FileHandle } from "node:fs/promises";
import { request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import { addAbortSignal, pipeline } from "node:stream";
import { createGunzip } from "node:zlib";
import { TownError } from "@townos/format";
import { isPrivateAddress, publicOnlyLookup } from "../../net/public-address.js";
import { formatDuration, printable } from "../../storage/names.js";
import { NO_FOLLOW } from "../../system/proc.js";

export const DEFAULT_MAX_DOWNLOAD_BYTES = 64 * 1024 ** 3;
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_REDIRECTS = 5;
export const DEFAULT_RETRIES = 3;
const MAX_URL_LENGTH = 4096;
const RETRY_DELAY_MS = 500;

export interface DownloadProgress {
  receivedBytes: number;
  /** The whole file's size when the server says it; null otherwise. */
  totalBytes: number | null;
}

export interface DownloadOptions {
  maxBytes?: number;
  /** Until the server's answer begins. */
  connectTimeoutMs?: number;
  /** Longest silence while the body streams. */
  idleTimeoutMs?: number;
  maxRedirects?: number;
  /** Times a dropped connection is resumed before giving up (the `.part` stays for a later call). */
  retries?: number;
  /** Let the URL reach loopback, link-local and private addresses: images a person adds, tests. */
  allowPrivateAddresses?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
}

export interface DownloadResult {
  /** Hex sha256 of the whole file. */
  sha256: string;
  bytes: number;
}

/** Why `url` may not be downloaded; undefined when fine. */
export function downloadUrlProblem(url: string): string | undefined {
  if (url.length > MAX_URL_LENGTH) return `the URL is longer than ${MAX_URL_LENGTH} characters`;
  // eslint-disable-next-line no-control-regex -- control characters and spaces are what this refuses
  if (/[\u0000-\u0020\u007f-\u009f]/.test(url)) return "the URL holds spaces or control characters";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${printable(url)}" is not a URL`;
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:")
    return `"${printable(url)}" is not an http(s) URL`;
  if (parsed.username !== "" || parsed.password !== "")
    return "the URL must not hold a user name or password";
  if (parsed.hostname === "") return `"${printable(url)}" names no host`;
  return undefined;
}

/** A `Content-Range: bytes start-end/total` header; total null for `*`; undefined when malformed. */
export function parseContentRange(
  header: string | undefined,
): { start: number; end: number; total: number | null } | undefined {
  const match = /^bytes (\d{1,16})-(\d{1,16})\/(\d{1,16}|\*)$/.exec(header?.trim() ?? "");
  if (!match) return undefined;
  const start = Number(match[1]);
  const end = Number(match[2]);
  const total = match[3] === "*" ? null : Number(match[3]);
  if (end < start || (total !== null && end >= total)) return undefined;
  return { start, end, total };
}

/**
 * Downloads `url` to `file` (through `<file>.part`, mode 0600, links never
 * followed). Leaves the `.part` behind when the transfer fails, for a later
 * call to resume.
 * @throws TownError invalid_argument (bad URL, refused address, too large),
 *   unavailable (network, HTTP status, time), the signal's reason when aborted
 */
export async function download(
  url: string,
  file: string,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  const problem = downloadUrlProblem(url);
  if (problem !== undefined) throw new TownError("invalid_argument", problem);
  const part = `${file}.part`;
  const state = await openPart(part);
  try {
    const retries = options.retries ?? DEFAULT_RETRIES;
    for (let attempt = 0; ; attempt += 1) {
      options.signal?.throwIfAborted();
      const before = state.received;
      try {
        await transfer(url, state, options);
        break;
      } catch (error) {
        // Only a transfer that was moving is worth resuming; refusals and HTTP errors stay errors.
        if (!(error instanceof Dropped) || attempt >= retries || options.signal?.aborted === true)
          throw error instanceof Dropped ? error.townError : error;
        if (state.received === before) await delay(RETRY_DELAY_MS * (attempt + 1), options.signal);
      }
    }
    await state.handle.sync();
  } catch (error) {
    await state.handle.close();
    // An empty part is nothing to resume.
    if (state.received === 0) await rm(part, { force: true });
    throw error;
  }
  await state.handle.close();
  await rename(part, file);
  return { sha256: state.hash.digest("hex"), bytes: state.received };
}

interface PartState {
  handle: FileHandle;
  hash: Hash;
  received: number;
}

/** Opens the `.part` for appending, hashing what an earlier attempt left in it. */
async function openPart(part: string): Promise<PartState> {
  const existing = await lstat(part).catch(() => undefined);
  if (existing !== undefined && !existing.isFile())
    throw new TownError("io", `${part} is not a regular file`);
  const handle = await open(part, constants.O_RDWR | constants.O_CREAT | NO_FOLLOW, 0o600);
  try {
    const hash = createHash("sha256");
    const size = (await handle.stat()).size;
    if (size > 0) {
      for await (const chunk of handle.createReadStream({
        start: 0,
        end: size - 1,
        autoClose: false,
      }))
        hash.update(chunk as Buffer);
    }
    return { handle, hash, received: size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** Empties the part: the server did not resume where it ends. */
async function restart(state: PartState): Promise<void> {
  await state.handle.truncate(0);
  state.hash = createHash("sha256");
  state.received = 0;
}

/** A transfer that failed after it began: worth resuming. */
class Dropped extends Error {
  constructor(readonly townError: TownError) {
    super(townError.message);
  }
}

/** One request (following redirects) whose body is appended to the part. */
async function transfer(url: string, state: PartState, options: DownloadOptions): Promise<void> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES;
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  let current = new URL(url);
  for (let hops = 0; ; hops += 1) {
    const response = await get(current, state.received, options);
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    if (status >= 300 && status < 400 && location !== undefined) {
      response.destroy();
      if (hops >= maxRedirects)
        throw new TownError("unavailable", `${url}: more than ${maxRedirects} redirects`);
      const next = URL.canParse(location, current.href)
        ? new URL(location, current).href
        : location;
      const problem = downloadUrlProblem(next);
      if (problem !== undefined)
        throw new TownError("invalid_argument", `${url} redirects to a refused URL: ${problem}`);
      current = new URL(next);
      continue;
    }
    let total: number | null;
    if (status === 206 && state.received > 0) {
      const range = parseContentRange(response.headers["content-range"]);
      if (range === undefined || range.start !== state.received) {
        // Not the rest of our part: ask for the whole file instead.
        response.destroy();
        await restart(state);
        continue;
      }
      total = range.total;
    } else if (status === 416 && state.received > 0) {
      response.destroy();
      await restart(state);
      continue;
    } else if (status === 200) {
      if (state.received > 0) await restart(state);
      const length = Number(response.headers["content-length"] ?? Number.NaN);
      total = Number.isSafeInteger(length) && length >= 0 ? length : null;
    } else {
      response.destroy();
      throw new TownError("unavailable", `${current.host} answered ${status} for ${current.href}`);
    }
    if (total !== null && total > maxBytes) {
      response.destroy();
      throw tooLarge(url, maxBytes);
    }
    await receive(response, state, { total, maxBytes, url, options });
    return;
  }
}

/** Appends the body to the part, hashing and counting as it comes. */
async function receive(
  response: IncomingMessage,
  state: PartState,
  context: { total: number | null; maxBytes: number; url: string; options: DownloadOptions },
): Promise<void> {
  const { total, maxBytes, url, options } = context;
  const report = (): void => {
    options.onProgress?.({ receivedBytes: state.received, totalBytes: total });
  };
  report();
  try {
    for await (const chunk of response) {
      const data = chunk as Buffer;
      if (state.received + data.length > maxBytes) throw tooLarge(url, maxBytes);
      await state.handle.write(data, 0, data.length, state.received);
      state.hash.update(data);
      state.received += data.length;
      report();
    }
  } catch (error) {
    response.destroy();
    if (error instanceof TownError || options.signal?.aborted === true) throw error;
    throw new Dropped(
      new TownError("unavailable", `${url}: the transfer broke off: ${(error as Error).message}`),
    );
  }
  if (total !== null && state.received !== total)
    throw new Dropped(
      new TownError(
        "unavailable",
        `${url}: the connection closed after ${state.received} of ${total} bytes`,
      ),
    );
}

/** Starts a GET and resolves with the answer's head; connect and idle time bounded. */
function get(url: URL, offset: number, options: DownloadOptions): Promise<IncomingMessage> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const allowPrivate = options.allowPrivateAddresses === true;
  // A literal address is never looked up, so the lookup below would not see it.
  if (!allowPrivate && isIP(host) !== 0 && isPrivateAddress(host))
    return Promise.reject(
      new TownError("invalid_argument", `${host} is a local address, which may not be reached`),
    );
  const headers: Record<string, string> = {
    "user-agent": "Town OS",
    "accept-encoding": "identity",
  };
  if (offset > 0) headers["range"] = `bytes=${offset}-`;
  const requestOptions: RequestOptions = {
    method: "GET",
    headers,
    agent: false,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(allowPrivate ? {} : { lookup: publicOnlyLookup }),
  };
  const connectMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    let answer: IncomingMessage | undefined;
    const outgoing = send(url, requestOptions, (response) => {
      clearTimeout(connectTimer);
      answer = response;
      resolve(response);
    });
    const connectTimer = setTimeout(() => {
      outgoing.destroy(new Error(`no answer within ${formatDuration(connectMs)}`));
    }, connectMs);
    outgoing.setTimeout(idleMs, () => {
      // Once the body streams, its reader is the one to tell why it stopped.
      (answer ?? outgoing).destroy(new Error(`nothing received for ${formatDuration(idleMs)}`));
    });
    outgoing.on("error", (error) => {
      clearTimeout(connectTimer);
      if (options.signal?.aborted === true) {
        reject(options.signal.reason as Error);
        return;
      }
      const code = (error as NodeJS.ErrnoException).code;
      // The public-only lookup refuses with EACCES: the URL's fault, not the network's.
      if (code === "EACCES")
        reject(new TownError("invalid_argument", `${url.host}: ${error.message}`));
      else reject(new Dropped(new TownError("unavailable", `${url.host}: ${error.message}`)));
    });
    outgoing.end();
  });
}

function tooLarge(url: string, maxBytes: number): TownError {
  return new TownError(
    "invalid_argument",
    `${url} is larger than the limit of ${maxBytes} bytes for a VM image`,
  );
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener("abort", aborted);
      resolve();
    }
    function aborted(): void {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    }
    signal?.addEventListener("abort", aborted, { once: true });
  });
}

export type Compression = "xz" | "gzip";

const MAGIC: readonly [Compression, Buffer][] = [
  ["xz", Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
  ["gzip", Buffer.from([0x1f, 0x8b])],
];
const MAX_STDERR_BYTES = 4096;

/** The compression `file` starts with (its bytes decide, not its name); null for none. */
export async function compressionOf(file: string): Promise<Compression | null> {
  const handle = await open(file, constants.O_RDONLY | NO_FOLLOW);
  try {
    const head = Buffer.alloc(6);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const found = MAGIC.find(([, magic]) =>
      head.subarray(0, bytesRead).subarray(0, magic.length).equals(magic),
    );
    return found === undefined ? null : found[0];
  } finally {
    await handle.close();
  }
}

/**
 * Unpacks an xz (Debian's `xz`) or gzip (zlib) download into `dest` (mode
 * 0600), leaving holes for runs of zeros as raw disk images are mostly empty.
 * @returns the compression, or null when `file` is not compressed (nothing written)
 * @throws TownError invalid_argument for damaged data or more than `maxBytes` unpacked
 */
export async function decompress(
  file: string,
  dest: string,
  options: { maxBytes?: number; signal?: AbortSignal } = {},
): Promise<Compression | null> {
  const compression = await compressionOf(file);
  if (compression === null) return null;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES;
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NO_FOLLOW;
  const out = await open(dest, flags, 0o600);
  let stderr = "";
  const child =
    compression === "xz"
      ? spawn("xz", ["--decompress", "--stdout", "--", file], {
          stdio: ["ignore", "pipe", "pipe"],
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        })
      : undefined;
  child?.stderr.on("data", (chunk: Buffer) => {
    stderr = `${stderr}${chunk.toString("utf8")}`.slice(-MAX_STDERR_BYTES);
  });
  const exited = child === undefined ? Promise.resolve(0) : exitOf(child);
  // Not awaited when reading fails first: the rejection is seen below or not at all.
  exited.catch(() => undefined);
  const damaged = (detail: string): TownError =>
    new TownError(
      "invalid_argument",
      `the ${compression} data is damaged: ${printable(detail, 300)}`,
    );
  let length = 0;
  try {
    let source = child?.stdout;
    if (source === undefined) {
      const gunzip = createGunzip();
      const input = await open(file, constants.O_RDONLY | NO_FOLLOW);
      // pipeline closes the file when gunzip fails; the failure itself comes out of gunzip.
      pipeline(input.createReadStream(), gunzip, () => undefined);
      source = gunzip;
    }
    for await (const chunk of options.signal === undefined
      ? source
      : addAbortSignal(options.signal, source)) {
      const data = chunk as Buffer;
      if (length + data.length > maxBytes)
        throw new TownError("invalid_argument", `the image unpacks to more than ${maxBytes} bytes`);
      if (!isZeros(data)) await out.write(data, 0, data.length, length);
      length += data.length;
    }
    const status = await exited;
    const last = stderr
      .split("\n")
      .filter((line) => line.trim() !== "")
      .at(-1);
    if (status !== 0) throw damaged(last ?? `xz exited with status ${status}`);
    await out.truncate(length);
    await out.sync();
  } catch (error) {
    child?.kill("SIGKILL");
    await out.close();
    await rm(dest, { force: true });
    if (error instanceof TownError || options.signal?.aborted === true) throw error;
    if ((error as NodeJS.ErrnoException).code === "ENOENT" && compression === "xz")
      throw new TownError("unavailable", "xz is not installed (Debian package xz-utils)");
    throw damaged((error as Error).message);
  }
  await out.close();
  return compression;
}

function exitOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      resolve(code ?? -1);
    });
  });
}

const ZEROS = Buffer.alloc(1024 * 1024);

function isZeros(data: Buffer): boolean {
  if (data.length <= ZEROS.length) return data.equals(ZEROS.subarray(0, data.length));
  return data.every((byte) => byte === 0);
}
