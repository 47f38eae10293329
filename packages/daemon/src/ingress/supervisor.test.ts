import assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { compileIngress } from "./config.js";
import { CaddySupervisor } from "./supervisor.js";

// Programs that are not Caddy: the supervisor must report, back off and keep trying.
describe("CaddySupervisor when Caddy cannot start", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "town-ingress-sup-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reports a missing program, keeps the desired config pending and ends up failed", async () => {
    const supervisor = new CaddySupervisor({
      dataDir: join(dir, "missing"),
      caddyPath: join(dir, "no-such-caddy"),
      pollIntervalMs: 10,
      backoffInitialMs: 1,
      backoffMaxMs: 5,
    });
    try {
      const first = await supervisor.start();
      assert.equal(first.state, "restarting");
      assert.equal(first.lastError?.code, "unavailable");
      // Run directly, or (as root) through setpriv, which then fails to run it.
      assert.match(
        first.lastError.message,
        /no-such-caddy (.*ENOENT|exited with code \d+).* before answering/,
      );
      const compiled = compileIngress({
        routes: [],
        publicDomains: [],
        sites: [],
        publicSites: [],
        sitesRoot: supervisor.paths.caddySitesDir,
        dashboard: { host: "town.home", upstream: "127.0.0.1:5309" },
        httpsPort: 8443,
        httpPort: 8080,
        sitesAddress: "127.0.0.1:9181",
        acmeChallengeAddress: "127.0.0.1:9182",
        haproxyDir: join(dir, "haproxy"),
        adminAddress: supervisor.caddyAdminAddress,
        storageDir: supervisor.paths.caddyStorageDir,
      });
      assert.equal(await supervisor.apply(compiled), "pending");
      for (let i = 0; i < 100 && supervisor.status().state !== "failed"; i++) await sleep(10);
      const status = supervisor.status();
      assert.equal(status.state, "failed");
      assert.equal(status.desiredHash, compiled.caddyHash);
      assert.equal(status.configCurrent, false);
      assert.equal(status.httpsPort, 8443);
    } finally {
      supervisor.close();
    }
  });

  it("reports a program that exits at once, with its output", async () => {
    const supervisor = new CaddySupervisor({
      dataDir: join(dir, "false"),
      caddyPath: "/bin/false",
      pollIntervalMs: 1000,
    });
    try {
      const status = await supervisor.start();
      assert.equal(status.state, "restarting");
      assert.match(
        status.lastError?.message ?? "",
        /\/bin\/false exited with code 1 before answering/,
      );
    } finally {
      supervisor.close();
    }
  });

  it("makes the sites directory the daemon's, readable by all, and refuses a link in its place", async () => {
    const caddyPath = join(dir, "no-such-caddy");
    const made = new CaddySupervisor({ dataDir: join(dir, "sites"), caddyPath });
    try {
      await made.start();
      const info = await lstat(made.paths.sitesDir);
      assert.ok(info.isDirectory());
      assert.equal(info.mode & 0o7777, 0o755);
      assert.equal(info.uid, process.getuid?.());
      assert.equal(made.paths.caddySitesDir, "/proc/self/cwd/sites");
    } finally {
      made.close();
    }
    const linked = new CaddySupervisor({ dataDir: join(dir, "linked"), caddyPath });
    await mkdir(linked.paths.dir, { recursive: true });
    await symlink(dir, linked.paths.sitesDir);
    try {
      await assert.rejects(linked.start(), /is not a directory of the daemon's/);
    } finally {
      linked.close();
    }
  });

  it("refuses a config for another admin endpoint", async () => {
    const supervisor = new CaddySupervisor({ dataDir: join(dir, "other") });
    const compiled = compileIngress({
      routes: [],
      publicDomains: [],
      sites: [],
      publicSites: [],
      sitesRoot: supervisor.paths.caddySitesDir,
      dashboard: { host: "town.home", upstream: "127.0.0.1:5309" },
      httpsPort: 8443,
      httpPort: 8080,
      sitesAddress: "127.0.0.1:9181",
      acmeChallengeAddress: "127.0.0.1:9182",
      haproxyDir: join(dir, "haproxy"),
      adminAddress: "127.0.0.1:2019",
      storageDir: supervisor.paths.caddyStorageDir,
    });
    await assert.rejects(supervisor.apply(compiled), /not the supervisor's unix\//);
  });
});
