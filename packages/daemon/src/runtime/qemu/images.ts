/**
 * The box's VM image store: base disk images, downloaded once, checked and
 * converted to qcow2, from which every installed VM gets its own
 * copy-on-write disk (`createOverlay`). A directory only the daemon writes:
 *
 *   <name>.qcow2            the base image (never written once complete)
 *   <name>.json             its metadata, written last: its presence means complete
 *   .download-<name>-<h>    a download in progress (`.part` while transferring,
 *                           `.unpacked` for an .xz or .gz image), <h> from the URL
 *                           so a part is resumed only from its own URL
 *
 * Entries are never followed through links (lstat, O_NOFOLLOW). A download
 * that failed on the network keeps its `.part` so a later add resumes it; an
 * image found bad (checksum, format, backing file, corrupt, too large) leaves
 * nothing behind.
 */
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { open, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, isAbsolute, join } from "node:path";
import { TownError } from "@townos/format";
import { systemClock, type Clock } from "../../clock.js";
import { ensureDirs, lstatOrUndefined, PathRefused } from "../../storage/safe-fs.js";
import { printable } from "../../storage/names.js";
import { NO_FOLLOW } from "../../system/proc.js";
import {
  decompress,
  DEFAULT_MAX_DOWNLOAD_BYTES,
  download,
  downloadUrlProblem,
  type DownloadProgress,
  type DownloadResult,
} from "./download.js";
import { isImageUrl, VM_IMAGE_NAME, vmImageName } from "./image-name.js";
import { assertSelfContained, checkImage, convertImage, imageInfo } from "./qemu-img.js";

/** Guest disks larger than this are refused by default (a small file may claim any size). */
export const DEFAULT_MAX_VIRTUAL_BYTES = 4 * 1024 ** 4;
const MAX_METADATA_BYTES = 64 * 1024;
/** Failed downloads kept for `downloads()` to show. */
const MAX_FAILURES_SHOWN = 32;

export interface VmImage {
  name: string;
  /** Where it was downloaded from; null for an image that came another way. */
  url: string | null;
  /** Hex sha256 of the file as downloaded (before conversion). */
  sha256: string;
  /** The format it came in (qemu-img's name). */
  format: string;
  /** The disk's size as the guest sees it. */
  virtualSize: number;
  /** Bytes the stored qcow2 takes. */
  fileSize: number;
  /** ISO 8601. */
  addedAt: string;
}

export type VmImagePhase = "download" | "check" | "convert";

export interface VmImageDownload {
  name: string;
  url: string;
  phase: VmImagePhase;
  receivedBytes: number;
  totalBytes: number | null;
  /** Set once it failed (kept for a while so the API can say why). */
  error?: string;
}

export interface AddOptions {
  /** Store name; from the URL (`vmImageName`) when absent. */
  name?: string;
  /** Expected hex sha256 of the downloaded file. */
  sha256?: string;
  onProgress?: (progress: DownloadProgress) => void;
  /** Stops this caller's wait; the download stops once every caller waiting for it has. */
  signal?: AbortSignal;
  /** For images a person adds by hand; never for URLs from a package. */
  allowPrivateAddresses?: boolean;
}

export interface VmImageStoreOptions {
  /** Largest download (default: download.ts's 64 GiB). */
  maxDownloadBytes?: number;
  maxVirtualBytes?: number;
  clock?: Clock;
}

/** Why `name` is not a store name; undefined when fine. */
export function vmImageNameProblem(name: string): string | undefined {
  if (!VM_IMAGE_NAME.test(name))
    return `"${printable(name)}" is not a VM image name (letters, digits, ".", "_", "-"; up to 128; starting with a letter or digit)`;
  if (name.includes("..")) return `"${printable(name)}" may not contain ".."`;
  return undefined;
}

/** One download into the store, shared by every caller adding its name. */
interface Transfer {
  state: VmImageDownload;
  listeners: Set<(progress: DownloadProgress) => void>;
  controller: AbortController;
}

interface Job extends Transfer {
  promise: Promise<VmImage>;
  /** Callers still waiting; the download is aborted when the last one gives up. */
  waiting: number;
}

export class VmImageStore {
  private readonly jobs = new Map<string, Job>();
  private readonly failures = new Map<string, VmImageDownload>();
  private readonly clock: Clock;

  /** @param dir absolute path of the store (`<dataDir>/vm-images`); made on first add. */
  constructor(
    readonly dir: string,
    private readonly options: VmImageStoreOptions = {},
  ) {
    if (!isAbsolute(dir)) throw new TownError("invalid_argument", `${dir} is not an absolute path`);
    this.clock = options.clock ?? systemClock;
  }

