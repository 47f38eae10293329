/**
 * The qemu-img wrapper against the real program: overlays, conversion that
 * refuses images naming other files, errors with the right codes.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { rejection } from "../../../test/async.js";
import { findProgram } from "../../storage/exec.js";
import { checkImage, convertImage, createOverlay, imageInfo } from "./qemu-img.js";
import { backedByShadow } from "../../../test/runtime/qemu/hostile-images.js";

const qemuImgMissing = (await findProgram("qemu-img")) === undefined && "qemu-img is not installed";

describe("qemu-img", { skip: qemuImgMissing }, () => {
  let dir = "";
  let base = "";

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "qemu-img-"));
    base = join(dir, "base.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", base, "32M"]);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("makes a private overlay over a base, and never over an existing file", async () => {
    const overlay = join(dir, "disk.qcow2");
    await createOverlay(base, overlay);
    assert.equal((await stat(overlay)).mode & 0o777, 0o600);
    const info = await imageInfo(overlay, { format: "qcow2" });
    assert.equal(info.backingFile, base);
    assert.deepEqual(info.externalFiles, [base]);
    assert.equal(info.virtualSize, 32 * 1024 * 1024);
    const again = await rejection(createOverlay(base, overlay));
    assert.equal(again.code, "conflict");
    // A link planted where the overlay goes is not written through.
    const planted = join(dir, "planted.qcow2");
    await symlink(join(dir, "target"), planted);
    assert.equal((await rejection(createOverlay(base, planted))).code, "conflict");
    assert.ok(!(await readdir(dir)).includes("target"));
  });

  it("leaves nothing when the overlay cannot be made", async () => {
    const overlay = join(dir, "orphan.qcow2");
    const error = await rejection(createOverlay(join(dir, "no-such-base.qcow2"), overlay));
    assert.equal(error.code, "invalid_argument");
    assert.ok(!(await readdir(dir)).includes("orphan.qcow2"));
  });

  it("takes absolute paths only, as qemu-img reads json: and protocol names as options", async () => {
    for (const path of [
      "relative.qcow2",
      'json:{"file.filename":"/etc/shadow"}',
      "nbd:localhost:1",
    ]) {
      assert.equal((await rejection(imageInfo(path))).code, "invalid_argument", path);
    }
  });

  it("converts to a private qcow2, refusing an image that names a backing file", async () => {
    const raw = join(dir, "disk.raw");
    await writeFile(raw, Buffer.alloc(1024 * 1024, 7));
    const dest = join(dir, "converted.qcow2");
    await convertImage(raw, "raw", dest);
    assert.equal((await stat(dest)).mode & 0o777, 0o600);
    assert.equal((await imageInfo(dest, { format: "qcow2" })).format, "qcow2");
    assert.deepEqual(await checkImage(dest), {
      ok: true,
      checkErrors: 0,
      corruptions: 0,
      leaks: 0,
    });

    const overlay = join(dir, "backed.qcow2");
    backedByShadow(overlay);
    const refused = await rejection(convertImage(overlay, "qcow2", join(dir, "leak.qcow2")));
    assert.equal(refused.code, "invalid_argument");
    assert.match(refused.message, /\/etc\/shadow/);
    const unknown = await rejection(convertImage(raw, "qed", join(dir, "x.qcow2")));
    assert.equal(unknown.code, "invalid_argument");
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.includes("leak") || f.endsWith(".tmp")),
      [],
    );
  });

  it("probes bytes of no known format as raw, and an explicit format is not probed again", async () => {
    const text = join(dir, "notes.txt");
    await writeFile(text, "hello");
    assert.equal((await imageInfo(text)).format, "raw");
    const missing = await rejection(imageInfo(join(dir, "absent.qcow2")));
    assert.equal(missing.code, "invalid_argument");
    assert.match(missing.message, /No such file/);
    const wrong = await rejection(imageInfo(text, { format: "qcow2" }));
    assert.equal(wrong.code, "invalid_argument");
  });
});
