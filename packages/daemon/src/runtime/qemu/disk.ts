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
import { TownError } from "@townos/format";
import { NO_FOLLOW } from "../../system/proc.js";

export interface Qcow2Header {
  version: number;
  virtualBytes: number;
  /** qcow2 v3's incompatible feature bit 2: the data lives in another file. */
  externalDataFile: boolean;
  encrypted: boolean;
}

const QCOW2_MAGIC = 0x514649fb;
const HEADER_BYTES = 104;

/** The header of a qcow2 image; undefined when `bytes` does not start one. */
export function parseQcow2Header(bytes: Buffer): Qcow2Header | undefined {
  if (bytes.length < 72 || bytes.readUInt32BE(0) !== QCOW2_MAGIC) return undefined;
  const version = bytes.readUInt32BE(4);
  if (version !== 2 && version !== 3) return undefined;
  const size = bytes.readBigUInt64BE(24);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const incompatible = version === 3 && bytes.length >= 80 ? bytes.readBigUInt64BE(72) : 0n;
  return {
    version,
    virtualBytes: Number(size),
    externalDataFile: (incompatible & 4n) !== 0n,
    encrypted: bytes.readUInt32BE(32) !== 0,
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
 * @returns its header and the bytes it takes on the host
 */
export async function readDisk(
  path: string,
  what: string,
): Promise<{ header: Qcow2Header; allocatedBytes: number }> {
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
    return { header, allocatedBytes: info.blocks * 512 };
  } finally {
    await file.close();
  }
}