  /** Complete images, by name. */
  async list(): Promise<VmImage[]> {
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    const images: VmImage[] = [];
    for (const entry of entries.sort()) {
      if (!entry.endsWith(".json")) continue;
      const name = entry.slice(0, -".json".length);
      if (vmImageNameProblem(name) !== undefined) continue;
      const image = await this.readMetadata(name);
      if (image !== undefined) images.push(image);
    }
    return images;
  }

  /** The complete image `name`; undefined when absent. @throws TownError invalid_argument for a bad name */
  async get(name: string): Promise<VmImage | undefined> {
    checkName(name);
    return this.readMetadata(name);
  }

  /** Absolute path of the base image `name` (which may not exist). @throws TownError invalid_argument */
  path(name: string): string {
    checkName(name);
    return join(this.dir, `${name}.qcow2`);
  }

  /** Adds in progress, and recent failures with their error. */
  downloads(): VmImageDownload[] {
    const active = [...this.jobs.values()].map((job) => ({ ...job.state }));
    const failed = [...this.failures.values()].filter((entry) => !this.jobs.has(entry.name));
    return [...active, ...failed.map((entry) => ({ ...entry }))];
  }

  /**
   * Downloads `url` into the store as `name`, or returns the image already
   * there from the same URL. Concurrent adds of one name and URL share one
   * download.
   * @throws TownError conflict when `name` holds (or is getting) another URL;
   *   invalid_argument for a bad URL, name, checksum or image; unavailable for the network
   */
  add(url: string, options: AddOptions = {}): Promise<VmImage> {
    const problem = downloadUrlProblem(url);
    if (problem !== undefined) return Promise.reject(new TownError("invalid_argument", problem));
    const name = options.name ?? vmImageName(url);
    const nameProblem = vmImageNameProblem(name);
    if (nameProblem !== undefined)
      return Promise.reject(new TownError("invalid_argument", nameProblem));
    const sha256 = options.sha256?.toLowerCase();
    if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256))
      return Promise.reject(
        new TownError("invalid_argument", "the sha256 must be 64 hexadecimal digits"),
      );
    // Checked and registered without awaiting, so two calls cannot both start a download.
    let job = this.jobs.get(name);
    if (job !== undefined && job.state.url !== url)
      return Promise.reject(conflict(name, job.state.url, url));
    if (job === undefined) job = this.start(name, url, sha256, options.allowPrivateAddresses);
    return this.join(job, options).then((image) => {
      // The image was there already, or another caller's download without this checksum.
      if (sha256 !== undefined && image.sha256 !== sha256)
        throw mismatch(url, image.sha256, sha256);
      return image;
    });
  }

  /**
   * The image a `vm.image` reference means: a URL is added (or found) under
   * its `vmImageName`; anything else must name an image in the store.
   * @throws TownError not_found for an unknown store name, and as `add`
   */
  async ensure(reference: string, options: Omit<AddOptions, "name"> = {}): Promise<VmImage> {
    if (isImageUrl(reference)) return this.add(reference, options);
    const image = await this.get(reference);
    if (image === undefined)
      throw new TownError(
        "not_found",
        `there is no VM image "${reference}" in the store; add it with: town vm-image add URL --name ${reference}`,
      );
    return image;
  }

  /**
   * Deletes image `name` and any download of it left behind. Whether a VM
   * still uses it is the caller's to check (installs are not known here): a
   * running VM keeps its open base, but its disk cannot start again without it.
   * @returns false when there was nothing of that name
   * @throws TownError conflict while the image is being added
   */
  async remove(name: string): Promise<boolean> {
    checkName(name);
    if (this.jobs.has(name))
      throw new TownError(
        "conflict",
        `VM image "${name}" is being added; try again once it is done`,
      );
    this.failures.delete(name);
    // The metadata goes first: without it the image no longer looks complete.
    const found = await removeFile(join(this.dir, `${name}.json`));
    const base = await removeFile(join(this.dir, `${name}.qcow2`));
    const leftovers = await this.downloadLeftovers(name);
    for (const file of leftovers) await removeFile(join(this.dir, file));
    return found || base;
  }

  private start(
    name: string,
    url: string,
    sha256: string | undefined,
    allowPrivateAddresses: boolean | undefined,
  ): Job {
    const transfer: Transfer = {
      state: { name, url, phase: "download", receivedBytes: 0, totalBytes: null },
      listeners: new Set(),
      controller: new AbortController(),
    };
    const promise = this.fetch(transfer, sha256, allowPrivateAddresses === true).then(
      (image) => {
        this.jobs.delete(name);
        return image;
      },
      (error: unknown) => {
        this.jobs.delete(name);
        this.remember({ ...transfer.state, error: (error as Error).message });
        throw error;
      },
    );
    const job: Job = { ...transfer, promise, waiting: 0 };
    this.failures.delete(name);
    this.jobs.set(name, job);
    // Callers may all have left: the outcome is still kept in `failures`, not unhandled.
    promise.catch(() => undefined);
    return job;
  }

  /** Waits for `job` as one more caller, with that caller's progress listener and signal. */
  private async join(job: Job, options: AddOptions): Promise<VmImage> {
    const { onProgress, signal } = options;
    signal?.throwIfAborted();
    if (onProgress !== undefined) job.listeners.add(onProgress);
    job.waiting += 1;
    let leave: () => void = () => undefined;
    const left = new Promise<never>((_resolve, reject) => {
      if (signal === undefined) return;
      const aborted = (): void => {
        reject(signal.reason as Error);
      };
      signal.addEventListener("abort", aborted, { once: true });
      leave = () => {
        signal.removeEventListener("abort", aborted);
      };
    });
    try {
      return await Promise.race([job.promise, left]);
    } finally {
      leave();
      if (onProgress !== undefined) job.listeners.delete(onProgress);
      job.waiting -= 1;
      if (job.waiting === 0 && this.jobs.get(job.state.name) === job)
        job.controller.abort(signal?.reason ?? new Error("nobody waits for the download"));
    }
  }

  private async fetch(
    job: Transfer,
    sha256: string | undefined,
    allowPrivate: boolean,
  ): Promise<VmImage> {
    const { name, url } = job.state;
    const existing = await this.readMetadata(name);
    if (existing !== undefined) {
      if (existing.url === url) return existing;
      throw conflict(name, existing.url, url);
    }
    await ensureDirs(dirname(this.dir), [basename(this.dir)], { mode: 0o700 }).catch(
      (error: unknown) => {
        if (error instanceof PathRefused)
          throw new TownError("io", `the VM image store ${this.dir} ${error.reason}`);
        throw error;
      },
    );
    const downloaded = join(this.dir, downloadName(name, url));
    const base = join(this.dir, `${name}.qcow2`);
    const part = `${downloaded}.part`;
    const unpacked = `${downloaded}.unpacked`;
    // A file from a download that completed before a crash is not trusted: fetch again.
    await removeFile(downloaded);
    await removeFile(unpacked);
    let received: DownloadResult;
    try {
      received = await download(url, downloaded, {
        ...(this.options.maxDownloadBytes === undefined
          ? {}
          : { maxBytes: this.options.maxDownloadBytes }),
        allowPrivateAddresses: allowPrivate,
        signal: job.controller.signal,
        onProgress: (progress) => {
          job.state.receivedBytes = progress.receivedBytes;
          job.state.totalBytes = progress.totalBytes;
          for (const listener of job.listeners) {
            try {
              listener(progress);
            } catch {
              // A caller's listener failing must not break the download others wait for.
            }
          }
        },
      });
    } catch (error) {
      // The network's fault or a caller's abort: the part stays for the next add to resume.
      const resumable =
        job.controller.signal.aborted ||
        (error instanceof TownError && error.code === "unavailable");
      if (!resumable) await removeFile(part);
      throw error;
    }
    try {
      if (sha256 !== undefined && received.sha256 !== sha256)
        throw mismatch(url, received.sha256, sha256);
      job.state.phase = "check";
      const compressed = await decompress(downloaded, unpacked, {
        maxBytes: this.options.maxDownloadBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES,
        signal: job.controller.signal,
      }).catch((error: unknown) => {
        throw error instanceof TownError ? error.withContext(url) : error;
      });
      const source = compressed === null ? downloaded : unpacked;
      const info = await imageInfo(source);
      assertSelfContained(info, url);
      const maxVirtual = this.options.maxVirtualBytes ?? DEFAULT_MAX_VIRTUAL_BYTES;
      if (info.virtualSize > maxVirtual)
        throw new TownError(
          "invalid_argument",
          `${url}: the disk's size of ${info.virtualSize} bytes is over the limit of ${maxVirtual}`,
        );
      const check = await checkImage(source, info.format);
      if (!check.ok)
        throw new TownError(
          "invalid_argument",
          `${url}: the ${info.format} image is damaged or truncated (qemu-img check found ${check.corruptions} corruptions, ${check.checkErrors} errors)`,
        );
      job.state.phase = "convert";
      await convertImage(source, info.format, base);
      const converted = await imageInfo(base, { format: "qcow2" });
      const image: VmImage = {
        name,
        url,
        sha256: received.sha256,
        format: info.format,
        virtualSize: converted.virtualSize,
        fileSize: (await lstatOrUndefined(base))?.size ?? 0,
        addedAt: new Date(this.clock()).toISOString(),
      };
      await this.writeMetadata(image);
      await removeFile(downloaded);
      await removeFile(unpacked);
      return image;
    } catch (error) {
      await removeFile(base);
      await removeFile(downloaded);
      await removeFile(unpacked);
      throw error;
    }
  }

  private async readMetadata(name: string): Promise<VmImage | undefined> {
    let text: string;
    try {
      const file = await open(join(this.dir, `${name}.json`), constants.O_RDONLY | NO_FOLLOW);
      try {
        if (!(await file.stat()).isFile()) return undefined;
        const buffer = Buffer.alloc(MAX_METADATA_BYTES);
        const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
        text = buffer.subarray(0, bytesRead).toString("utf8");
      } finally {
        await file.close();
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ELOOP") return undefined;
      throw error;
    }
    const image = parseMetadata(text);
    if (image?.name !== name) return undefined;
    const base = await lstatOrUndefined(join(this.dir, `${name}.qcow2`));
    return base?.isFile() === true ? image : undefined;
  }

  /** Written to a temporary file and renamed: a crash leaves the old state or the new. */
  private async writeMetadata(image: VmImage): Promise<void> {
    const target = join(this.dir, `${image.name}.json`);
    const temp = `${join(this.dir, `.${image.name}.json`)}.tmp`;
    await removeFile(temp);
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NO_FOLLOW;
    const file = await open(temp, flags, 0o600);
    try {
      await file.writeFile(`${JSON.stringify(image, null, 2)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, target);
  }

  private async downloadLeftovers(name: string): Promise<string[]> {
    const prefix = `.download-${name}-`;
    try {
      return (await readdir(this.dir)).filter(
        (entry) =>
          entry.startsWith(prefix) &&
          /^[0-9a-f]{8}(\.part|\.unpacked)?$/.test(entry.slice(prefix.length)),
      );
    } catch {
      return [];
    }
  }

  private remember(entry: VmImageDownload): void {
    this.failures.delete(entry.name);
    this.failures.set(entry.name, entry);
    for (const oldest of this.failures.keys()) {
      if (this.failures.size <= MAX_FAILURES_SHOWN) break;
      this.failures.delete(oldest);
    }
  }
}

/** The metadata of one image; undefined when the text is not one. */
export function parseMetadata(text: string): VmImage | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null) return undefined;
  const value = raw as Record<string, unknown>;
  const size = (key: string): number | undefined => {
    const n = value[key];
    return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  };
  const { name, url, sha256, format, addedAt } = value;
  const virtualSize = size("virtualSize");
  const fileSize = size("fileSize");
  if (
    typeof name !== "string" ||
    vmImageNameProblem(name) !== undefined ||
    !(url === null || typeof url === "string") ||
    typeof sha256 !== "string" ||
    !/^[0-9a-f]{64}$/.test(sha256) ||
    typeof format !== "string" ||
    typeof addedAt !== "string" ||
    virtualSize === undefined ||
    fileSize === undefined
  )
    return undefined;
  return { name, url, sha256, format, virtualSize, fileSize, addedAt };
}

function checkName(name: string): void {
  const problem = vmImageNameProblem(name);
  if (problem !== undefined) throw new TownError("invalid_argument", problem);
}

function downloadName(name: string, url: string): string {
  return `.download-${name}-${createHash("sha256").update(url).digest("hex").slice(0, 8)}`;
}

function mismatch(url: string, actual: string, expected: string): TownError {
  return new TownError(
    "invalid_argument",
    `${url}: the download's sha256 is ${actual}, but ${expected} was expected`,
  );
}

function conflict(name: string, held: string | null, wanted: string): TownError {
  return new TownError(
    "conflict",
    `VM image "${name}" already comes from ${held ?? "elsewhere"}, not ${wanted}; choose another name`,
  );
}

/** Removes a file (never what a link points to); true when there was one. */
async function removeFile(path: string): Promise<boolean> {
  const stats = await lstatOrUndefined(path);
  if (stats === undefined) return false;
  if (stats.isDirectory()) throw new TownError("io", `${path} is a directory`);
  await rm(path, { force: true });
  return true;
}
