import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deflateSync } from "node:zlib";
import { oversizedObject } from "./pack-check.js";

const BLOB = 3;
const REF_DELTA = 7;

/** A pack object: the type-and-size header, a ref-delta's base id, the deflated data. */
function object(type: number, declaredSize: number, data: Buffer): Buffer {
  const header = [(type << 4) | (declaredSize & 15)];
  let rest = Math.floor(declaredSize / 16);
  while (rest > 0) {
    header[header.length - 1] = (header[header.length - 1] ?? 0) | 0x80;
    header.push(rest & 0x7f);
    rest = Math.floor(rest / 128);
  }
  const base = type === REF_DELTA ? Buffer.alloc(20, 0xab) : Buffer.alloc(0);
  return Buffer.concat([Buffer.from(header), base, deflateSync(data)]);
}

/** An upload-pack response: a NAK line, then the pack on side-band channel 1 in small packets. */
function response(objects: Buffer[]): Buffer {
  const count = Buffer.alloc(4);
  count.writeUInt32BE(objects.length);
  const pack = Buffer.concat([Buffer.from("PACK"), Buffer.from([0, 0, 0, 2]), count, ...objects]);
  const parts = [Buffer.from("0008NAK\n")];
  for (let at = 0; at < pack.length; at += 1000) {
    const chunk = pack.subarray(at, at + 1000);
    parts.push(Buffer.from((chunk.length + 5).toString(16).padStart(4, "0")), Buffer.from([1]));
    parts.push(chunk);
  }
  parts.push(Buffer.from("0000"));
  return Buffer.concat(parts);
}

/** A delta's data: the base's size, then the size of what it makes, then (here) nothing. */
function deltaMaking(size: number): Buffer {
  const bytes = [10];
  let rest = size;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

describe("oversizedObject", () => {
  const fair = object(BLOB, 100, Buffer.alloc(100, 1));

  it("lets a pack of fair objects through, after any number of them", () => {
    assert.equal(oversizedObject(response([fair, fair, fair]), 1000), undefined);
  });

  it("refuses an object declared larger than the bound", () => {
    const big = object(BLOB, 5000, Buffer.alloc(5000));
    assert.match(oversizedObject(response([fair, big]), 1000) ?? "", /larger than 1000 bytes/);
  });

  it("refuses an object that inflates past the bound whatever it declares", () => {
    const liar = object(BLOB, 10, Buffer.alloc(50_000));
    assert.match(oversizedObject(response([fair, liar]), 1000) ?? "", /larger than 1000 bytes/);
  });

  it("refuses a delta that makes an object larger than the bound", () => {
    const delta = object(REF_DELTA, 4, deltaMaking(70_000));
    assert.match(oversizedObject(response([fair, delta]), 1000) ?? "", /larger than 1000 bytes/);
    const small = object(REF_DELTA, 3, deltaMaking(500));
    assert.equal(oversizedObject(response([fair, small]), 1000), undefined);
  });

  it("leaves what is not a pack to git", () => {
    assert.equal(oversizedObject(Buffer.from("0008NAK\n0000"), 1000), undefined);
  });
});
