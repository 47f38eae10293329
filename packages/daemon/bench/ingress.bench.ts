/**
 * Ingress overhead: requests/s and p99 of a small HTTP app (a Node server in
 * a child process) measured with wrk directly on its port and through Caddy
 * over HTTPS, in the same run, side by side, for two responses: a 19-byte
 * hello (the proxy's cost alone) and a 12 KB HTML page built per request (a
 * small dynamic page), and the same 12 KB as a file of a page (static site)
 * served by Caddy itself. Also Caddy's CPU time per request. Target:
 * through Caddy at least 0.8× the direct throughput.
 *
 * wrk sends the URL's host as TLS SNI and cannot be pointed at a name without
 * DNS, so it connects to 127.0.0.1 with a Host header, and Caddy is told to
 * also hold a local-CA certificate for 127.0.0.1 (bench only): the
 * handshake and the proxying are those of any app's name.
 * Run: npm run bench (or node --conditions=source --import tsx packages/daemon/bench/ingress.bench.ts).
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { compileIngress, configHash, type JsonObject } from "../src/ingress/config.js";
import { CaddySupervisor } from "../src/ingress/supervisor.js";
import { freePort } from "../test/runtime/podman-host.js";

const CONNECTIONS = Number(process.env["BENCH_CLIENTS"] ?? 50);
const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 10);
const HOST = "app.default.home";
/** A page (static site) on the same ingress: a 12 KB HTML file served by Caddy's file_server. */
const SITE_HOST = "site.home";
const SITE_ROOT = "bench/v1";

for (const program of ["caddy", "wrk"]) {
  if (spawnSync(program, ["--version"]).error !== undefined) {
    console.log(`ingress bench skipped: ${program} is not installed`);
    process.exit(0);
  }
}

const scratch = await mkdtemp(join(tmpdir(), "town-ingress-bench-"));
// "/" answers a hello; "/page" builds a 12 KB HTML table on every request.
const appSource = `
const rows = Array.from({ length: 200 }, (_, i) => ({ id: i, name: "item <" + i + ">", price: (i * 1.37).toFixed(2) }));
const escape = (text) => text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const server = require("node:http").createServer((request, response) => {
  if (request.url === "/page") {
    response.setHeader("content-type", "text/html");
    response.end("<!doctype html><table>" + rows.map((r) => "<tr><td>" + r.id + "</td><td>" + escape(r.name) + "</td><td>" + r.price + "</td></tr>").join("") + "</table>");
  } else response.end("hello from the app\\n");
});
server.keepAliveTimeout = 120000;
server.listen(0, "127.0.0.1", () => console.log(server.address().port));`;
const app = spawn(process.execPath, ["-e", appSource], { stdio: ["ignore", "pipe", "inherit"] });
const supervisor = new CaddySupervisor({ dataDir: join(scratch, "ingress") });

