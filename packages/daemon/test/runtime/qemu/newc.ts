/**
 * Test helper: a cpio archive in the "newc" format (what the Linux kernel
 * unpacks as an initramfs), written from a list of entries in memory. Made
 * here rather than with a cpio program because the archive needs root-owned
 * files and a device node (`/dev/console`) that an unprivileged staging
 * directory could not hold, and because the bytes then depend on nothing but
 * the entries (mtime 0, inode numbers in order).
 */
import { hasControl } from "../../../src/storage/paths.js";

export type NewcEntry =
  | { type: "directory"; path: string; mode?: number }
  | { type: "file"; path: string; data: Uint8Array | string; mode?: number }
  | { type: "symlink"; path: string; target: string }
  | { type: "character-device"; path: string; major: number; minor: number; mode?: number };

const TYPE_BITS = {
  directory: 0o040000,
  file: 0o100000,
  symlink: 0o120000,
  "character-device": 0o020000,
} as const;

const DEFAULT_MODE = {
  directory: 0o755,
  file: 0o644,
  symlink: 0o777,
  "character-device": 0o600,
} as const;

const TRAILER = "TRAILER!!!";

/**
 * The archive of `entries`, in their order, owned by root. Paths are relative
 * ("bin/sh"), and a path's parent directory must come earlier in the list:
 * the kernel does not make missing parents.
 */
export function newcArchive(entries: readonly NewcEntry[]): Buffer {
  const parts: Buffer[] = [];
  const seen = new Set<string>();
  const directories = new Set<string>();
  entries.forEach((entry, index) => {
    checkPath(entry.path, seen, directories);
    seen.add(entry.path);
    if (entry.type === "directory") directories.add(entry.path);
    const data = contentOf(entry);
    const mode =
      entry.type === "symlink" ? DEFAULT_MODE.symlink : (entry.mode ?? DEFAULT_MODE[entry.type]);
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
      throw new Error(`cpio: mode ${mode} of ${entry.path} is not a permission mode`);
    }
    const device = entry.type === "character-device" ? [entry.major, entry.minor] : [0, 0];
    parts.push(
      record(entry.path, data, {
        ino: index + 1,
        mode: TYPE_BITS[entry.type] | mode,
        nlink: entry.type === "directory" ? 2 : 1,
        rdevmajor: device[0] ?? 0,
        rdevminor: device[1] ?? 0,
      }),
    );
  });
  parts.push(
    record(TRAILER, Buffer.alloc(0), { ino: 0, mode: 0, nlink: 1, rdevmajor: 0, rdevminor: 0 }),
  );
  return Buffer.concat(parts);
}

function contentOf(entry: NewcEntry): Buffer {
  switch (entry.type) {
    case "file":
      return typeof entry.data === "string" ? Buffer.from(entry.data) : Buffer.from(entry.data);
    case "symlink":
      if (entry.target === "" || hasControl(entry.target)) {
        throw new Error(`cpio: bad link target for ${entry.path}`);
      }
      return Buffer.from(entry.target);
    default:
      return Buffer.alloc(0);
  }
}

function checkPath(path: string, seen: Set<string>, directories: Set<string>): void {
  const parts = path.split("/");
  if (
    path === TRAILER ||
    hasControl(path) ||
    parts.some((part) => part === "" || part === "." || part === "..")
  ) {
    throw new Error(`cpio: bad path ${JSON.stringify(path)}`);
  }
  if (seen.has(path)) throw new Error(`cpio: ${path} twice`);
  const parent = parts.slice(0, -1).join("/");
  if (parent !== "" && !directories.has(parent)) {
    throw new Error(`cpio: ${path} comes before its directory ${parent}`);
  }
}

interface Header {
  ino: number;
  mode: number;
  nlink: number;
  rdevmajor: number;
  rdevminor: number;
}

/** One header, name and data, each padded to 4 bytes as newc wants. */
function record(name: string, data: Buffer, header: Header): Buffer {
  const nameBytes = Buffer.from(`${name}\0`);
  const fields = [
    header.ino,
    header.mode,
    0, // uid
    0, // gid
    header.nlink,
    0, // mtime
    data.length,
    0, // devmajor
    0, // devminor
    header.rdevmajor,
    header.rdevminor,
    nameBytes.length,
    0, // check (only for the "070702" format)
  ];
  for (const field of fields) {
    if (!Number.isInteger(field) || field < 0 || field > 0xffffffff) {
      throw new Error(`cpio: ${name}: a header field is out of range (${field})`);
    }
  }
  const head = Buffer.from(
    `070701${fields.map((field) => field.toString(16).padStart(8, "0")).join("")}`,
  );
  return Buffer.concat([
    head,
    nameBytes,
    padding(head.length + nameBytes.length),
    data,
    padding(data.length),
  ]);
}

function padding(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}
