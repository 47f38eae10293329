/**
 * A VM's own disk: the qcow2 overlay in its package volume. The volume is
 * one people can upload into, so the file is looked at without following
 * links (a link there could point QEMU at any host file) and its header is
 * read by hand, cheaply enough for every inspect: its size, and whether it
 * names an external data file (which QEMU would open whatever -blockdev
 * says; the backing file it names is never used, see qemu-args.ts).
 */
import { constants } from "node:fs";
import { lstat, open } from "node:fs/promises";
import { basename } from "node:path";
import { TownError } from "@townos/format";
import { NO_FOLLOW } from "../../system/proc.js";
import { VM_IMAGE_NAME } from "./image-name.js";

export interface Qcow2Header {
  version: number;
  virtualBytes: number;
  /** qcow2 v3's incompatible feature bit 2: the data lives in another file. */
  externalDataFile: boolean;
  encrypted: boolean;
  /** Where the backing file's name is in the file, or null without one (never opened from here). */
  backingName: { offset: number; bytes: number } | null;
}

const QCOW2_MAGIC = 0x514649fb;
const HEADER_BYTES = 104;
/** The qcow2 specification's bound on a backing file name. */
const MAX_BACKING_NAME_BYTES = 1023;

/** The header of a qcow2 image; undefined when `bytes` does not start one. */
export function parseQcow2Header(bytes: Buffer): Qcow2Header | undefined {
  if (bytes.length < 72 || bytes.readUInt32BE(0) !== QCOW2_MAGIC) return undefined;
  const version = bytes.readUInt32BE(4);
  if (version !== 2 && version !== 3) return undefined;
  const size = bytes.readBigUInt64BE(24);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const incompatible = version === 3 && bytes.length >= 80 ? bytes.readBigUInt64BE(72) : 0n;
  const backingOffset = bytes.readBigUInt64BE(8);
  const backingBytes = bytes.readUInt32BE(16);
  const named =
    backingOffset > 0n &&
    backingOffset < BigInt(Number.MAX_SAFE_INTEGER) &&
    backingBytes > 0 &&
    backingBytes <= MAX_BACKING_NAME_BYTES;
  return {
    version,
    virtualBytes: Number(size),
    externalDataFile: (incompatible & 4n) !== 0n,
    encrypted: bytes.readUInt32BE(32) !== 0,
    backingName: named ? { offset: Number(backingOffset), bytes: backingBytes } : null,
  };
}

/** What `lstat` says of the disk: absent, or a regular file (anything else is refused). */
export async function diskExists(path: string, what: string): Promise<boolean> {
  try {
    const info = await lstat(path);
    if (!info.isFile())
      throw new TownError("invalid_argument", `${what}: ${path} is not a regular file`);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

/**
 * Reads the disk's header (links not followed) and refuses what QEMU must
 * not open: not a qcow2, an external data file, encryption.
 * @returns its header, the bytes it takes on the host, and the backing
 *   file name it records (only ever compared, see `diskBase`)
 */
export async function readDisk(
  path: string,
  what: string,
): Promise<{ header: Qcow2Header; allocatedBytes: number; backingFile: string | null }> {
  let file;
  try {
    file = await open(path, constants.O_RDONLY | NO_FOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new TownError("not_found", `${what}: ${path} does not exist`);
    if (code === "ELOOP") throw new TownError("invalid_argument", `${what}: ${path} is a link`);
    throw new TownError("io", `${what}: ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const info = await file.stat();
    if (!info.isFile()) throw new TownError("invalid_argument", `${what}: ${path} is not a file`);
    const buffer = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await file.read(buffer, 0, HEADER_BYTES, 0);
    const header = parseQcow2Header(buffer.subarray(0, bytesRead));
    if (header === undefined)
      throw new TownError("invalid_argument", `${what}: ${path} is not a qcow2 image`);
    if (header.externalDataFile)
      throw new TownError(
        "invalid_argument",
        `${what}: ${path} keeps its data in another file, which could expose host files to the guest`,
      );
    if (header.encrypted) throw new TownError("invalid_argument", `${what}: ${path} is encrypted`);
    let backingFile: string | null = null;
    if (header.backingName !== null) {
      const name = Buffer.alloc(header.backingName.bytes);
      const read = await file.read(name, 0, name.length, header.backingName.offset);
      backingFile = name.subarray(0, read.bytesRead).toString("utf8");
    }
    return { header, allocatedBytes: info.blocks * 512, backingFile };
  } finally {
    await file.close();
  }
}

/**
 * The base image a VM's disk runs on. A disk stays on the image it was made
 * from: a later version of the package naming another image must not slide
 * a different base under it (the guest would see a corrupted disk). The name
 * the disk records is only trusted when it is exactly the path of an image
 * in the store (the file sits in a volume people can upload into); QEMU gets
 * that path through -blockdev, never from the header. Without one (a disk
 * about to be made), the workload's image.
 */
export function diskBase(
  recorded: string | null,
  images: { path(name: string): string },
  image: string,
): string {
  if (recorded !== null) {
    const name = basename(recorded).replace(/\.qcow2$/, "");
    if (VM_IMAGE_NAME.test(name) && !name.includes("..") && images.path(name) === recorded)
      return recorded;
  }
  return images.path(image);
}
