import assert from "node:assert/strict";
import { mkdtemp, rm, symlink, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { rejection } from "../../../test/async.js";
import { diskBase, diskExists, parseQcow2Header, readDisk } from "./disk.js";

/** A qcow2 header as qemu-img writes it, with the fields the parser reads. */
function header(
  options: {
    version?: number;
    size?: bigint;
    incompatible?: bigint;
    crypt?: number;
    backing?: string;
  } = {},
): Buffer {
  const bytes = Buffer.alloc(104);
  bytes.writeUInt32BE(0x514649fb, 0);
  bytes.writeUInt32BE(options.version ?? 3, 4);
  if (options.backing !== undefined) {
    bytes.writeBigUInt64BE(104n, 8);
    bytes.writeUInt32BE(Buffer.byteLength(options.backing), 16);
  }
  bytes.writeBigUInt64BE(options.size ?? 1n << 30n, 24);
  bytes.writeUInt32BE(options.crypt ?? 0, 32);
  bytes.writeBigUInt64BE(options.incompatible ?? 0n, 72);
  return options.backing === undefined
    ? bytes
    : Buffer.concat([bytes, Buffer.from(options.backing)]);
}

describe("parseQcow2Header", () => {
  it("reads the version, size and the external data file bit", () => {
    assert.deepEqual(parseQcow2Header(header()), {
      version: 3,
      virtualBytes: 2 ** 30,
      externalDataFile: false,
      encrypted: false,
      backingName: null,
    });
    assert.equal(parseQcow2Header(header({ incompatible: 4n }))?.externalDataFile, true);
    // Version 2 has no feature bits: the bytes there are something else.
    assert.equal(
      parseQcow2Header(header({ version: 2, incompatible: 4n }))?.externalDataFile,
      false,
    );
    assert.equal(parseQcow2Header(header({ crypt: 1 }))?.encrypted, true);
  });

  it("is undefined for what is not a qcow2 header", () => {
    assert.equal(parseQcow2Header(Buffer.alloc(104)), undefined);
    assert.equal(parseQcow2Header(header().subarray(0, 40)), undefined);
    assert.equal(parseQcow2Header(header({ version: 9 })), undefined);
    assert.equal(parseQcow2Header(header({ size: 1n << 60n })), undefined);
  });
});

describe("the VM's disk in a volume someone may upload into", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "town-disk-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps the base it was made on, when that is an image of the store", async () => {
    const store = { path: (name: string) => `/data/vm-images/${name}.qcow2` };
    await writeFile(join(dir, "on-old.qcow2"), header({ backing: store.path("debian-11") }));
    const { backingFile } = await readDisk(join(dir, "on-old.qcow2"), "disk");
    assert.equal(backingFile, "/data/vm-images/debian-11.qcow2");
    // A later package version naming debian-12 does not slide it under this disk.
    assert.equal(diskBase(backingFile, store, "debian-12"), store.path("debian-11"));
    // A new disk (nothing recorded) gets the workload's image.
    assert.equal(diskBase(null, store, "debian-12"), store.path("debian-12"));
    // A name someone wrote into an uploaded disk is never a path of its own choosing.
    for (const planted of ["/etc/shadow", "/data/vm-images/../../etc/x.qcow2", "debian-11.qcow2"])
      assert.equal(diskBase(planted, store, "debian-12"), store.path("debian-12"), planted);
  });

  it("is read when it is a plain qcow2", async () => {
    await writeFile(join(dir, "good.qcow2"), header());
    const { header: read, allocatedBytes } = await readDisk(join(dir, "good.qcow2"), "disk");
    assert.equal(read.virtualBytes, 2 ** 30);
    assert.ok(allocatedBytes >= 0);
    assert.equal(await diskExists(join(dir, "good.qcow2"), "disk"), true);
    assert.equal(await diskExists(join(dir, "absent.qcow2"), "disk"), false);
  });

  it("is refused as a link, a directory, raw data, an external data file or encrypted", async () => {
    await symlink("/etc/shadow", join(dir, "link.qcow2"));
    await mkdir(join(dir, "dir.qcow2"));
    await writeFile(join(dir, "raw.qcow2"), Buffer.alloc(4096));
    await writeFile(join(dir, "data-file.qcow2"), header({ incompatible: 4n }));
    await writeFile(join(dir, "crypt.qcow2"), header({ crypt: 2 }));
    const cases: [string, RegExp][] = [
      ["link.qcow2", /is a link/],
      ["dir.qcow2", /not a file/],
      ["raw.qcow2", /not a qcow2 image/],
      ["data-file.qcow2", /data in another file/],
      ["crypt.qcow2", /encrypted/],
    ];
    for (const [name, pattern] of cases) {
      const error = await rejection(readDisk(join(dir, name), "disk"));
      assert.equal(error.code, "invalid_argument", name);
      assert.match(error.message, pattern);
    }
    assert.equal(
      (await rejection(diskExists(join(dir, "link.qcow2"), "disk"))).code,
      "invalid_argument",
    );
    assert.equal((await rejection(readDisk(join(dir, "absent.qcow2"), "disk"))).code, "not_found");
  });
});
