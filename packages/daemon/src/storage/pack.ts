/**
 * A tree in a volume as a tar stream, read through handles (`tree.ts`): an
 * app that swaps a directory for a link while its volume is read cannot make
 * the daemon read anything outside it. Links are stored as links, files
 * linked twice as a hard link to the first, directories with their content;
 * devices, FIFOs and sockets are left out, and so are owners (portable)
 * unless asked for (a backup, restored as it was). A
 * file that changes while read keeps the size it had when opened (cut or
 * padded with zeros), as tar needs.
 */
import { constants, type Stats } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { Header, Pax, type HeaderData } from "tar";
import {
  at,
  lstatAt,
  openDirectoryOrUndefined,
  openInside,
  readLinkOrUndefined,
  walk,
} from "./tree.js";

const BLOCK = 512;
/** Read size: memory stays flat whatever the file. */
const CHUNK = 1024 * 1024;
/** O_NONBLOCK: a FIFO swapped in for a file must not hang the open. */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * The entries at `paths` (checked component lists, at least one component
 * each) below `root`, each with everything in it, as an uncompressed tar
 * archive with its end marker; with `owners`, each entry's numeric owner.
 * @throws PathRefused (before anything is produced) when a path's parent
 *   goes through a link or a non-directory.
 */
export async function* packTree(
  root: string,
  paths: readonly (readonly string[])[],
  options: { owners?: boolean } = {},
): AsyncGenerator<Buffer> {
  const owners = options.owners === true;
  const hardLinks = new Map<string, string>();
  for (const parts of paths) {
    const name = parts[parts.length - 1] ?? "";
    const parent = await openInside(root, parts.slice(0, -1));
    if (!parent) continue;
    try {
      const stats = await lstatAt(parent, name);
      if (!stats) continue;
      const path = parts.join("/");
      yield* entry(at(parent, name), path, stats, hardLinks, owners);
      if (!stats.isDirectory()) continue;
      const dir = await openDirectoryOrUndefined(at(parent, name));
      if (!dir) continue; // swapped for something else meanwhile
      try {
        for await (const inner of walk(dir)) {
          yield* entry(inner.at, `${path}/${inner.relative}`, inner.stats, hardLinks, owners);
        }
      } finally {
        await dir.close();
      }
    } finally {
      await parent.close();
    }
  }
  yield Buffer.alloc(2 * BLOCK);
}

async function* entry(
  atPath: string,
  path: string,
  stats: Stats,
  hardLinks: Map<string, string>,
  owners: boolean,
): AsyncGenerator<Buffer> {
  const base = {
    mode: stats.mode & 0o7777,
    mtime: stats.mtime,
    ...(owners ? { uid: stats.uid, gid: stats.gid } : {}),
  };
  if (stats.isDirectory()) {
    yield header({ ...base, path: `${path}/`, type: "Directory", size: 0 });
  } else if (stats.isSymbolicLink()) {
    const linkpath = await readLinkOrUndefined(atPath);
    if (linkpath === undefined) return; // gone or swapped meanwhile
    yield header({ ...base, path, type: "SymbolicLink", linkpath, size: 0 });
  } else if (stats.isFile()) {
    const file = await open(atPath, READ_FLAGS).catch(() => undefined);
    if (!file) return; // gone or swapped meanwhile
    try {
      const opened = await file.stat();
      if (!opened.isFile()) return;
      const key = `${opened.dev}:${opened.ino}`;
      const first = opened.nlink > 1 ? hardLinks.get(key) : undefined;
      if (first !== undefined) {
        yield header({ ...base, path, type: "Link", linkpath: first, size: 0 });
        return;
      }
      if (opened.nlink > 1) hardLinks.set(key, path);
      yield header({ ...base, mode: opened.mode & 0o7777, path, type: "File", size: opened.size });
      yield* content(file, opened.size);
    } finally {
      await file.close();
    }
  }
}

/** A header block, preceded by a pax header when a field does not fit (long paths, say). */
function header(data: HeaderData): Buffer {
  const block = new Header(data);
  const needsPax = block.encode();
  if (!block.block) throw new Error("tar: a header could not be encoded");
  return needsPax ? Buffer.concat([new Pax(data).encode(), block.block]) : block.block;
}

/** Exactly `size` bytes of the file (zeros where it shrank meanwhile), padded to a block. */
async function* content(file: FileHandle, size: number): AsyncGenerator<Buffer> {
  let sent = 0;
  let ended = false;
  while (sent < size) {
    const buffer = Buffer.alloc(Math.min(CHUNK, size - sent));
    let filled = 0;
    while (!ended && filled < buffer.length) {
      const { bytesRead } = await file.read(buffer, filled, buffer.length - filled, sent + filled);
      if (bytesRead === 0) ended = true;
      filled += bytesRead;
    }
    sent += buffer.length;
    yield buffer;
  }
  const padding = (BLOCK - (size % BLOCK)) % BLOCK;
  if (padding > 0) yield Buffer.alloc(padding);
}
