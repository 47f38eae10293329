/**
 * The install lifecycle against the real programs: Podman, btrfs on a loop
 * file, git over smart HTTP. Seeding from an image and from git, a quota
 * hit inside the container, stop/start, upgrade with post_update, uninstall
 * keeping data and reinstall taking it back, purge, and a daemon killed
 * with SIGKILL in the middle of an install.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { TownClient, type AppView } from "@townos/client";
import { runTownCaptured, type TownRun } from "../../../cli/test/run-town.js";
import { serveSeededSite, type GitServer } from "../../test/git-server.js";
import {
  freePort,
  podmanMissing,
  preparePodmanHost,
  removeAppLeftovers,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
} from "../../test/runtime/podman-host.js";
import { btrfsUnavailable } from "../../test/storage/loop-btrfs.js";
import { setupAdmin, startPodmanDaemon, until, untilAppsAvailable } from "../../test/daemon.js";
import type { RunningDaemon } from "../daemon.js";
import type { Podman } from "../runtime/podman/client.js";
import type { ServiceState } from "../runtime/podman/service.js";
import { mountedAt, storageLocations, unmount } from "../storage/setup.js";

const skip = podmanMissing || (await btrfsUnavailable()) || false;
if (skip) console.log(`# skipping the lifecycle integration test: ${skip}`);

const repoRoot = join(import.meta.dirname, "../../../..");
const PASSWORD = "admin-password-7d2e";
const MiB = 1024 * 1024;

function sitePackage(version: string, gitUrl: string): string {
  return `
image: ${TEST_IMAGE}
description: A site seeded from git, with its config copied out of the image
entrypoint: ["/bin/busybox"]
command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
environment:
  SITE_VERSION: "${version}"
network:
  external:
    "@port@": "8080"
volumes:
  www:
    mountpoint: /www
    quota: 8mb
  conf:
    mountpoint: /conf
archives:
  - image: ${TEST_IMAGE}
    directory: /etc
    volume: conf
git_sources:
  - url: "${gitUrl}"
    volume: www
questions:
  port:
    query: "Port for the site"
    type: port
${version === "1.0" ? "" : `post_update:\n  - "echo upgraded to ${version} > /www/upgraded.txt"\n`}`;
}

describe("the app lifecycle on btrfs and Podman", { skip, timeout: 240_000 }, () => {
  const repo = `l${randomBytes(4).toString("hex")}`;
  let scratch: string;
  let dataDir: string;
  let server: GitServer | undefined;
  let daemon: RunningDaemon | undefined;
  let child: ChildProcess | undefined;
  let podman: Podman;
  let service: ServiceState = { started: false, pid: null };
  let admin: TownClient;
  let url: string;
  let port: number;

  const volumeDir = (name: string): string => join(dataDir, "storage/volumes", name);
  const page = async (path: string): Promise<string> => {
    const response = await fetch(`http://127.0.0.1:${port}/${path}`, {
      signal: AbortSignal.timeout(2_000),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.text();
  };
  async function town(...argv: string[]): Promise<TownRun> {
    return runTownCaptured(argv, {
      cwd: scratch,
      env: { TOWN_SERVER: url, XDG_CONFIG_HOME: join(scratch, "config") },
    });
  }
  async function signIn(): Promise<void> {
    const base = new TownClient({ baseUrl: url });
    await until(
      "the daemon",
      20_000,
      () => base.status(),
      (s) => s.state === "ready",
    );
    const signedIn = await base.login({ username: "admin", password: PASSWORD });
    admin = new TownClient({ baseUrl: url, token: signedIn.token });
    const login = await town("login", "--username", "admin", "--password", PASSWORD);
    assert.equal(login.code, 0, login.stderr);
    await untilAppsAvailable(admin, 30_000);
  }
  /** The daemon as a process of its own, to be killed with SIGKILL. */
  async function startChild(listenPort: number): Promise<void> {
    child = spawn(
      process.execPath,
      [
        "--conditions=source",
        "--import",
        "tsx",
        join(repoRoot, "packages/cli/src/main.ts"),
        "daemon",
      ],
      {
        cwd: repoRoot,
        stdio: "ignore",
        env: {
          ...process.env,
          TOWN_DATA_DIR: dataDir,
          TOWN_LISTEN: `127.0.0.1:${listenPort}`,
          TOWN_DEFAULT_REPOSITORY: "",
          TOWN_LOG_LEVEL: "warn",
          TOWN_STORAGE_LOOP_BYTES: String(768 * MiB),
          TOWN_PODMAN_SOCKET: podman.socketPath,
          TOWN_NETWORK: "off",
          // Prometheus outlives a killed daemon (the next one adopts it): this test runs none.
          TOWN_MONITORING: "off",
        },
      },
    );
    url = `http://127.0.0.1:${listenPort}`;
    await signIn();
  }
  async function killChild(): Promise<void> {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    await exited;
  }

  before(async () => {
    await preparePodmanHost();
    scratch = await mkdtemp(join(tmpdir(), "town-lifecycle-"));
    dataDir = join(scratch, "data");
    ({ podman, service } = await startTestPodman(scratch));
    server = await serveSeededSite(join(scratch, "git"), sitePackage);
    daemon = await startPodmanDaemon(scratch, podman, {
      apps: { storageLoopBytes: 768 * MiB },
    });
    url = daemon.url;
    await setupAdmin(daemon, PASSWORD);
    await signIn();
    await admin.addRepository({ name: repo, url: server.url("apps.git") });
    port = await freePort();
  });

  after(async () => {
    try {
      await daemon?.stop();
      await killChild();
      await server?.close();
      await removeAppLeftovers(podman, [`${repo}/site`]);
    } finally {
      stopTestPodman({ podman, service });
      const { root } = storageLocations(dataDir);
      if (await mountedAt(root)) await unmount(root);
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("installs with live progress, seeding volumes from git and from the image", async () => {
    const install = await town("app", "install", `${repo}/site@1.0`, "--set", `port=${port}`);
    assert.equal(install.code, 0, install.stderr);
    assert.match(install.stderr, /… create volume pkg\..*\.site\.www/);
    assert.match(install.stderr, /… seed volume www from http:\/\//);
    assert.match(install.stderr, /… seed volume conf from localhost\/town\/busybox:latest:\/etc/);
    assert.match(install.stderr, /… start container town-.*-site/);
    assert.equal(
      await until(
        "the page",
        15_000,
        () => page("index.html"),
        () => true,
      ),
      "seeded from git\n",
    );
    const conf = await readdir(volumeDir(`pkg.${repo}.site.conf`));
    assert.ok(conf.includes("passwd"), conf.join(", "));
    // The short-lived container the directory was read from is gone.
    const names = (await podman.listContainers({})).map((c) => c.name);
    assert.deepEqual(
      names.filter((name) => name.startsWith("town-seed-")),
      [],
    );
  });

  it("refuses writes past the volume's quota inside the container", async () => {
    const result = await podman.exec(`town-${repo}--site`, [
      "/bin/sh",
      "-c",
      "dd if=/dev/zero of=/www/big bs=1M count=32",
    ]);
    assert.notEqual(result.exitCode, 0);
    assert.match(result.stderr, /quota/i);
    await podman.exec(`town-${repo}--site`, ["/bin/rm", "-f", "/www/big"]);
  });

  it("stops and starts the app, and the daemon keeps it stopped", async () => {
    const stop = await town("app", "stop", `${repo}/site`);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /\(stopped\)/);
    assert.match(stop.stdout, /container town-.*-site: exited/);
    const start = await town("app", "start", `${repo}/site`);
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout, /container town-.*-site: running/);
  });

  it("upgrades keeping data and answers, then runs post_update in the container", async () => {
    await podman.exec(`town-${repo}--site`, ["/bin/sh", "-c", "echo mine > /www/mine.txt"]);
    const upgrade = await town("app", "upgrade", `${repo}/site`);
    assert.equal(upgrade.code, 0, upgrade.stderr);
    assert.match(upgrade.stderr, /… run post_update "echo upgraded to 2\.0/);
    const view = await admin.app(repo, "site");
    assert.equal(view.version, "2.0");
    assert.equal(view.postUpdatePending, false);
    assert.deepEqual(
      view.ports.map((p) => p.host),
      [port],
    );
    assert.equal(
      await readFile(join(volumeDir(`pkg.${repo}.site.www`), "upgraded.txt"), "utf8"),
      "upgraded to 2.0\n",
    );
    assert.equal(
      await until(
        "the page",
        15_000,
        () => page("mine.txt"),
        () => true,
      ),
      "mine\n",
    );
  });

  it("uninstall keeps the data; a reinstall previews and takes it back", async () => {
    const uninstall = await town("app", "uninstall", `${repo}/site`);
    assert.equal(uninstall.code, 0, uninstall.stderr);
    const preview = await town("app", "install", `${repo}/site`, "--preview");
    assert.equal(preview.code, 0, preview.stderr);
    assert.match(
      preview.stdout,
      /volume site\/www at \/www, 8\.0 MiB: taken back from uninstalled\./,
    );
    assert.match(preview.stdout, /disk: up to 0 B in quotas/);
    // The port answered last time is offered again.
    const reinstall = await town("app", "install", `${repo}/site`);
    assert.equal(reinstall.code, 0, reinstall.stderr);
    assert.match(reinstall.stderr, /… reattach volume pkg\..*\.site\.www from uninstalled\./);
    assert.doesNotMatch(reinstall.stderr, /seed volume/);
    assert.equal(
      await until(
        "the page",
        15_000,
        () => page("mine.txt"),
        () => true,
      ),
      "mine\n",
    );
  });

  it("purge deletes the volumes", async () => {
    const purge = await town("app", "uninstall", `${repo}/site`, "--purge");
    assert.equal(purge.code, 0, purge.stderr);
    const left = (await readdir(join(dataDir, "storage/volumes"))).filter((name) =>
      name.includes(`.${repo}.site.`),
    );
    assert.deepEqual(left, []);
  });

  it("converges after the daemon is killed with SIGKILL in the middle of an install", async () => {
    await daemon?.stop();
    daemon = undefined;
    const listenPort = await freePort();
    await startChild(listenPort);
    // Repositories are read after boot: an install before that is refused, not interrupted.
    await until(
      "the repository to be read",
      30_000,
      () => admin.repositories(),
      (page) => page.items.some((r) => r.name === repo && !r.status.loading),
    );
    // Fired and not awaited: the daemon dies under it, at some step of the install.
    void admin
      .installApp({ repo, name: "site", version: "1.0", answers: { port: String(port) } })
      .catch(() => undefined);
    await sleep(300 + Math.floor(Math.random() * 1200));
    await killChild();
    await startChild(listenPort);
    const converged = await until(
      "the app to converge",
      60_000,
      () => admin.app(repo, "site"),
      (app: AppView) => app.containers.every((c) => c.state === "running"),
    );
    assert.equal(converged.lastError, null);
    assert.equal(
      await until(
        "the page",
        15_000,
        () => page("index.html"),
        () => true,
      ),
      "seeded from git\n",
    );
    const containers = (await podman.listContainers({})).map((c) => c.name);
    assert.deepEqual(
      containers.filter((name) => name.startsWith("town-seed-") || name.includes(`-${repo}-`)),
      [`town-${repo}--site`],
    );
    // Apps keep running while the daemon is down.
    await killChild();
    assert.equal(await page("index.html"), "seeded from git\n");
  });
});
