import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { frame } from "../../../test/runtime/fake-libpod.js";
import { demultiplex, readLines, type Frame } from "./streams.js";

function chunks(...parts: (string | Buffer)[]): Readable {
  return Readable.from(parts.map((part) => (Buffer.isBuffer(part) ? part : Buffer.from(part))));
}

/** The bytes one at a time: every boundary falls inside something. */
function bytewise(data: Buffer): Readable {
  return Readable.from([...data].map((byte) => Buffer.from([byte])));
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function failure(items: AsyncIterable<unknown>): Promise<TownError> {
  try {
    await all(items);
  } catch (error) {
    assert.ok(error instanceof TownError, String(error));
    return error;
  }
  assert.fail("expected the stream to fail");
}

describe("readLines", () => {
  it("splits lines across chunks, drops CR, keeps a last line without newline", async () => {
    assert.deepEqual(await all(readLines(chunks('{"a":', "1}\r\n\n{", '"b":2}\nlast'), 100)), [
      '{"a":1}',
      "",
      '{"b":2}',
      "last",
    ]);
    assert.deepEqual(await all(readLines(bytewise(Buffer.from("é\nü\n")), 100)), ["é", "ü"]);
    assert.deepEqual(await all(readLines(chunks(), 100)), []);
  });

  it("fails on a line above the limit, with or without its newline yet", async () => {
    const whole = await failure(readLines(chunks("x".repeat(11) + "\n"), 10));
    assert.equal(whole.code, "payload_too_large");
    const growing = await failure(readLines(chunks("x".repeat(6), "x".repeat(6)), 10));
    assert.equal(growing.code, "payload_too_large");
    assert.deepEqual(await all(readLines(chunks("x".repeat(10) + "\n"), 10)), ["x".repeat(10)]);
  });
});

describe("demultiplex", () => {
  const stream = Buffer.concat([
    frame(1, "out\n"),
    frame(2, "err\n"),
    frame(1, ""),
    frame(1, "more"),
  ]);
  const expected: Frame[] = [
    { stream: "stdout", data: Buffer.from("out\n") },
    { stream: "stderr", data: Buffer.from("err\n") },
    { stream: "stdout", data: Buffer.alloc(0) },
    { stream: "stdout", data: Buffer.from("more") },
  ];

  it("reads frames whatever the chunking", async () => {
    assert.deepEqual(await all(demultiplex(chunks(stream), 100)), expected);
    assert.deepEqual(await all(demultiplex(bytewise(stream), 100)), expected);
  });

  it("refuses what is not frames, oversized frames and a cut-off end", async () => {
    const tty = await failure(demultiplex(chunks("plain text from a TTY\n"), 100));
    assert.equal(tty.code, "io");
    assert.match(tty.message, /not a multiplexed/);
    const big = await failure(demultiplex(chunks(frame(1, "x".repeat(101))), 100));
    assert.equal(big.code, "payload_too_large");
    const cut = await failure(demultiplex(chunks(frame(2, "whole").subarray(0, 10)), 100));
    assert.equal(cut.code, "io");
    assert.match(cut.message, /ended inside a frame/);
  });
});
