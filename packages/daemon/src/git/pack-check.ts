/**
 * Checks a git upload-pack response before isomorphic-git sees it: every
 * object of its pack must inflate to at most a bound. isomorphic-git inflates
 * each object whole while it indexes a pack, so a blob of zeros that packs to
 * a few MiB would otherwise become gigabytes in memory.
 */
import { inflateSync } from "node:zlib";

const OFS_DELTA = 6;
const REF_DELTA = 7;

/** What an object inflates to, or why the pack is refused; undefined when it fits. */
export function oversizedObject(response: Uint8Array, maxBytes: number): string | undefined {
  const pack = packData(response);
  if (pack.length < 12 || pack.toString("latin1", 0, 4) !== "PACK") return undefined;
  const count = pack.readUInt32BE(8);
  let pos = 12;
  for (let index = 0; index < count && pos < pack.length; index++) {
    let byte = pack[pos++] ?? 0;
    const type = (byte >> 4) & 7;
    let size = byte & 15;
    for (let shift = 4; byte & 0x80; shift += 7) {
      byte = pack[pos++] ?? 0;
      size += (byte & 0x7f) * 2 ** shift;
    }
    if (type === OFS_DELTA) {
      do byte = pack[pos++] ?? 0;
      while (byte & 0x80);
    } else if (type === REF_DELTA) pos += 20;
    if (size > maxBytes) return tooLarge(maxBytes);
    let inflated: { buffer: Buffer; engine: { bytesWritten: number } };
    try {
      // The declared size may lie: the output is bounded by itself.
      inflated = inflateSync(pack.subarray(pos), {
        info: true,
        maxOutputLength: maxBytes,
      }) as unknown as typeof inflated;
    } catch (error) {
      if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") return tooLarge(maxBytes);
      return undefined; // Broken data: isomorphic-git says so itself.
    }
    if (type === OFS_DELTA || type === REF_DELTA) {
      // A delta starts with its base's size and then the size of what it makes.
      const data = inflated.buffer;
      let at = 0;
      while ((data[at++] ?? 0) & 0x80);
      let result = 0;
      for (let shift = 0; ; shift += 7) {
        const next = data[at++] ?? 0;
        result += (next & 0x7f) * 2 ** shift;
        if (!(next & 0x80)) break;
      }
      if (result > maxBytes) return tooLarge(maxBytes);
    }
    pos += inflated.engine.bytesWritten;
  }
  return undefined;
}

function tooLarge(maxBytes: number): string {
  return `the repository holds an object larger than ${maxBytes} bytes`;
}

/** The pack inside pkt-lines: side-band channel 1 (2 is progress, 3 errors; text lines start otherwise). */
function packData(response: Uint8Array): Buffer {
  const bytes = Buffer.from(response.buffer, response.byteOffset, response.byteLength);
  const parts: Buffer[] = [];
  let pos = 0;
  while (pos + 4 <= bytes.length) {
    const length = Number.parseInt(bytes.toString("latin1", pos, pos + 4), 16);
    if (!Number.isInteger(length)) break;
    if (length < 4) {
      pos += 4; // flush, delimiter
      continue;
    }
    if (bytes[pos + 4] === 1) parts.push(bytes.subarray(pos + 5, pos + length));
    pos += length;
  }
  return Buffer.concat(parts);
}
