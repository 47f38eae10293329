/**
 * A VM app end to end, against the real programs: QEMU (TCG) booting the
 * test guest (test/runtime/qemu/guest.ts: a Debian kernel, busybox and an
 * HTTP server) downloaded from a loopback HTTP server into the VM image
 * store, its disk in a btrfs volume, installed from a package served by git
 * over smart HTTP. Install and reach the guest's web server through the
 * forwarded port; logs from the serial console; QEMU killed and restarted;
 * the VM outliving the daemon and adopted by the next one; stop and start;
 * uninstall keeping the disk and a reinstall finding what the first boot
 * wrote; a truncated image failing the install and leaving nothing behind.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { TownClient } from "@townos/client";
import { runTownCaptured, type TownRun } from "../../../cli/test/run-town.js";
import { createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
import {
  freePort,
  podmanMissing,
  preparePodmanHost,
  removeAppLeftovers,
  startTestPodman,
  stopTestPodman,
} from "../../test/runtime/podman-host.js";
import {
  buildTestGuest,
  TEST_GUEST_DIR,
  TEST_GUEST_GREETING,
  TEST_GUEST_MARKER_PREFIX,
  testGuestMissing,
} from "../../test/runtime/qemu/guest.js";
import { processesMentioning } from "../../test/processes.js";
import { btrfsUnavailable } from "../../test/storage/loop-btrfs.js";
import { setupAdmin, startPodmanDaemon, until, untilAppsAvailable } from "../../test/daemon.js";
import type { RunningDaemon } from "../daemon.js";
import type { Podman } from "../runtime/podman/client.js";
import type { ServiceState } from "../runtime/podman/service.js";
import { mountedAt, storageLocations, unmount } from "../storage/setup.js";

const skip = podmanMissing || testGuestMissing() || (await btrfsUnavailable()) || false;
if (skip) console.log(`# skipping the VM integration test: ${skip}`);

const run = promisify(execFile);
const PASSWORD = "admin-password-3b9c";
const MiB = 1024 * 1024;
/** The guest boots under emulation: give it time on a busy 2-core machine. */
const BOOT_MS = 180_000;

function vmPackage(imageUrl: string): string {
  return `
description: The test guest as an app
vm:
  image: "${imageUrl}"
  memory: 128mb
  cpus: 1
environment:
  GREETING: from-the-package
network:
  external:
    "@port@": "80"
questions:
  port:
    query: "Port for the guest's web server"
    type: port
`;
}

