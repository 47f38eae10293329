/**
 * The VM image store against the real qemu-img and a loopback HTTP server
 * serving images this test makes: downloads with progress and resume,
 * checks, conversion, and the hostile images a package repository could
 * serve (a backing file naming /etc/shadow, a VMDK whose extent is
 * /etc/passwd, a truncated qcow2), each refused with nothing left behind.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { after, before, beforeEach, describe, it } from "node:test";
import { rejection } from "../../../test/async.js";
import { findProgram } from "../../storage/exec.js";
import { vmImageName } from "./image-name.js";
import { download } from "./download.js";
import { VmImageStore } from "./images.js";
import { imageInfo } from "./qemu-img.js";
import { backedByShadow } from "../../../test/runtime/qemu/hostile-images.js";

const MiB = 1024 * 1024;
const qemuImgMissing = (await findProgram("qemu-img")) === undefined && "qemu-img is not installed";

interface Logged {
  path: string;
  range: string | undefined;
}

/**
 * Serves `files` with Range support. A path in `cuts` loses its connection
 * halfway through the body (as many times as its count says); `/stall` sends
 * half and then nothing.
 */
class ImageServer {
  readonly files = new Map<string, Buffer>();
  readonly cuts = new Map<string, number>();
  readonly requests: Logged[] = [];
  private server: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const path = request.url ?? "/";
      this.requests.push({ path, range: request.headers.range });
      const redirects: Record<string, string> = {
        "/redirect": "/data.qcow2",
        "/to-file": "file:///etc/shadow",
        "/loop": "/loop",
      };
      const location = redirects[path];
      if (location !== undefined) {
        response.writeHead(302, { location }).end();
        return;
      }
      const body = this.files.get(path === "/stall" ? "/data.qcow2" : path);
      if (body === undefined) {
        response.writeHead(404).end();
        return;
      }
      const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? "");
      const start = range === null ? 0 : Number(range[1]);
      response.writeHead(range === null ? 200 : 206, {
        "content-length": body.length - start,
        ...(range === null
          ? {}
          : { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` }),
      });
      const rest = body.subarray(start);
      const cuts = this.cuts.get(path) ?? 0;
      if (cuts > 0 || path === "/stall") {
        this.cuts.set(path, cuts - 1);
        response.write(rest.subarray(0, Math.floor(rest.length / 2)), () => {
          if (path !== "/stall") request.socket.destroy();
        });
        return;
      }
      response.end(rest);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.port = typeof address === "object" && address !== null ? address.port : 0;
  }

  url(path: string, host = "127.0.0.1"): string {
    return `http://${host}:${this.port}${path}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

describe("VM image store", { skip: qemuImgMissing }, () => {
  const server = new ImageServer();
  let scratch = "";
  let dir = "";
  let store: VmImageStore;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "vm-images-"));
    const make = join(scratch, "make");
    await mkdir(make);
    const raw = join(make, "disk.raw");
    // 2 MiB of data in an 8 MiB disk: a qcow2 of it has real clusters to lose.
    await writeFile(raw, Buffer.concat([randomBytes(2 * MiB), Buffer.alloc(6 * MiB)]));
    const qcow2 = join(make, "data.qcow2");
    execFileSync("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw, qcow2]);
    const backed = join(make, "backed.qcow2");
    backedByShadow(backed);
    const dataFile = join(make, "data-file.qcow2");
    const secret = join(make, "secret.raw");
    execFileSync("qemu-img", [
      "create",
      "-q",
      "-f",
      "qcow2",
      "-o",
      `data_file=${secret}`,
      dataFile,
      "1M",
    ]);
    const qcow2Bytes = await readFile(qcow2);
    server.files.set("/data.qcow2", qcow2Bytes);
    server.files.set("/flaky.qcow2", qcow2Bytes);
    server.files.set("/flakier.qcow2", qcow2Bytes);
    server.files.set("/disk.raw", await readFile(raw));
    server.files.set(
      "/truncated.qcow2",
      qcow2Bytes.subarray(0, Math.floor(qcow2Bytes.length * 0.6)),
    );
    server.files.set("/backed.qcow2", await readFile(backed));
    server.files.set("/data-file.qcow2", await readFile(dataFile));
    server.files.set(
      "/extent.vmdk",
      Buffer.from(
        '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n' +
          'RW 8 FLAT "/etc/passwd" 0\n\nddb.virtualHWVersion = "4"\n',
      ),
    );
    server.files.set("/garbage.img", Buffer.from("<html>not found</html>"));
    const xz = execFileSync("xz", ["-c", "-T1", raw], { maxBuffer: 64 * MiB });
    server.files.set("/disk.raw.xz", xz);
    server.files.set("/cut.raw.xz", xz.subarray(0, Math.floor(xz.length / 2)));
    server.files.set("/data.qcow2.gz", gzipSync(qcow2Bytes));
    server.files.set("/zeros.img.gz", gzipSync(Buffer.alloc(16 * MiB)));
    await server.start();
  });

  after(async () => {
    await server.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(scratch, "store-"));
    dir = join(dir, "vm-images");
    store = new VmImageStore(dir);
  });

  /** Store entries, hidden downloads included. */
  async function entries(): Promise<string[]> {
    return (await readdir(dir).catch(() => [])).sort();
  }

  it("adds a qcow2 image, reporting progress, and keeps it as a private qcow2 with metadata", async () => {
    const url = server.url("/data.qcow2");
    const seen: number[] = [];
    let during: ReturnType<VmImageStore["downloads"]> = [];
    const image = await store.add(url, {
      name: "debian",
      allowPrivateAddresses: true,
      onProgress: (progress) => {
        seen.push(progress.receivedBytes);
        assert.equal(progress.totalBytes, server.files.get("/data.qcow2")?.length);
        during = store.downloads();
      },
    });
    const served = server.files.get("/data.qcow2") ?? Buffer.alloc(0);
    assert.equal(seen.at(-1), served.length);
    assert.deepEqual(
      during.map((d) => [d.name, d.phase]),
      [["debian", "download"]],
    );
    assert.deepEqual(store.downloads(), []);
    assert.equal(image.name, "debian");
    assert.equal(image.url, url);
    assert.equal(image.format, "qcow2");
    assert.equal(image.sha256, sha256(served));
    assert.equal(image.virtualSize, 8 * MiB);
    assert.deepEqual(await entries(), ["debian.json", "debian.qcow2"]);
    assert.equal((await stat(store.path("debian"))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, "debian.json"))).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    const info = await imageInfo(store.path("debian"), { format: "qcow2" });
    assert.equal(info.backingFile, null);
    assert.deepEqual(await store.list(), [image]);
    assert.deepEqual(await store.get("debian"), image);
  });

  it("converts a raw image to qcow2 and remembers the format it came in", async () => {
    const image = await store.add(server.url("/disk.raw"), { allowPrivateAddresses: true });
    assert.match(image.name, /^disk-[0-9a-f]{8}$/);
    assert.equal(image.format, "raw");
    assert.equal(image.virtualSize, 8 * MiB);
    const info = await imageInfo(store.path(image.name), { format: "qcow2" });
    assert.equal(info.format, "qcow2");
    assert.ok(image.fileSize < 8 * MiB, "the zeros are not stored");
  });

  it("resumes a download whose connection dropped midway with a Range request", async () => {
    server.cuts.set("/flaky.qcow2", 1);
    const first = server.requests.length;
    const image = await store.add(server.url("/flaky.qcow2"), { allowPrivateAddresses: true });
    const served = server.files.get("/flaky.qcow2") ?? Buffer.alloc(0);
    assert.equal(image.sha256, sha256(served));
    const requests = server.requests.slice(first);
    assert.equal(requests.length, 2);
    assert.equal(requests[0]?.range, undefined);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(requests[1]?.range ?? "")?.[1]);
    assert.ok(resumedAt > 0 && resumedAt < served.length, `resumed at ${resumedAt}`);
    assert.deepEqual(await entries(), [`${image.name}.json`, `${image.name}.qcow2`]);
  });

  it("keeps the part of a download that kept failing, and the next add resumes it", async () => {
    const url = server.url("/flakier.qcow2");
    // More drops than the download retries: the add fails, having got most of the file.
    server.cuts.set("/flakier.qcow2", 4);
    const failed = await rejection(
      store.add(url, { name: "flakier", allowPrivateAddresses: true }),
    );
    assert.equal(failed.code, "unavailable");
    assert.match(store.downloads()[0]?.error ?? "", /closed after|broke off/);
    const parts = (await entries()).filter((entry) => entry.endsWith(".part"));
    assert.equal(parts.length, 1);
    const first = server.requests.length;
    const image = await store.add(url, { name: "flakier", allowPrivateAddresses: true });
    assert.equal(image.sha256, sha256(server.files.get("/flakier.qcow2") ?? Buffer.alloc(0)));
    assert.match(server.requests[first]?.range ?? "", /^bytes=[1-9]\d*-$/);
    assert.deepEqual(await entries(), ["flakier.json", "flakier.qcow2"]);
  });

  it("stops when its caller gives up, and when the server goes quiet", async () => {
    const controller = new AbortController();
    const aborted = await rejection(
      store.add(server.url("/stall"), {
        name: "stalled",
        allowPrivateAddresses: true,
        signal: controller.signal,
        onProgress: (progress) => {
          if (progress.receivedBytes > 0) controller.abort(new Error("changed my mind"));
        },
      }),
      Error,
    );
    assert.equal(aborted.message, "changed my mind");
    const part = join(dir, (await entries()).find((entry) => entry.endsWith(".part")) ?? "");
    assert.ok((await stat(part)).size > 0, "the part stays for a later add");
    const quiet = await rejection(
      download(server.url("/stall"), join(scratch, "quiet.img"), {
        allowPrivateAddresses: true,
        idleTimeoutMs: 300,
        retries: 0,
      }),
    );
    assert.equal(quiet.code, "unavailable");
    assert.match(quiet.message, /nothing received for 300 ms/);
  });

  it("refuses a checksum mismatch, naming both sums, and leaves nothing", async () => {
    const wrong = "0".repeat(64);
    const error = await rejection(
      store.add(server.url("/data.qcow2"), { sha256: wrong, allowPrivateAddresses: true }),
    );
    assert.equal(error.code, "invalid_argument");
    assert.match(
      error.message,
      new RegExp(`${sha256(server.files.get("/data.qcow2") ?? Buffer.alloc(0))}.*${wrong}`),
    );
    assert.deepEqual(await entries(), []);
    const right = sha256(server.files.get("/data.qcow2") ?? Buffer.alloc(0)).toUpperCase();
    const image = await store.add(server.url("/data.qcow2"), {
      sha256: right,
      allowPrivateAddresses: true,
    });
    assert.equal(image.sha256, right.toLowerCase());
  });

  it("refuses a truncated qcow2 with a clear error and leaves nothing", async () => {
    const url = server.url("/truncated.qcow2");
    const error = await rejection(store.add(url, { allowPrivateAddresses: true }));
    assert.equal(error.code, "invalid_argument");
    assert.match(error.message, /damaged or truncated/);
    assert.deepEqual(await entries(), []);
    assert.equal(await store.get(vmImageName(url)), undefined);
    assert.match(store.downloads()[0]?.error ?? "", /damaged or truncated/);
  });

  it("refuses images that name other host files: a hostile repository's backing file, data file, VMDK extent", async () => {
    for (const [path, expected] of [
      ["/backed.qcow2", /\/etc\/shadow/],
      ["/data-file.qcow2", /secret\.raw/],
      ["/extent.vmdk", /\/etc\/passwd/],
    ] as const) {
      const error = await rejection(store.add(server.url(path), { allowPrivateAddresses: true }));
      assert.equal(error.code, "invalid_argument", path);
      assert.match(error.message, /refers to other files/, path);
      assert.match(error.message, expected, path);
      assert.deepEqual(await entries(), [], path);
    }
  });

  it("takes bytes of no known format as a raw disk, and an HTTP error as unavailable", async () => {
    const image = await store.add(server.url("/garbage.img"), { allowPrivateAddresses: true });
    assert.equal(image.format, "raw");
    const error = await rejection(
      store.add(server.url("/missing.img"), { allowPrivateAddresses: true }),
    );
    assert.equal(error.code, "unavailable");
    assert.match(error.message, /answered 404/);
  });

  it("unpacks .xz and .gz images, found by their bytes", async () => {
    const fromXz = await store.add(server.url("/disk.raw.xz"), { allowPrivateAddresses: true });
    assert.equal(fromXz.format, "raw");
    assert.equal(fromXz.sha256, sha256(server.files.get("/disk.raw.xz") ?? Buffer.alloc(0)));
    assert.equal(fromXz.virtualSize, 8 * MiB);
    const fromGz = await store.add(server.url("/data.qcow2.gz"), { allowPrivateAddresses: true });
    assert.equal(fromGz.format, "qcow2");
    assert.equal(fromGz.virtualSize, 8 * MiB);
    assert.deepEqual(
      await entries(),
      [
        `${fromGz.name}.json`,
        `${fromGz.name}.qcow2`,
        `${fromXz.name}.json`,
        `${fromXz.name}.qcow2`,
      ].sort(),
    );
  });

  it("refuses damaged compressed data and an image that unpacks beyond the limit, leaving nothing", async () => {
    const cut = await rejection(
      store.add(server.url("/cut.raw.xz"), { allowPrivateAddresses: true }),
    );
    assert.equal(cut.code, "invalid_argument");
    assert.match(cut.message, /the xz data is damaged/);
    assert.deepEqual(await entries(), []);
    const small = new VmImageStore(dir, { maxDownloadBytes: 4 * MiB });
    const bomb = await rejection(
      small.add(server.url("/zeros.img.gz"), { allowPrivateAddresses: true }),
    );
    assert.equal(bomb.code, "invalid_argument");
    assert.match(bomb.message, /unpacks to more than 4194304 bytes/);
    assert.deepEqual(await entries(), []);
  });

  it("stops a download over the size limit and leaves nothing", async () => {
    const small = new VmImageStore(dir, { maxDownloadBytes: 1024 });
    const error = await rejection(
      small.add(server.url("/data.qcow2"), { allowPrivateAddresses: true }),
    );
    assert.equal(error.code, "invalid_argument");
    assert.match(error.message, /larger than the limit of 1024 bytes/);
    assert.deepEqual(await entries(), []);
  });

  it("refuses private addresses unless allowed, also behind a name", async () => {
    const before = server.requests.length;
    for (const host of ["127.0.0.1", "localhost"]) {
      const error = await rejection(store.add(server.url("/data.qcow2", host)));
      assert.equal(error.code, "invalid_argument", host);
      assert.match(error.message, /local address/, host);
    }
    assert.equal(server.requests.length, before, "nothing reached the server");
    assert.deepEqual(await entries(), []);
  });

  it("follows a redirect to the image, but not to another scheme nor forever", async () => {
    const image = await store.add(server.url("/redirect"), {
      name: "moved",
      allowPrivateAddresses: true,
    });
    assert.equal(image.sha256, sha256(server.files.get("/data.qcow2") ?? Buffer.alloc(0)));
    const toFile = await rejection(
      store.add(server.url("/to-file"), { allowPrivateAddresses: true }),
    );
    assert.equal(toFile.code, "invalid_argument");
    assert.match(
      toFile.message,
      /redirects to a refused URL: "file:\/\/\/etc\/shadow" is not an http\(s\) URL/,
    );
    const loop = await rejection(store.add(server.url("/loop"), { allowPrivateAddresses: true }));
    assert.equal(loop.code, "unavailable");
    assert.match(loop.message, /more than 5 redirects/);
    assert.deepEqual(await entries(), ["moved.json", "moved.qcow2"]);
  });

  it("adds once: a second add returns the image, concurrent adds share one download", async () => {
    const url = server.url("/data.qcow2");
    const before = server.requests.length;
    const [a, b] = await Promise.all([
      store.add(url, { name: "shared", allowPrivateAddresses: true }),
      store.add(url, { name: "shared", allowPrivateAddresses: true }),
    ]);
    assert.deepEqual(a, b);
    assert.equal(server.requests.length, before + 1);
    assert.deepEqual(await store.add(url, { name: "shared", allowPrivateAddresses: true }), a);
    assert.equal(server.requests.length, before + 1);
    assert.deepEqual(await store.ensure("shared"), a);
    // A caller expecting another checksum is refused, the image someone else added stays.
    const other = await rejection(
      store.add(url, { name: "shared", sha256: "1".repeat(64), allowPrivateAddresses: true }),
    );
    assert.equal(other.code, "invalid_argument");
    assert.match(other.message, /1{64} was expected/);
    assert.deepEqual(await store.get("shared"), a);
  });

  it("refuses another URL under a taken name, and unknown store names", async () => {
    await store.add(server.url("/data.qcow2"), { name: "taken", allowPrivateAddresses: true });
    const error = await rejection(
      store.add(server.url("/disk.raw"), { name: "taken", allowPrivateAddresses: true }),
    );
    assert.equal(error.code, "conflict");
    const missing = await rejection(store.ensure("nothing-here"));
    assert.equal(missing.code, "not_found");
    assert.match(missing.message, /town vm-image add URL --name nothing-here/);
  });

  it("ensures a URL under its derived name and removes it", async () => {
    const url = server.url("/data.qcow2");
    const image = await store.ensure(url, { allowPrivateAddresses: true });
    assert.equal(image.name, vmImageName(url));
    assert.equal(await store.remove(image.name), true);
    assert.equal(await store.remove(image.name), false);
    assert.deepEqual(await entries(), []);
  });
});
