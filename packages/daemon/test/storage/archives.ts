/**
 * Test helpers: archives built byte by byte, hostile ones included (tar
 * headers through node-tar's `Header`, zip records written by hand), and a
 * large tar generated on the fly for memory measurements.
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { crc32, deflateRawSync } from "node:zlib";
import { Header } from "tar";

export interface TarSpec {
  path: string;
  /** node-tar type name; default `File`. */
  type?: "File" | "Directory" | "SymbolicLink" | "Link" | "CharacterDevice" | "FIFO";
  body?: string | Buffer;
  linkpath?: string;
  mode?: number;
}

/** A tar archive holding `entries` exactly as given (no path cleaning), with its end marker. */
export function buildTar(entries: readonly TarSpec[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = entry.body === undefined ? Buffer.alloc(0) : Buffer.from(entry.body);
    blocks.push(tarHeader(entry.path, entry.type ?? "File", body.length, entry));
    blocks.push(body, Buffer.alloc(padding(body.length)));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function tarHeader(
  path: string,
  type: NonNullable<TarSpec["type"]>,
  size: number,
  options: { linkpath?: string; mode?: number },
): Buffer {
  const header = new Header({
    path,
    type,
    size,
    mode: options.mode ?? (type === "Directory" ? 0o755 : 0o644),
    uid: 0,
    gid: 0,
    mtime: new Date("2024-05-01T12:00:00Z"),
    ...(options.linkpath === undefined ? {} : { linkpath: options.linkpath }),
    ...(type === "CharacterDevice" ? { devmaj: 1, devmin: 3 } : {}),
  });
  header.encode();
  if (!header.block) throw new Error("tar header not encoded");
  return header.block;
}

function padding(size: number): number {
  return (512 - (size % 512)) % 512;
}

export interface ZipSpec {
  name: string;
  data?: string | Buffer;
  /** Unix mode, type bits included (e.g. 0o120777 for a link); stored in the external attributes. */
  unixMode?: number;
  deflate?: boolean;
  /** Lie about the uncompressed size in both headers. */
  declaredSize?: number;
}

/** A zip archive (no zip64, no data descriptors) holding `entries` exactly as named. */
export function buildZip(entries: readonly ZipSpec[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, "utf8");
    const data = entry.data === undefined ? Buffer.alloc(0) : Buffer.from(entry.data);
    const stored = entry.deflate ? deflateRawSync(data) : data;
    const size = entry.declaredSize ?? data.length;
    const fields = {
      method: entry.deflate ? 8 : 0,
      crc: crc32(data),
      compressed: stored.length,
      size,
    };
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6); // UTF-8 names
    local.writeUInt16LE(fields.method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(fields.crc, 14);
    local.writeUInt32LE(fields.compressed, 18);
    local.writeUInt32LE(fields.size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made on Unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(fields.method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(fields.crc, 16);
    central.writeUInt32LE(fields.compressed, 20);
    central.writeUInt32LE(fields.size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((entry.unixMode ?? 0) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, stored);
    centrals.push(central, name);
    offset += local.length + name.length + stored.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/**
 * A plain tar stream of about `totalBytes` of file content in files of
 * `fileBytes`, produced lazily: nothing but one 64 KiB chunk is ever held.
 */
export function generatedTar(totalBytes: number, fileBytes: number): Readable {
  // Random hex: gzip can halve it, but finds no repeats within its 32 KiB window.
  const chunk = Buffer.from(randomBytes(32 * 1024).toString("hex"));
  return Readable.from(
    (function* () {
      const files = Math.ceil(totalBytes / fileBytes);
      for (let i = 0; i < files; i++) {
        yield tarHeader(`data/dir-${i % 100}/file-${i}.bin`, "File", fileBytes, {});
        for (let left = fileBytes; left > 0; left -= chunk.length) {
          yield left >= chunk.length ? chunk : chunk.subarray(0, left);
        }
        yield Buffer.alloc(padding(fileBytes));
      }
      yield Buffer.alloc(1024);
    })(),
    { objectMode: false },
  );
}
