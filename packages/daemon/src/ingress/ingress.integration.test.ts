/**
 * The ingress against the real HAProxy (Debian's 2.6) and Caddy (2.6.2) on
 * free high ports with a temporary data directory: an app on loopback
 * reached by its name over HTTPS with the downloaded local CA root, static
 * sites (types, index files, the site's 404 page, compression,
 * revalidation), the HTTP redirect, a config HAProxy refuses while the old
 * one keeps serving, restart after kill -9, adoption by a second
 * supervisor, Caddy's metrics on a loopback port. The real ACME exchange cannot run here
 * (no public CA reachable, no public name): only that Caddy accepts the
 * generated ACME configuration is tested.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { gunzipSync } from "node:zlib";
import { TownError } from "@townos/format";
import { eventually } from "../../test/net.js";
import { freePorts } from "../../test/runtime/podman-host.js";
import { bootstrapConfig, compileIngress, type IngressInput } from "./config.js";
import { Ingress, type IngressServiceStatus } from "./ingress.js";
import { CaddySupervisor } from "./supervisor.js";

const caddyMissing =
  spawnSync("caddy", ["version"]).error === undefined ? false : "caddy is not installed";
const haproxyMissing =
  spawnSync("haproxy", ["-v"]).error === undefined ? false : "haproxy is not installed";
const curlMissing = spawnSync("curl", ["--version"]).error === undefined ? false : "no curl";

interface CurlResult {
  status: number;
  headers: string;
  body: string;
}

function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    execFile("curl", ["-sS", "--max-time", "10", "-D", "-", ...args], (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`curl ${args.join(" ")}: ${stderr}`));
        return;
      }
      const split = stdout.indexOf("\r\n\r\n");
      const headers = stdout.slice(0, split);
      resolve({
        status: Number(/^HTTP\/[0-9.]+ (\d+)/.exec(headers)?.[1] ?? 0),
        headers,
        body: stdout.slice(split + 4),
      });
    });
  });
}

/** Caddy processes running in this test's ingress directory (Caddy names its files through it). */
async function caddyProcesses(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const command = (await readFile(`/proc/${entry}/cmdline`, "utf8")).split("\0");
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const cwd = await readlink(`/proc/${entry}/cwd`);
      if (command[0] === "caddy" && cwd === dir && !/^\d+ \(.*\) Z/s.test(stat))
        pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** HAProxy masters and workers started with this config file. */
async function haproxyProcesses(configFile: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const command = (await readFile(`/proc/${entry}/cmdline`, "utf8")).split("\0");
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      if (command[0] === "haproxy" && command.includes(configFile) && !/^\d+ \(.*\) Z/s.test(stat))
        pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** The uid of one of Debian's system users (`caddy`, `haproxy`). */
function uidOf(user = "caddy"): number {
  return Number(execFileSync("id", ["-u", user], { encoding: "utf8" }).trim());
}

/** Waits until something answers on the admin socket `unix/PATH`. */
async function eventuallyAnswers(adminAddress: string): Promise<void> {
  const socketPath = adminAddress.slice("unix/".length);
  for (let i = 0; i < 100; i++) {
    const answered = await new Promise<boolean>((resolve) => {
      const request = http.request(
        { socketPath, path: "/config/", headers: { host: "" }, setHost: false },
        (response) => {
          response.resume();
          resolve(response.statusCode === 200);
        },
      );
      request.once("error", () => {
        resolve(false);
      });
      request.end();
    });
    if (answered) return;
    await sleep(100);
  }
  throw new Error(`nothing answers on ${adminAddress}`);
}

/** The status of the first answer within 3 s; curl's error after that. */
async function eventuallyServes(request: () => Promise<CurlResult>): Promise<number> {
  for (let i = 0; ; i++) {
    try {
      return (await request()).status;
    } catch (error) {
      if (i >= 30) throw error;
      await sleep(100);
    }
  }
}

async function until(
  supervisor: Ingress,
  check: (status: IngressServiceStatus) => boolean,
  what: string,
): Promise<IngressServiceStatus> {
  for (let i = 0; i < 150; i++) {
    const status = supervisor.status();
    if (check(status)) return status;
    await sleep(100);
  }
  throw new Error(
    `${what} did not happen: ${JSON.stringify([supervisor.status(), supervisor.haproxy.status(), supervisor.caddy.status()])}`,
  );
}

describe(
  "ingress with the real HAProxy and Caddy",
  { skip: caddyMissing || haproxyMissing || curlMissing },
  () => {
    let dir = "";
    let app: http.Server;
    let blocker: http.Server;
    let appPort = 0;
    let blockedPort = 0;
    let metricsPort = 0;
    let input: IngressInput;
    let supervisor: Ingress;
    let rootPem = "";
    const host = "app.default.home";
    const haproxyConfig = (): string => join(supervisor.haproxy.dir, "haproxy.cfg");
    const url = (path = "/"): string => `https://${host}:${input.httpsPort}${path}`;
    const viaCaddy = (path = "/"): Promise<CurlResult> =>
      curl(["--cacert", rootPem, "--resolve", `${host}:${input.httpsPort}:127.0.0.1`, url(path)]);

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "town-ingress-it-"));
      // The app: echoes what reached it.
      app = http.createServer((request, response) => {
        response.setHeader("content-type", "application/json");
        response.end(
          JSON.stringify({
            app: "hello",
            path: request.url,
            proto: request.headers["x-forwarded-proto"],
            forwardedHost: request.headers["x-forwarded-host"],
            forwardedFor: request.headers["x-forwarded-for"],
          }),
        );
      });
      await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
      appPort = (app.address() as { port: number }).port;
      // Holds a port so that a config using it is refused by Caddy (not by our validation).
      blocker = http.createServer();
      await new Promise<void>((resolve) => blocker.listen(0, resolve));
      blockedPort = (blocker.address() as { port: number }).port;

      supervisor = new Ingress({
        dataDir: join(dir, "ingress"),
        pollIntervalMs: 200,
        certificateCheckMs: 200,
        backoffInitialMs: 200,
      });
      const [httpsPort = 0, httpPort = 0, sitesPort = 0, acmePort = 0, metrics = 0] =
        await freePorts(5);
      metricsPort = metrics;
      input = {
        routes: [{ host, upstream: `127.0.0.1:${appPort}` }],
        publicDomains: [],
        sites: [],
        publicSites: [],
        dashboard: { host: "town.home", upstream: `127.0.0.1:${appPort}` },
        httpsPort,
        httpPort,
        sitesAddress: `127.0.0.1:${sitesPort}`,
        acmeChallengeAddress: `127.0.0.1:${acmePort}`,
        ...supervisor.locations(),
      };
    });

    after(async () => {
      await supervisor.stop();
      assert.deepEqual(await caddyProcesses(supervisor.paths.dir), []);
      assert.deepEqual(await haproxyProcesses(haproxyConfig()), []);
      await new Promise((resolve) => app.close(resolve));
      await new Promise((resolve) => blocker.close(resolve));
      await rm(dir, { recursive: true, force: true });
    });

    it("starts Caddy, then HAProxy with the first config, and loads each config once", async () => {
      const started = await supervisor.start();
      // HAProxy has nothing to serve before the first config.
      assert.equal(started.certificates.state, "running", JSON.stringify(started));
      assert.equal(started.pid, null);
      const compiled = compileIngress(input);
      assert.equal(await supervisor.apply(compiled), "loaded");
      assert.equal(await supervisor.apply(compileIngress(input)), "unchanged");
      const status = supervisor.status();
      assert.equal(status.state, "running", JSON.stringify(status));
      // Caddy made the local names' certificates; HAProxy serves them.
      assert.equal(status.certificates.served, 2);
      assert.equal(status.configCurrent, true);
      assert.equal(status.appliedHash, compiled.hash);
      assert.equal(status.httpsPort, input.httpsPort);
      assert.equal(status.lastError, null);
      // A root daemon never runs Caddy as root: Debian's `caddy` user, with only CAP_NET_BIND_SERVICE.
      if (process.getuid?.() === 0) {
        const proc = await readFile(`/proc/${String(status.certificates.pid)}/status`, "utf8");
        const uid = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(proc);
        assert.ok(uid, proc);
        assert.deepEqual(uid.slice(1).map(Number), Array(4).fill(uidOf()));
        assert.notEqual(uidOf(), 0);
        assert.equal(/^CapEff:\s+([0-9a-f]+)/m.exec(proc)?.[1], "0000000000000400");
        assert.equal(status.certificates.user, "caddy");
        // HAProxy's workers, which parse the requests, are not root either.
        assert.equal(status.user, "haproxy");
        const workers = (await haproxyProcesses(haproxyConfig())).filter(
          (pid) => pid !== status.pid,
        );
        assert.ok(workers.length > 0);
        for (const worker of workers) {
          const workerStatus = await readFile(`/proc/${worker}/status`, "utf8");
          assert.equal(Number(/^Uid:\s+(\d+)/m.exec(workerStatus)?.[1]), uidOf("haproxy"));
        }
        // Its storage (CA keys, certificates) is its own; the data directory above stays closed.
        assert.equal((await stat(supervisor.paths.storageDir)).uid, uidOf());
        assert.equal((await stat(dir)).mode & 0o777, 0o700);
      }
      // What Caddy starts with after a restart is what it accepted last.
      assert.deepEqual(
        JSON.parse(await readFile(supervisor.paths.configFile, "utf8")),
        compiled.config,
      );
    });

    it("serves the app by its name over HTTPS, trusted through the local CA's root", async () => {
      const pem = await supervisor.rootCertificate();
      assert.match(pem, /^-----BEGIN CERTIFICATE-----/);
      // The same root Caddy keeps in its storage, which survives restarts.
      assert.equal(
        pem.trim(),
        (
          await readFile(
            join(supervisor.paths.storageDir, "pki/authorities/local/root.crt"),
            "utf8",
          )
        ).trim(),
      );
      rootPem = join(dir, "root.pem");
      await writeFile(rootPem, pem);
      const answer = await viaCaddy("/some/path?x=1");
      assert.equal(answer.status, 200, answer.headers);
      const echoed = JSON.parse(answer.body) as Record<string, string>;
      assert.equal(echoed["app"], "hello");
      assert.equal(echoed["path"], "/some/path?x=1");
      assert.equal(echoed["proto"], "https");
      assert.equal(echoed["forwardedHost"], `${host}:${input.httpsPort}`);
      assert.equal(echoed["forwardedFor"], "127.0.0.1");
      // The dashboard's fixed name, on the same CA.
      const dashboard = await curl([
        "--cacert",
        rootPem,
        "--resolve",
        `town.home:${input.httpsPort}:127.0.0.1`,
        `https://town.home:${input.httpsPort}/`,
      ]);
      assert.equal(dashboard.status, 200);
    });

    it("serves static sites from the sites directory, with their 404 page, compressed and revalidated", async () => {
      // What a deploy makes: root's directories (0755) and files (0644), read by Caddy's user.
      const sites = supervisor.paths.sitesDir;
      assert.equal((await stat(sites)).mode & 0o7777, 0o755);
      const files: Record<string, string> = {
        "site/v1/index.html": "<!doctype html><title>home</title>v1\n",
        "site/v1/style.css": "body { color: teal }\n",
        "site/v1/big.txt": "a line of text that repeats, and compresses well\n".repeat(420),
        "site/v1/sub/index.html": "<p>sub</p>\n",
        "site/v1/404.html": "<p>no such page here</p>\n",
        "site/v2/index.html": "<p>v2</p>\n",
        "plain/v1/index.html": "<p>plain</p>\n",
      };
      for (const [name, content] of Object.entries(files)) {
        await mkdir(join(sites, name, ".."), { recursive: true, mode: 0o755 });
        await writeFile(join(sites, name), content, { mode: 0o644 });
      }
      const withSites = (root: string): IngressInput => ({
        ...input,
        sites: [
          { host: "site.home", root },
          { host: "plain.home", root: "plain/v1" },
        ],
      });
      const get = (host: string, path: string, ...args: string[]): Promise<CurlResult> =>
        curl([
          "--cacert",
          rootPem,
          "--resolve",
          `${host}:${input.httpsPort}:127.0.0.1`,
          ...args,
          `https://${host}:${input.httpsPort}${path}`,
        ]);
      const header = (answer: CurlResult, name: string): string | undefined =>
        new RegExp(`^${name}: (.*?)\r?$`, "im").exec(answer.headers)?.[1];
      try {
        assert.equal(await supervisor.apply(compileIngress(withSites("site/v1"))), "loaded");
        // The new names' certificates are issued right after the load.
        const home = await eventually("site.home's certificate", () => get("site.home", "/"));
        assert.equal(home.status, 200, home.headers);
        assert.equal(home.body, files["site/v1/index.html"]);
        assert.equal(header(home, "content-type"), "text/html; charset=utf-8");
        assert.equal(header(home, "cache-control"), "public, max-age=0, must-revalidate");
        assert.equal(header(home, "x-content-type-options"), "nosniff");
        const etag = header(home, "etag");
        assert.ok(etag, home.headers);
        assert.ok(header(home, "last-modified"), home.headers);

        const css = await get("site.home", "/style.css");
        assert.equal(css.status, 200);
        assert.equal(header(css, "content-type"), "text/css; charset=utf-8");
        assert.equal(css.body, files["site/v1/style.css"]);
        const sub = await get("site.home", "/sub/");
        assert.equal(sub.status, 200);
        assert.equal(sub.body, files["site/v1/sub/index.html"]);

        // Unchanged: a cheap 304 without the body.
        const again = await get("site.home", "/", "-H", `If-None-Match: ${etag}`);
        assert.equal(again.status, 304);
        assert.equal(again.body, "");

        const missing = await get("site.home", "/no/such/page");
        assert.equal(missing.status, 404);
        assert.equal(missing.body, files["site/v1/404.html"]);
        assert.equal(header(missing, "content-type"), "text/html; charset=utf-8");
        // Revalidating a stored 404 (its ETag is the 404 page's) gets the page again, not an empty 404.
        const stored = header(missing, "etag") ?? "";
        for (const conditional of [`If-None-Match: ${stored}`, "Range: bytes=0-3"]) {
          const revalidated = await get("site.home", "/no/such/page", "-H", conditional);
          assert.equal(revalidated.status, 404, conditional);
          assert.equal(revalidated.body, files["site/v1/404.html"], conditional);
        }
        // A site without a 404.html: Caddy's plain 404.
        await eventually("plain.home's certificate", () => get("plain.home", "/"));
        const plain = await get("plain.home", "/missing.html");
        assert.equal(plain.status, 404);
        assert.equal(plain.body, "");

        const gzipped = join(dir, "big.txt.gz");
        const big = await get(
          "site.home",
          "/big.txt",
          "-H",
          "Accept-Encoding: gzip",
          "-o",
          gzipped,
        );
        assert.equal(big.status, 200);
        assert.equal(header(big, "content-encoding"), "gzip");
        const compressed = await readFile(gzipped);
        assert.ok(compressed.length < 2_000, `${compressed.length} bytes`);
        assert.equal(gunzipSync(compressed).toString(), files["site/v1/big.txt"]);
        // Small files are not worth it.
        const small = await get("site.home", "/style.css", "-H", "Accept-Encoding: gzip");
        assert.equal(header(small, "content-encoding"), undefined);

        // The swap: the same name serves the other version at once.
        assert.equal(await supervisor.apply(compileIngress(withSites("site/v2"))), "loaded");
        const swapped = await get("site.home", "/");
        assert.equal(swapped.status, 200);
        assert.equal(swapped.body, files["site/v2/index.html"]);
        // v2 has no 404.html: its misses are plain.
        assert.equal((await get("site.home", "/no/such/page")).body, "");
      } finally {
        await supervisor.apply(compileIngress(input));
      }
    });

    it("redirects plain HTTP to HTTPS", async () => {
      const answer = await curl([
        "-H",
        `Host: ${host}`,
        `http://127.0.0.1:${input.httpPort}/a?b=c`,
      ]);
      assert.equal(answer.status, 308);
      assert.match(answer.headers, new RegExp(`^location: ${url("/a\\?b=c")}\r?$`, "im"));
    });

    it("keeps the old config serving when HAProxy refuses a new one", async () => {
      const good = compileIngress(input);
      // Passes our validation; HAProxy cannot bind the port another server holds.
      const refused = compileIngress({ ...input, httpPort: blockedPort });
      const error = await supervisor.apply(refused).then(
        () => undefined,
        (failure: unknown) => failure,
      );
      assert.ok(error instanceof TownError, String(error));
      assert.match(error.message, /^haproxy: reload refused: .*Address already in use/);
      const status = supervisor.status();
      assert.equal(status.configCurrent, false);
      assert.equal(status.appliedHash, good.hash);
      assert.match(status.lastError?.message ?? "", /Address already in use/);
      // The old worker kept serving; its files are back for the next restart.
      assert.equal(await eventuallyServes(viaCaddy), 200);
      assert.equal(await readFile(haproxyConfig(), "utf8"), good.haproxy["haproxy.cfg"]);
      // Back to the good one: nothing to load, the error is gone.
      assert.equal(await supervisor.apply(good), "unchanged");
      assert.equal(supervisor.status().lastError, null);
      assert.equal(supervisor.status().configCurrent, true);
    });

    it("restarts HAProxy and Caddy after kill -9 and serves the routes again", async () => {
      const before = supervisor.status();
      assert.ok(before.pid !== null && before.certificates.pid !== null);
      process.kill(before.pid, "SIGKILL");
      process.kill(before.certificates.pid, "SIGKILL");
      const after = await until(
        supervisor,
        (status) =>
          status.state === "running" &&
          status.pid !== before.pid &&
          status.certificates.state === "running" &&
          status.certificates.pid !== before.certificates.pid &&
          status.configCurrent &&
          status.restarts === before.restarts + 2,
        "a restart",
      );
      assert.ok(after.pid !== null);
      const answer = await eventually("HAProxy's new worker", async () => {
        const got = await viaCaddy();
        assert.equal(got.status, 200);
        return got;
      });
      assert.equal(answer.status, 200);
      assert.deepEqual(await caddyProcesses(supervisor.paths.dir), [after.certificates.pid]);
      assert.ok((await haproxyProcesses(haproxyConfig())).includes(after.pid));
    });

    it("a second supervisor adopts the running HAProxy and Caddy instead of starting others", async () => {
      const running = supervisor.status();
      const second = new Ingress({ dataDir: supervisor.paths.dir, pollIntervalMs: 200 });
      try {
        const adopted = await second.start();
        assert.equal(adopted.state, "adopted");
        assert.equal(adopted.pid, running.pid);
        assert.equal(adopted.certificates.pid, running.certificates.pid);
        // The files on disk are what runs: nothing to reload.
        assert.equal(await second.apply(compileIngress(input)), "unchanged");
        assert.equal(second.status().configCurrent, true);
        assert.deepEqual(await caddyProcesses(supervisor.paths.dir), [running.certificates.pid]);
      } finally {
        second.close();
      }
    });

    it("Caddy accepts the generated ACME configuration for public names", async () => {
      // The exchange itself fails here (no public CA reachable); Caddy retries it in the background.
      const withPublic = compileIngress({
        ...input,
        publicDomains: [{ host: "town-test.example.org", upstream: `127.0.0.1:${appPort}` }],
      });
      assert.equal(await supervisor.apply(withPublic), "loaded");
      assert.equal((await viaCaddy()).status, 200);
      assert.equal(await supervisor.apply(compileIngress(input)), "loaded");
    });

    it("serves Caddy's metrics on a loopback port for Prometheus", async () => {
      const metricsAddress = `127.0.0.1:${metricsPort}`;
      // A site (its files from the sites test): Caddy serves those, and counts them.
      const sites = [{ host: "plain.home", root: "plain/v1" }];
      assert.equal(
        await supervisor.apply(compileIngress({ ...input, sites, metricsAddress })),
        "loaded",
      );
      try {
        const page = await curl([
          "--cacert",
          rootPem,
          "--resolve",
          `plain.home:${input.httpsPort}:127.0.0.1`,
          `https://plain.home:${input.httpsPort}/`,
        ]);
        assert.equal(page.status, 200);
        const answer = await curl([`http://${metricsAddress}/metrics`]);
        assert.equal(answer.status, 200, answer.headers);
        assert.match(answer.body, /^caddy_http_requests_total\{[^}]*server="sites"[^}]*\} [1-9]/m);
      } finally {
        assert.equal(await supervisor.apply(compileIngress(input)), "loaded");
      }
    });

    it(
      "adopts a Caddy an earlier version started as root, and restarts it unprivileged",
      {
        skip: process.getuid?.() === 0 ? false : "needs root",
      },
      async () => {
        await supervisor.stop();
        const old = join(dir, "old");
        const paths = new CaddySupervisor({ dataDir: old }).paths;
        await mkdir(old, { mode: 0o700 });
        // What the earlier version ran: root, its files named by their absolute paths.
        await writeFile(
          paths.configFile,
          JSON.stringify(bootstrapConfig(paths.adminAddress, paths.storageDir)),
        );
        const root = spawn(
          "caddy",
          ["run", "--config", paths.configFile, "--pidfile", paths.pidFile],
          { cwd: old, detached: true, stdio: "ignore" },
        );
        root.unref();
        const adopter = new Ingress({ dataDir: old, pollIntervalMs: 200 });
        try {
          await eventuallyAnswers(paths.adminAddress);
          const started = (await adopter.start()).certificates;
          assert.notEqual(started.pid, root.pid);
          assert.equal(started.user, "caddy");
          const compiled = compileIngress({ ...input, ...adopter.locations() });
          assert.equal(await adopter.apply(compiled), "loaded");
          // Its own storage, so its own CA.
          const oldRoot = join(old, "root.pem");
          await writeFile(oldRoot, await adopter.rootCertificate());
          // Its certificate is issued in the background right after the load.
          const answer = await eventually("the new Caddy's certificate", () =>
            curl(["--cacert", oldRoot, "--resolve", `${host}:${input.httpsPort}:127.0.0.1`, url()]),
          );
          assert.equal(answer.status, 200);
          assert.deepEqual(await caddyProcesses(old), [started.pid]);
        } finally {
          await adopter.stop();
          root.kill("SIGKILL");
        }
      },
    );
  },
);
