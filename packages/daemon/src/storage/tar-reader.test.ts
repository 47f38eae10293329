import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Header } from "tar";
import { TownError } from "@townos/format";
import { buildTar } from "../../test/storage/archives.js";
import { detectArchiveFormat } from "./archive.js";
import { ByteReader, readTar, type TarEntry } from "./tar-reader.js";

/** Feeds `data` in chunks of `size` bytes. */
async function* chunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) {
    await Promise.resolve();
    yield data.subarray(i, i + size);
  }
}

interface Seen {
  entry: TarEntry;
  body: string;
}

async function readAll(data: Buffer, chunkSize: number, readBodies = true): Promise<Seen[]> {
  const seen: Seen[] = [];
  await readTar(
    new ByteReader(chunks(data, chunkSize)),
    async (entry, body) => {
      let text = "";
      if (readBodies) for await (const chunk of body) text += chunk.toString("utf8");
      seen.push({ entry, body: text });
    },
    { maxMetaBytes: 64 * 1024 },
  );
  return seen;
}

async function rejects(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof TownError, String(error));
    assert.equal(error.code, "invalid_argument");
    assert.match(error.message, pattern);
    return true;
  });
}

describe("readTar", () => {
  const archive = buildTar([
    { path: "dir/", type: "Directory" },
    { path: "dir/a.txt", body: "alpha".repeat(300) },
    { path: "dir/link", type: "SymbolicLink", linkpath: "a.txt" },
    { path: "empty" },
    { path: "b.txt", body: "beta" },
  ]);

  it("hands over every entry with its body, whatever the chunk size", async () => {
    for (const size of [1, 7, 512, 513, 100_000]) {
      const seen = await readAll(archive, size);
      assert.deepEqual(
        seen.map(({ entry, body }) => [
          entry.path,
          entry.type,
          entry.size,
          entry.linkpath,
          body.length,
        ]),
        [
          ["dir/", "Directory", 0, "", 0],
          ["dir/a.txt", "File", 1500, "", 1500],
          ["dir/link", "SymbolicLink", 0, "a.txt", 0],
          ["empty", "File", 0, "", 0],
          ["b.txt", "File", 4, "", 4],
        ],
        `chunk size ${size}`,
      );
    }
  });

  it("skips bodies the consumer did not read", async () => {
    const seen = await readAll(archive, 100, false);
    assert.deepEqual(
      seen.map(({ entry }) => entry.path),
      ["dir/", "dir/a.txt", "dir/link", "empty", "b.txt"],
    );
  });

  it("applies pax and GNU long names", async () => {
    const long = `${"deep/".repeat(40)}file.txt`;
    const record = paxRecord("path", long);
    const paxHeader = header("PaxHeader", "ExtendedHeader", Buffer.byteLength(record));
    const gnuHeader = header("././@LongLink", "NextFileHasLongPath", long.length + 1);
    const data = Buffer.concat([
      paxHeader,
      padded(Buffer.from(record)),
      header("short-name-1", "File", 0),
      gnuHeader,
      padded(Buffer.from(`${long}\0`)),
      header("short-name-2", "File", 0),
      Buffer.alloc(1024),
    ]);
    const seen = await readAll(data, 300);
    assert.deepEqual(
      seen.map(({ entry }) => entry.path),
      [long, long],
    );
  });

  it("ends at the first zero block or at the end of input", async () => {
    const withoutMarker = archive.subarray(0, archive.length - 1024);
    assert.equal((await readAll(withoutMarker, 4096)).length, 5);
    const trailing = Buffer.concat([archive, Buffer.from("garbage after the end")]);
    assert.equal((await readAll(trailing, 4096)).length, 5);
  });

  it("refuses input that is not tar, truncated archives and corrupt headers", async () => {
    await rejects(readAll(Buffer.alloc(512, 0x41), 512), /not a tar archive/);
    await rejects(readAll(archive.subarray(0, 1200), 512), /truncated/);
    await rejects(readAll(archive.subarray(0, 700), 512), /truncated/);
    const corrupt = Buffer.from(archive);
    corrupt[512 + 10] = 0x7a; // the second header's name
    await rejects(readAll(corrupt, 512), /checksum \(entry 2\)/);
    const bigMeta = Buffer.concat([
      header("PaxHeader", "ExtendedHeader", 100_000),
      Buffer.alloc(100_352),
    ]);
    await rejects(readAll(bigMeta, 512), /metadata entry/);
  });
});

describe("detectArchiveFormat", () => {
  it("recognises each format by its first bytes", () => {
    const tar = buildTar([{ path: "a", body: "x" }]);
    assert.equal(detectArchiveFormat(tar), "tar");
    assert.equal(detectArchiveFormat(Buffer.from([0x1f, 0x8b, 8, 0])), "tar.gz");
    assert.equal(
      detectArchiveFormat(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0])),
      "tar.xz",
    );
    assert.equal(detectArchiveFormat(Buffer.from("BZh91AY&SY")), "tar.bz2");
    assert.equal(detectArchiveFormat(Buffer.from("PK\u0003\u0004rest")), "zip");
    assert.equal(detectArchiveFormat(Buffer.from("PK\u0005\u0006rest")), "zip");
  });

  it("recognises pre-POSIX tar by its checksum alone", () => {
    const v7 = Buffer.from(buildTar([{ path: "a", body: "x" }]).subarray(0, 512));
    v7.fill(0, 257, 265); // no "ustar" magic
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (v7[i] ?? 0);
    v7.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    assert.equal(detectArchiveFormat(v7), "tar");
  });

  it("recognises nothing else", () => {
    assert.equal(detectArchiveFormat(Buffer.alloc(0)), undefined);
    assert.equal(detectArchiveFormat(Buffer.alloc(512)), undefined);
    assert.equal(detectArchiveFormat(Buffer.from("BZh0")), undefined);
    assert.equal(detectArchiveFormat(Buffer.from("#!/bin/sh\necho hi\n".repeat(40))), undefined);
  });
});

function header(
  path: string,
  type: "File" | "ExtendedHeader" | "NextFileHasLongPath",
  size: number,
): Buffer {
  const block = new Header({ path, type, size, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) });
  block.encode();
  if (!block.block) throw new Error("not encoded");
  return block.block;
}

/** A pax record, whose length field counts its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body);
  while (String(length).length + Buffer.byteLength(body) !== length) {
    length = String(length).length + Buffer.byteLength(body);
  }
  return `${length}${body}`;
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}
