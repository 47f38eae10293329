/**
 * Parsers for the byte streams libpod answers with: newline-delimited JSON
 * (events, pull progress) and the multiplexed stdout/stderr frames of
 * non-TTY logs and exec output. Both are bounded: a line or frame above the
 * limit fails the stream instead of growing a buffer without end.
 */
import { TownError } from "@townos/format";

/**
 * Splits a byte stream into lines, without their `\n` (a `\r` before it is
 * dropped too). A last line without a newline is yielded as well. Throws
 * TownError `payload_too_large` for a line longer than `maxLineBytes`.
 */
export async function* readLines(
  source: AsyncIterable<Buffer>,
  maxLineBytes: number,
): AsyncGenerator<string> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of source) {
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
      const line = Buffer.concat([...pending, chunk.subarray(start, newline)]);
      pending = [];
      pendingBytes = 0;
      start = newline + 1;
      if (line.length > maxLineBytes) throw lineTooLong(maxLineBytes);
      yield decodeLine(line);
    }
    if (start < chunk.length) {
      pendingBytes += chunk.length - start;
      if (pendingBytes > maxLineBytes) throw lineTooLong(maxLineBytes);
      pending.push(chunk.subarray(start));
    }
  }
  if (pendingBytes > 0) yield decodeLine(Buffer.concat(pending));
}

function decodeLine(line: Buffer): string {
  const end = line.length > 0 && line[line.length - 1] === 13 ? line.length - 1 : line.length;
  return line.toString("utf8", 0, end);
}

function lineTooLong(max: number): TownError {
  return new TownError("payload_too_large", `a line of the stream is longer than ${max} bytes`);
}

export type StreamName = "stdin" | "stdout" | "stderr";

export interface Frame {
  stream: StreamName;
  data: Buffer;
}

const STREAMS: readonly StreamName[] = ["stdin", "stdout", "stderr"];
const HEADER_BYTES = 8;

/**
 * Demultiplexes the Docker/libpod stream format of non-TTY output: each
 * frame is an 8-byte header (stream 0/1/2, three zero bytes, payload size
 * as a big-endian uint32) and its payload. Throws TownError `io` when the
 * bytes are not such frames (a TTY stream, say) or the stream ends inside a
 * frame, `payload_too_large` for a frame above `maxFrameBytes`.
 */
export async function* demultiplex(
  source: AsyncIterable<Buffer>,
  maxFrameBytes: number,
): AsyncGenerator<Frame> {
  let buffer: Buffer = Buffer.alloc(0);
  for await (const chunk of source) {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    let offset = 0;
    while (buffer.length - offset >= HEADER_BYTES) {
      const header = buffer.subarray(offset, offset + HEADER_BYTES);
      const stream = STREAMS[header[0] ?? -1];
      if (stream === undefined || header[1] !== 0 || header[2] !== 0 || header[3] !== 0) {
        throw new TownError("io", "the output is not a multiplexed stdout/stderr stream");
      }
      const size = header.readUInt32BE(4);
      if (size > maxFrameBytes) {
        throw new TownError(
          "payload_too_large",
          `an output frame is longer than ${maxFrameBytes} bytes`,
        );
      }
      if (buffer.length - offset - HEADER_BYTES < size) break;
      const start = offset + HEADER_BYTES;
      // Copied: the frame must not pin the (possibly large) receive buffer.
      yield { stream, data: Buffer.from(buffer.subarray(start, start + size)) };
      offset = start + size;
    }
    buffer = buffer.subarray(offset);
  }
  if (buffer.length > 0) throw new TownError("io", "the output stream ended inside a frame");
}
