/**
 * A streaming tar reader: headers are decoded with node-tar's `Header` and
 * `Pax` (ustar, GNU long names, pax, base-256 numbers), the block loop is
 * ours, so that each entry's body is pulled by the consumer chunk by chunk
 * and memory stays flat whatever the archive holds. Nothing here touches the
 * disk or judges paths: that is the caller's job.
 */
import { Header, Pax, type HeaderData } from "tar";
import { TownError } from "@townos/format";

const BLOCK = 512;

export interface TarEntry {
  /** As written in the archive (pax and GNU long names applied): untrusted. */
  path: string;
  /** node-tar's type name: `File`, `Directory`, `SymbolicLink`, `Link`, `CharacterDevice`, … */
  type: string;
  size: number;
  mode: number;
  mtime: Date | undefined;
  linkpath: string;
  /** Numeric owner; undefined when the archive does not record one. */
  uid: number | undefined;
  gid: number | undefined;
}

/** Pulls exact byte counts out of a stream of chunks without copying more than a header. */
export class ByteReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  /** Exactly `count` bytes, or fewer when the input ends first. */
  async read(count: number): Promise<Buffer> {
    while (this.buffered < count && !this.ended) await this.pull();
    return this.take(Math.min(count, this.buffered));
  }

  /** Up to `count` bytes, as they arrive. */
  async *stream(count: number): AsyncGenerator<Buffer> {
    let left = count;
    while (left > 0) {
      if (this.buffered === 0) {
        if (this.ended) return;
        await this.pull();
        continue;
      }
      const first = this.chunks[0];
      const chunk = this.take(Math.min(left, first ? first.length : 0));
      left -= chunk.length;
      yield chunk;
    }
  }

  /** Skips up to `count` bytes; returns how many were there. */
  async skip(count: number): Promise<number> {
    let skipped = 0;
    for await (const chunk of this.stream(count)) skipped += chunk.length;
    return skipped;
  }

  /** Whether the input is exhausted. */
  async atEnd(): Promise<boolean> {
    if (this.buffered === 0 && !this.ended) await this.pull();
    return this.buffered === 0 && this.ended;
  }

  private async pull(): Promise<void> {
    const next = await this.source.next();
    if (next.done) {
      this.ended = true;
    } else if (next.value.length > 0) {
      this.chunks.push(next.value);
      this.buffered += next.value.length;
    }
  }

  private take(count: number): Buffer {
    const first = this.chunks[0];
    if (!first || count === 0) return Buffer.alloc(0);
    if (first.length >= count) {
      const out = first.subarray(0, count);
      if (first.length === count) this.chunks.shift();
      else this.chunks[0] = first.subarray(count);
      this.buffered -= count;
      return out;
    }
    const out = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[0];
      if (!chunk) break;
      const part = Math.min(chunk.length, count - filled);
      chunk.copy(out, filled, 0, part);
      filled += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    this.buffered -= filled;
    return out;
  }
}

export interface ReadTarOptions {
  /** Largest pax header or GNU long name accepted. */
  maxMetaBytes: number;
  signal?: AbortSignal | undefined;
}

/**
 * Reads entries until the end-of-archive marker (or the end of input at an
 * entry boundary) and hands each to `onEntry` with its body, which it may
 * read in part or not at all. Returns once the archive has ended; what
 * follows the marker is left in `reader`.
 * @throws TownError `invalid_argument` for input that is not tar, a corrupt
 *   header or a truncated archive.
 */
export async function readTar(
  reader: ByteReader,
  onEntry: (entry: TarEntry, body: AsyncIterable<Buffer>) => Promise<void>,
  options: ReadTarOptions,
): Promise<void> {
  let extended: HeaderData | undefined;
  let global: HeaderData | undefined;
  let headers = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    const block = await reader.read(BLOCK);
    if (block.length === 0) return;
    if (block.length < BLOCK) throw corrupt("the archive is truncated");
    // The end marker is two zero blocks; like GNU tar, the first one ends reading.
    if (block.every((byte) => byte === 0)) return;
    const header = new Header(block, 0, extended, global);
    if (!header.cksumValid) {
      throw corrupt(
        headers === 0 ? "this is not a tar archive" : `bad header checksum (entry ${headers + 1})`,
      );
    }
    headers++;
    const size = header.size;
    if (size === undefined || !Number.isSafeInteger(size))
      throw corrupt("an entry has no valid size");
    const padded = Math.ceil(size / BLOCK) * BLOCK;

    const meta = header.type;
    if (
      meta === "ExtendedHeader" ||
      meta === "OldExtendedHeader" ||
      meta === "GlobalExtendedHeader" ||
      meta === "NextFileHasLongPath" ||
      meta === "OldGnuLongPath" ||
      meta === "NextFileHasLongLinkpath"
    ) {
      if (size > options.maxMetaBytes) throw corrupt(`a ${size}-byte metadata entry`);
      const body = await reader.read(size);
      if (body.length < size || (await reader.skip(padded - size)) < padded - size) {
        throw corrupt("the archive is truncated");
      }
      const text = body.toString("utf8");
      if (meta === "GlobalExtendedHeader") global = Pax.parse(text, global, true);
      else if (meta === "ExtendedHeader" || meta === "OldExtendedHeader")
        extended = Pax.parse(text, extended, false);
      else if (meta === "NextFileHasLongLinkpath")
        extended = { ...extended, linkpath: text.replace(/\0.*/s, "") };
      else extended = { ...extended, path: text.replace(/\0.*/s, "") };
      continue;
    }
    if (meta === "SparseFile") {
      // Old GNU sparse headers continue in extra blocks that `size` does not count.
      throw corrupt("GNU sparse files are not supported");
    }

    const entry: TarEntry = {
      // Header glues the ustar prefix onto a pax path: take pax's own.
      path: extended?.path ?? header.path ?? "",
      type: header.type,
      size,
      mode: header.mode ?? 0,
      mtime: header.mtime,
      linkpath: extended?.linkpath ?? header.linkpath ?? "",
      uid: header.uid,
      gid: header.gid,
    };
    extended = undefined;
    let consumed = 0;
    const body = (async function* () {
      for await (const chunk of reader.stream(size - consumed)) {
        consumed += chunk.length;
        yield chunk;
      }
    })();
    await onEntry(entry, body);
    const rest = padded - consumed;
    if ((await reader.skip(rest)) < rest) throw corrupt("the archive is truncated");
  }
}

function corrupt(what: string): TownError {
  return new TownError("invalid_argument", `archive: ${what}`);
}