try {
  const appPort = await new Promise<number>((resolve, reject) => {
    app.stdout.once("data", (chunk: Buffer) => {
      resolve(Number(chunk.toString().trim()));
    });
    app.once("exit", () => {
      reject(new Error("the app did not start"));
    });
  });
  const httpsPort = await freePort();
  const compiled = compileIngress({
    routes: [{ host: HOST, upstream: `127.0.0.1:${appPort}` }],
    publicDomains: [],
    sites: [{ host: SITE_HOST, root: SITE_ROOT }],
    publicSites: [],
    sitesRoot: supervisor.paths.caddySitesDir,
    dashboard: { host: "town.home", upstream: `127.0.0.1:${appPort}` },
    httpsPort,
    httpPort: await freePort(),
    adminAddress: supervisor.caddyAdminAddress,
    storageDir: supervisor.paths.caddyStorageDir,
  });
  const tls = (compiled.config["apps"] as JsonObject)["tls"] as JsonObject;
  tls["certificates"] = { automate: ["127.0.0.1"] };
  const [localPolicy] = (tls["automation"] as JsonObject)["policies"] as { subjects: string[] }[];
  localPolicy?.subjects.push("127.0.0.1");
  // And the handshake naming it (wrk's SNI) is let in from loopback, as a local name's is.
  const https = ((compiled.config["apps"] as JsonObject)["http"] as JsonObject)[
    "servers"
  ] as JsonObject;
  const [lanPolicy] = (https["https"] as JsonObject)["tls_connection_policies"] as {
    match: { sni: string[] };
  }[];
  lanPolicy?.match.sni.push("127.0.0.1");
  const status = await supervisor.start();
  if (status.state !== "running" && status.state !== "adopted")
    throw new Error(`Caddy did not start: ${JSON.stringify(status)}`);
  const siteDir = join(supervisor.paths.sitesDir, ...SITE_ROOT.split("/"));
  await mkdir(siteDir, { recursive: true, mode: 0o755 });
  // The same 12 KB the app builds per request, as a file (Caddy's user reads it: 0644).
  await writeFile(
    join(siteDir, "page.html"),
    await (await fetch(`http://127.0.0.1:${appPort}/page`)).text(),
    { mode: 0o644 },
  );
  await supervisor.apply({ ...compiled, hash: configHash(compiled.config) });

  const caddyPid = supervisor.status().pid;
  const direct = `http://127.0.0.1:${appPort}`;
  const proxied = `https://127.0.0.1:${httpsPort}`;
  // Unmeasured rounds: connections, certificates and JIT warm.
  await wrk(`${direct}/page`, 2);
  await wrk(`${proxied}/page`, 2);

  console.log(
    `ingress: ${CONNECTIONS} connections, ${SECONDS} s per run (wrk, keep-alive; load, Caddy and app share ${availableParallelism()} CPUs; load average ${loadavg()[0]?.toFixed(1) ?? "?"})`,
  );
  console.log(`                                  requests/s    p50 ms    p99 ms`);
  for (const [label, path] of [
    ["hello (19 B)", "/"],
    ["page (12 KB)", "/page"],
  ] as const) {
    const plain = await wrk(`${direct}${path}`, SECONDS);
    const cpuBefore = caddyPid === null ? 0 : await cpuSeconds(caddyPid);
    const viaCaddy = await wrk(`${proxied}${path}`, SECONDS);
    const cpu = caddyPid === null ? NaN : (await cpuSeconds(caddyPid)) - cpuBefore;
    console.log(row(`${label} direct       `, plain));
    console.log(row(`${label} through Caddy`, viaCaddy));
    console.log(
      `  ${label} ratio ${(viaCaddy.rps / plain.rps).toFixed(2)}× (target ≥ 0.80×); Caddy CPU ${((cpu / viaCaddy.requests) * 1e6).toFixed(0)} µs per request`,
    );
  }
  await wrk(`${proxied}/page.html`, 2, SITE_HOST);
  const cpuBefore = caddyPid === null ? 0 : await cpuSeconds(caddyPid);
  const site = await wrk(`${proxied}/page.html`, SECONDS, SITE_HOST);
  const cpu = caddyPid === null ? NaN : (await cpuSeconds(caddyPid)) - cpuBefore;
  console.log(row("static file (12 KB), Caddy", site));
  console.log(
    `  static file: Caddy CPU ${((cpu / site.requests) * 1e6).toFixed(0)} µs per request`,
  );
} finally {
  await supervisor.stop();
  app.kill("SIGTERM");
  await rm(scratch, { recursive: true, force: true });
}

interface LoadResult {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
}

async function wrk(url: string, seconds: number, host = HOST): Promise<LoadResult> {
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      "wrk",
      ["-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, "--latency", "-H", `Host: ${host}`, url],
      (error, stdout) => {
        if (error) reject(new Error(`wrk failed: ${error.message}`));
        else resolve(stdout);
      },
    );
  });
  if (/Non-2xx|Socket errors/.test(output)) throw new Error(`wrk saw failures:\n${output}`);
  const ms = (label: string): number => {
    const match = new RegExp(`^\\s*${label}\\s+([0-9.]+)(us|ms|s)$`, "m").exec(output);
    const value = Number(match?.[1] ?? NaN);
    return match?.[2] === "us" ? value / 1000 : match?.[2] === "s" ? value * 1000 : value;
  };
  return {
    requests: Number(/(\d+) requests in/.exec(output)?.[1] ?? NaN),
    rps: Number(/Requests\/sec:\s+([0-9.]+)/.exec(output)?.[1] ?? NaN),
    p50: ms("50%"),
    p99: ms("99%"),
  };
}

function row(label: string, result: LoadResult): string {
  return `  ${label} ${result.rps.toFixed(0).padStart(10)} ${result.p50.toFixed(2).padStart(9)} ${result.p99.toFixed(2).padStart(9)}`;
}

/** User plus system CPU time of a process, from /proc (clock ticks of 1/100 s on Linux). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