describe("a VM app on QEMU, btrfs and Podman", { skip, timeout: 900_000 }, () => {
  const repo = `v${randomBytes(4).toString("hex")}`;
  let scratch: string;
  let dataDir: string;
  let images: Server | undefined;
  let git: GitServer | undefined;
  let daemon: RunningDaemon | undefined;
  let podman: Podman;
  let service: ServiceState = { started: false, pid: null };
  let admin: TownClient;
  let url: string;
  let port: number;

  const qemuPids = (): Promise<number[]> => processesMentioning(join(dataDir, "vms"));
  const page = async (path: string): Promise<string> => {
    const response = await fetch(`http://127.0.0.1:${port}/${path}`, {
      signal: AbortSignal.timeout(3_000),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.text();
  };
  const guestPage = (path: string, ms = BOOT_MS): Promise<string> =>
    until(
      `the guest's /${path}`,
      ms,
      () => page(path),
      () => true,
    );
  async function town(...argv: string[]): Promise<TownRun> {
    return runTownCaptured(argv, {
      cwd: scratch,
      env: { TOWN_SERVER: url, XDG_CONFIG_HOME: join(scratch, "config") },
    });
  }
  async function startTown(): Promise<void> {
    daemon = await startPodmanDaemon(scratch, podman, {
      dataDir,
      apps: {
        storageLoopBytes: 1024 * MiB,
        vms: { accelerator: "tcg", privateImageUrls: true },
      },
    });
    url = daemon.url;
  }
  async function signIn(): Promise<void> {
    const signedIn = await new TownClient({ baseUrl: url }).login({
      username: "admin",
      password: PASSWORD,
    });
    admin = new TownClient({ baseUrl: url, token: signedIn.token });
    const login = await town("login", "--username", "admin", "--password", PASSWORD);
    assert.equal(login.code, 0, login.stderr);
    await untilAppsAvailable(admin, 30_000);
  }

  before(async () => {
    await preparePodmanHost();
    scratch = await mkdtemp(join(tmpdir(), "town-vm-"));
    dataDir = join(scratch, "data");
    ({ podman, service } = await startTestPodman(scratch));
    const guest = await buildTestGuest(TEST_GUEST_DIR);
    // A truncated qcow2: its header promises clusters the file no longer holds.
    const qcow2 = join(scratch, "guest.qcow2");
    await run("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", guest.diskPath, qcow2]);
    const whole = await readFile(qcow2);
    const truncated = join(scratch, "truncated.qcow2");
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
    const files: Record<string, string> = {
      "/guest.img": guest.diskPath,
      "/truncated.qcow2": truncated,
    };
    images = createServer((request, response) => {
      const file = files[request.url ?? ""];
      if (file === undefined) {
        response.writeHead(404).end();
        return;
      }
      void stat(file).then(({ size }) => {
        response.writeHead(200, { "content-length": size });
        createReadStream(file).pipe(response);
      });
    });
    await new Promise<void>((resolve) => images?.listen(0, "127.0.0.1", resolve));
    const address = images.address();
    assert.ok(address !== null && typeof address === "object");
    const imageBase = `http://127.0.0.1:${address.port}`;
    await createRepo(join(scratch, "git"), "apps.git", {
      "packages/guest/1.0.yaml": vmPackage(`${imageBase}/guest.img`),
      "packages/broken/1.0.yaml": vmPackage(`${imageBase}/truncated.qcow2`),
    });
    git = await startGitServer({ root: join(scratch, "git") });
    await startTown();
    assert.ok(daemon);
    await setupAdmin(daemon, PASSWORD);
    await signIn();
    await admin.addRepository({ name: repo, url: git.url("apps.git") });
    port = await freePort();
  });

  after(async () => {
    try {
      await daemon?.stop();
      // The daemon leaves VMs running by design; the test's must go.
      for (const pid of await qemuPids()) process.kill(pid, "SIGKILL");
      await git?.close();
      await new Promise((resolve) => images?.close(resolve));
      await removeAppLeftovers(podman, [`${repo}/guest`, `${repo}/broken`]);
    } finally {
      stopTestPodman({ podman, service });
      const { root } = storageLocations(dataDir);
      if (await mountedAt(root)) await unmount(root);
      await rm(scratch, { recursive: true, force: true });
    }
  });

  let marker = "";

  it("installs from the image's URL with progress, and the guest serves through its port", async () => {
    await until(
      "the repository to be read",
      30_000,
      () => admin.repositories(),
      (list) => list.items.some((r) => r.name === repo && !r.status.loading),
    );
    const install = await town("app", "install", `${repo}/guest@1.0`, "--set", `port=${port}`);
    assert.equal(install.code, 0, install.stderr);
    assert.match(install.stderr, /… download VM image http:\/\/127\.0\.0\.1:\d+\/guest\.img/);
    assert.match(install.stderr, /… create volume pkg\..*\.guest\.vm-disk/);
    assert.match(install.stderr, /… start vm town-.*--guest/);
    assert.equal(await guestPage(""), TEST_GUEST_GREETING);
    marker = (await guestPage("marker")).trim();
    assert.ok(marker.startsWith(TEST_GUEST_MARKER_PREFIX), marker);
    assert.equal((await guestPage("boots")).trim(), "1");
    // The package's environment reaches the guest through fw_cfg.
    assert.match(await guestPage("env"), /^GREETING=from-the-package$/m);

    const view = await admin.app(repo, "guest");
    assert.equal(view.vm?.accelerator, "tcg");
    assert.equal(view.vm.memoryBytes, 128 * MiB);
    assert.equal(view.vm.cpus, 1);
    const imagesListed = await town("vm-image", "ls");
    assert.equal(imagesListed.code, 0, imagesListed.stderr);
    assert.match(imagesListed.stdout, /guest-[0-9a-f]{8}/);
  });

  it("reads the serial console as the app's logs", async () => {
    const logs = await until(
      "the console in the logs",
      30_000,
      () => town("app", "logs", `${repo}/guest`),
      (run) => run.stdout.includes("town-guest: http ready"),
    );
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /town-guest: first boot: marker written/);
  });

  it("restarts QEMU when it is killed, on the same disk", async () => {
    const [pid] = await qemuPids();
    assert.ok(pid !== undefined, "QEMU runs");
    process.kill(pid, "SIGKILL");
    await until(
      "a new QEMU",
      30_000,
      () => qemuPids(),
      (pids) => pids.length === 1 && pids[0] !== pid,
    );
    assert.equal((await guestPage("boots")).trim(), "2");
    assert.equal((await guestPage("marker")).trim(), marker);
  });

  it("keeps the VM running while the daemon restarts, and adopts it", async () => {
    const before = await qemuPids();
    await daemon?.stop();
    daemon = undefined;
    assert.equal(await page(""), TEST_GUEST_GREETING, "the guest serves without a daemon");
    await startTown();
    await signIn();
    const view = await until(
      "the VM adopted",
      60_000,
      () => admin.app(repo, "guest"),
      (app) => app.vm?.qmpStatus === "running",
    );
    assert.equal(view.lastError, null);
    assert.deepEqual(await qemuPids(), before, "the same QEMU, not a new one");
  });

  it("stops and starts the VM", async () => {
    const stop = await town("app", "stop", `${repo}/guest`);
    assert.equal(stop.code, 0, stop.stderr);
    assert.deepEqual(await qemuPids(), []);
    await assert.rejects(page(""));
    const start = await town("app", "start", `${repo}/guest`);
    assert.equal(start.code, 0, start.stderr);
    assert.equal(await guestPage(""), TEST_GUEST_GREETING);
    assert.equal((await guestPage("boots")).trim(), "3");
  });

  it("uninstall keeps the disk; a reinstall boots from it and finds what the first boot wrote", async () => {
    const uninstall = await town("app", "uninstall", `${repo}/guest`);
    assert.equal(uninstall.code, 0, uninstall.stderr);
    assert.deepEqual(await qemuPids(), []);
    const reinstall = await town("app", "install", `${repo}/guest`, "--set", `port=${port}`);
    assert.equal(reinstall.code, 0, reinstall.stderr);
    assert.match(reinstall.stderr, /… reattach volume pkg\..*\.guest\.vm-disk from uninstalled\./);
    assert.doesNotMatch(reinstall.stderr, /download VM image/, "the image is in the store");
    assert.equal((await guestPage("marker")).trim(), marker);
  });

  it("fails the install of a truncated image clearly and leaves nothing behind", async () => {
    const install = await town(
      "app",
      "install",
      `${repo}/broken@1.0`,
      "--set",
      `port=${await freePort()}`,
    );
    assert.notEqual(install.code, 0);
    assert.match(install.stderr, /truncated\.qcow2/);
    assert.match(install.stderr, /image/i);
    assert.equal(
      (await admin.apps()).items.some((app) => app.name === "broken"),
      false,
    );
    const volumes = await readdir(join(dataDir, "storage/volumes"));
    assert.deepEqual(
      volumes.filter((name) => name.includes(`.${repo}.broken.`)),
      [],
    );
    const store = await readdir(join(dataDir, "vm-images"));
    assert.deepEqual(
      store.filter((name) => name.startsWith("truncated")),
      [],
    );
  });
});
