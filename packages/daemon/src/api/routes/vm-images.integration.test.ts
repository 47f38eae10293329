/**
 * The VM image routes over real HTTP with the typed client and the CLI, on
 * the real VmImageStore in a scratch directory: images are qcow2 files made
 * with qemu-img and served from a loopback HTTP server, one of them held
 * midway so that the listing's progress can be seen. Access, adding with
 * progress, a duplicate, a failed download kept until dismissed, and
 * deletion refused while an install (or its dependency) runs a VM on the
 * image.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { FastifyInstance } from "fastify";
import { ApiError, TownClient, type VmImageList } from "@townos/client";
import { runTownCaptured } from "../../../../cli/test/run-town.js";
import { installOf } from "../../../test/apps/fakes.js";
import { rejection } from "../../../test/async.js";
import { until } from "../../../test/daemon.js";
import { asVm, compileExample } from "../../../test/runtime/examples.js";
import { startImageServer, type ImageServer } from "../../../test/vm-image-server.js";
import { vmImageName } from "../../runtime/qemu/image-name.js";
import { VmImageStore } from "../../runtime/qemu/images.js";
import type { Services } from "../../services.js";
import { openDatabase } from "../../store/database.js";
import { Installs } from "../../store/installs.js";
import type { BootState } from "../context.js";
import { ADMIN_TOKEN, listenApi, testSessions, USER_TOKEN } from "../../../test/api-harness.js";

const MiB = 1024 * 1024;

describe("VM image routes on the real store", () => {
  let scratch: string;
  let files: ImageServer;
  const installs = new Installs(openDatabase(":memory:"), () => Date.now());
  const audited: { action: string; target: string }[] = [];
  const boot: BootState = { state: "ready", step: "ready", error: null, services: undefined };
  let app: FastifyInstance;
  let baseUrl: string;
  let admin: TownClient;
  let user: TownClient;
  let anonymous: TownClient;

  const town = (...argv: string[]) =>
    runTownCaptured(argv, {
      cwd: scratch,
      env: { TOWN_SERVER: baseUrl, TOWN_TOKEN: ADMIN_TOKEN },
    });

  const listing = (check: (list: VmImageList) => boolean, what: string) =>
    until(what, 30_000, () => admin.vmImages(), check);

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-vm-images-"));
    files = await startImageServer(scratch);

    boot.services = {
      vmImages: new VmImageStore(join(scratch, "vm-images")),
      installs,
      audit: {
        record: (entry: { action: string; target: string }) => audited.push(entry),
      },
      sessions: testSessions,
    } as unknown as Services;
    ({ app, baseUrl } = await listenApi(boot));
    admin = new TownClient({ baseUrl, token: ADMIN_TOKEN });
    user = new TownClient({ baseUrl, token: USER_TOKEN });
    anonymous = new TownClient({ baseUrl });
  });

  after(async () => {
    await app.close();
    await files.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it("is for administrators only", async () => {
    // Made one at a time: each rejection is awaited as soon as it exists.
    const calls = (client: TownClient): (() => Promise<unknown>)[] => [
      () => client.vmImages(),
      () => client.addVmImage({ url: `${files.url}/tiny.qcow2` }),
      () => client.removeVmImage("tiny"),
    ];
    for (const call of calls(anonymous))
      assert.equal((await rejection(call(), ApiError)).problem.status, 401);
    for (const call of calls(user))
      assert.equal((await rejection(call(), ApiError)).problem.status, 403);
    assert.deepEqual(await admin.vmImages(), { images: [], downloads: [] });
  });

  it("adds an image in the background, its progress in the listing until it is ready", async () => {
    files.hold();
    const url = `${files.url}/held.qcow2`;
    const size = files.files.get("/held.qcow2")?.length ?? 0;
    const started = await admin.addVmImage({ url, name: "tiny" });
    assert.deepEqual(
      { name: started.name, url: started.url, error: started.error },
      { name: "tiny", url, error: null },
    );
    // Half of it came, and the server holds the rest back.
    const midway = await listing(
      (list) => (list.downloads[0]?.receivedBytes ?? 0) >= Math.floor(size / 2),
      "half of the download",
    );
    assert.deepEqual(midway.images, []);
    assert.deepEqual(midway.downloads, [
      {
        name: "tiny",
        url,
        phase: "download",
        receivedBytes: Math.floor(size / 2),
        totalBytes: size,
        error: null,
      },
    ]);
    const shown = await town("vm-image", "ls");
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^there are no VM images$/m);
    assert.match(
      shown.stdout,
      /^tiny +downloading 50% \(.+ of .+\) +http:\/\/127\.0\.0\.1:\d+\/held\.qcow2$/m,
    );

    files.release();
    const done = await listing((list) => list.downloads.length === 0, "the image to be ready");
    const image = done.images[0];
    assert.ok(image);
    assert.equal(image.name, "tiny");
    assert.equal(image.source, url);
    assert.equal(image.format, "qcow2");
    assert.equal(image.virtualSize, 16 * MiB);
    assert.ok(image.fileSize > 0);
    assert.equal(
      image.sha256,
      createHash("sha256")
        .update(files.files.get("/held.qcow2") ?? "")
        .digest("hex"),
    );
    assert.deepEqual(image.usedBy, []);
    assert.ok(Math.abs(image.addedAt - Date.now()) < 60_000);
    assert.ok(audited.some((entry) => entry.action === "vm-image.add" && entry.target === "tiny"));

    const listed = await town("vm-image", "ls");
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^NAME +SIZE +VIRTUAL +USED BY +SOURCE$/m);
    assert.match(
      listed.stdout,
      /^tiny +[\d.]+ KiB +16\.0 MiB +- +http:\/\/127\.0\.0\.1:\d+\/held\.qcow2$/m,
    );
    assert.doesNotMatch(listed.stdout, /ADDING/);
  });

  it("refuses a second image of a name, and input the store cannot take", async () => {
    const duplicate = await rejection(
      admin.addVmImage({ url: `${files.url}/tiny.qcow2`, name: "tiny" }),
      ApiError,
    );
    assert.equal(duplicate.problem.code, "conflict");
    assert.match(duplicate.problem.detail, /"tiny" is already in the store/);
    for (const body of [
      { url: "ftp://127.0.0.1/tiny.qcow2" },
      { url: `${files.url}/tiny.qcow2`, name: "../escape" },
      { url: `${files.url}/tiny.qcow2`, name: "a..b" },
      { url: `${files.url}/tiny.qcow2`, sha256: "abc" },
    ]) {
      const refused = await rejection(admin.addVmImage(body), ApiError);
      assert.equal(refused.problem.code, "invalid_argument", JSON.stringify(body));
    }
    assert.equal((await admin.vmImages()).downloads.length, 0);
  });

  it("keeps a failed download's error in the listing until it is dismissed", async () => {
    const url = `${files.url}/tiny.qcow2`;
    const wrong = "0".repeat(64);
    const added = await town("vm-image", "add", url, "--name", "bad", "--sha256", wrong);
    assert.equal(added.code, 1);
    assert.match(
      added.stderr,
      /^town: adding bad failed: .*sha256 is [0-9a-f]{64}, but 0{64} was expected$/m,
    );
    const failed = await admin.vmImages();
    assert.equal(failed.downloads.length, 1);
    const [failure] = failed.downloads;
    assert.equal(failure?.name, "bad");
    assert.match(failure.error ?? "", /sha256/);
    assert.ok(!failed.images.some((image) => image.name === "bad"));
    const shown = await town("vm-image", "ls");
    assert.match(shown.stdout, /^bad +failed: .*sha256/m);

    await admin.removeVmImage("bad");
    assert.deepEqual((await admin.vmImages()).downloads, []);
    const gone = await rejection(admin.removeVmImage("bad"), ApiError);
    assert.equal(gone.problem.code, "not_found");
  });

  it("adds with a name made from the URL, printing progress, and deletes by name", async () => {
    const url = `${files.url}/other/disk.qcow2`;
    const name = vmImageName(url);
    assert.match(name, /^disk-[0-9a-f]{8}$/);
    const added = await town("vm-image", "add", url);
    assert.equal(added.code, 0, added.stderr);
    assert.match(
      added.stdout,
      new RegExp(`^added ${name}: qcow2, virtual size 16\\.0 MiB, .+ on disk$`, "m"),
    );
    assert.match(added.stderr, new RegExp(`^${name}: downloading`, "m"));
    const removed = await town("vm-image", "rm", name);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout, `deleted ${name}\n`);
    assert.ok(!(await admin.vmImages()).images.some((image) => image.name === name));
  });

  it("refuses to delete an image an installed app or its dependency runs a VM on, naming them", async () => {
    const url = `${files.url}/other/disk.qcow2`;
    const byUrl = vmImageName(url);
    await admin.addVmImage({ url });
    await listing((list) => list.images.some((image) => image.name === byUrl), byUrl);
    installs.put(installOf(asVm(compileExample("hello", "1.0"), "tiny")));
    // The guestbook's dependency runs the VM, on the image as a URL.
    const guestbook = compileExample("guestbook", "1.0");
    const [store] = guestbook.dependencies;
    assert.ok(store);
    installs.put(
      installOf({ ...guestbook, dependencies: [{ ...asVm(store, url), key: store.key }] }),
    );
    const list = await admin.vmImages();
    assert.deepEqual(
      list.images.map((image) => [image.name, image.usedBy]),
      [
        [byUrl, ["default/guestbook"]],
        ["tiny", ["default/hello"]],
      ].sort(),
    );

    const refused = await town("vm-image", "rm", "tiny");
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /^town: Conflict: VM image "tiny" is used by default\/hello: uninstall that app first$/m,
    );
    const byDependency = await rejection(admin.removeVmImage(byUrl), ApiError);
    assert.equal(byDependency.problem.status, 409);
    assert.match(byDependency.problem.detail, /used by default\/guestbook/);
    assert.ok(existsSync(join(scratch, "vm-images", "tiny.qcow2")));

    installs.remove("default", "hello", false);
    installs.remove("default", "guestbook", false);
    await admin.removeVmImage("tiny");
    await admin.removeVmImage(byUrl);
    assert.deepEqual(await admin.vmImages(), { images: [], downloads: [] });
    assert.ok(!existsSync(join(scratch, "vm-images", "tiny.qcow2")));
  });

  it("stops the downloads it started when the server closes, keeping their part to resume", async () => {
    files.hold();
    await admin.addVmImage({ url: `${files.url}/held.qcow2`, name: "cut" });
    await listing((list) => (list.downloads[0]?.receivedBytes ?? 0) > 0, "half of the download");
    const store = (boot.services as Services).vmImages;
    await app.close();
    await until(
      "the download to stop",
      10_000,
      () => Promise.resolve(store.downloads()),
      (downloads) => downloads.every((d) => d.error !== undefined),
    );
    assert.deepEqual(
      store.downloads().map((d) => d.name),
      ["cut"],
    );
    const left = await readdir(join(scratch, "vm-images"));
    assert.ok(
      left.some((file) => /^\.download-cut-[0-9a-f]{8}\.part$/.test(file)),
      String(left),
    );
    assert.equal(await store.get("cut"), undefined);
  });
});
