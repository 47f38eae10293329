/**
 * Ingress overhead, side by side in one run against one upstream: requests/s
 * and p99 measured with wrk directly on the upstream's port (plain HTTP), and
 * over HTTPS through our ingress (Caddy as compileIngress configures it, with
 * the metrics server the daemon always asks for), nginx and HAProxy, for two
 * answers: a 19-byte hello (the proxy's cost alone) and a 12 KB HTML page.
 * Also the same 12 KB as a file of a page (static site) served by Caddy
 * itself, and each proxy's CPU time and context switches per request.
 * Target (issue 19): ours ≥ 0.9× the faster of nginx and HAProxy, p99 within
 * 1.5× of the lower of theirs.
 *
 * The upstream is nginx serving both answers from memory and disk (a fast
 * static server, so that it is not what limits the proxies); without nginx, a
 * Node server answering the same bytes. nginx and HAProxy run in their
 * "default-good" configuration: TLS with a self-made ECDSA P-256 certificate
 * for 127.0.0.1 (the key type of Caddy's local CA), upstream keep-alive, no
 * access log, one worker (process or thread) per CPU. They are child
 * processes of the bench with config files in its temp dir, on free loopback
 * ports; absent (bash scripts/setup-bench.sh installs them), they are
 * skipped with a note.
 *
 * wrk sends the URL's host as TLS SNI and cannot be pointed at a name without
 * DNS, so it connects to 127.0.0.1 with a Host header, and Caddy is told to
 * also hold a local-CA certificate for 127.0.0.1 (bench only): the
 * handshake and the proxying are those of any app's name.
 * Run: npm run bench (or node --conditions=source --import tsx packages/daemon/bench/ingress.bench.ts).
 */
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { compileIngress, configHash, type JsonObject } from "../src/ingress/config.js";
import { CaddySupervisor } from "../src/ingress/supervisor.js";
import { freePort } from "../test/runtime/podman-host.js";
import { run } from "./support.js";

const CONNECTIONS = Number(process.env["BENCH_CLIENTS"] ?? 50);
const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 10);
const CPUS = availableParallelism();
const HOST = "app.default.home";
/** A page (static site) on the same ingress: a 12 KB HTML file served by Caddy's file_server. */
const SITE_HOST = "site.home";
const SITE_ROOT = "bench/v1";
const HELLO = "hello from the app\n";
/** 12 KB of HTML: a table of 200 rows. */
const PAGE =
  "<!doctype html><table>" +
  Array.from(
    { length: 200 },
    (_, i) => `<tr><td>${i}</td><td>item &lt;${i}&gt;</td><td>${(i * 1.37).toFixed(2)}</td></tr>`,
  ).join("") +
  "</table>";

for (const program of ["caddy", "wrk"]) {
  if (spawnSync(program, ["--version"]).error !== undefined) {
    console.log(`ingress bench skipped: ${program} is not installed`);
    process.exit(0);
  }
}
const hasNginx = spawnSync("nginx", ["-v"]).error === undefined;
const hasHaproxy = spawnSync("haproxy", ["-v"]).error === undefined;

const scratch = await mkdtemp(join(tmpdir(), "town-ingress-bench-"));
// nginx's workers (nobody) read the page from here; the keys in it are the openssl's 0600.
await chmod(scratch, 0o755);
const children: ChildProcess[] = [];
const supervisor = new CaddySupervisor({ dataDir: join(scratch, "ingress") });

try {
  await writeFile(join(scratch, "page.html"), PAGE);
  const upstream = hasNginx ? await nginxUpstream() : await nodeUpstream();
  const httpsPort = await freePort();
  const compiled = compileIngress({
    routes: [{ host: HOST, upstream: `127.0.0.1:${upstream.port}` }],
    publicDomains: [],
    sites: [{ host: SITE_HOST, root: SITE_ROOT }],
    publicSites: [],
    sitesRoot: supervisor.paths.caddySitesDir,
    dashboard: { host: "town.home", upstream: `127.0.0.1:${upstream.port}` },
    httpsPort,
    httpPort: await freePort(),
    adminAddress: supervisor.caddyAdminAddress,
    storageDir: supervisor.paths.caddyStorageDir,
    // As the daemon runs it (TOWN_INGRESS_METRICS_PORT, default 9180).
    metricsAddress: `127.0.0.1:${await freePort()}`,
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
  // The same 12 KB as a file (Caddy's user reads it: 0644).
  await writeFile(join(siteDir, "page.html"), PAGE, { mode: 0o644 });
  await supervisor.apply({ ...compiled, hash: configHash(compiled.config) });

  const proxies: Proxy[] = [
    { name: "ours (Caddy)", url: `https://127.0.0.1:${httpsPort}`, pid: supervisor.status().pid },
  ];
  if (hasNginx || hasHaproxy) await selfSignedCertificate();
  if (hasNginx) proxies.push(await nginxProxy(upstream.port));
  else console.log("ingress: nginx is not installed, not compared (bash scripts/setup-bench.sh)");
  if (hasHaproxy) proxies.push(await haproxyProxy(upstream.port));
  else console.log("ingress: HAProxy is not installed, not compared (bash scripts/setup-bench.sh)");

  const direct = `http://127.0.0.1:${upstream.port}`;
  // Unmeasured rounds: connections, certificates and JIT warm.
  await wrk(`${direct}/page`, 2);
  for (const proxy of proxies) await wrk(`${proxy.url}/page`, 2);

  console.log(
    `ingress: ${CONNECTIONS} connections, ${SECONDS} s per run (wrk, keep-alive; load, proxy and upstream (${upstream.kind}) share ${CPUS} CPUs; load average ${loadavg()[0]?.toFixed(1) ?? "?"})`,
  );
  console.log(
    `                                   requests/s    p50 ms    p99 ms   CPU µs/req switches/req`,
  );
  for (const [label, path] of [
    ["hello (19 B)", "/"],
    ["page (12 KB)", "/page"],
  ] as const) {
    const plain = await wrk(`${direct}${path}`, SECONDS);
    console.log(row(`${label} direct`, plain));
    const results = new Map<string, LoadResult>();
    for (const proxy of proxies) {
      const result = await measured(proxy, `${proxy.url}${path}`);
      results.set(proxy.name, result);
      console.log(row(`${label} ${proxy.name}`, result));
    }
    const ours = results.get("ours (Caddy)");
    if (ours === undefined) continue;
    const others = [...results.entries()].filter(([name]) => name !== "ours (Caddy)");
    const fastest = others.reduce<LoadResult | undefined>(
      (best, [, result]) => (best === undefined || result.rps > best.rps ? result : best),
      undefined,
    );
    const lowestP99 = Math.min(...others.map(([, result]) => result.p99));
    console.log(
      `  ${label}: ours/direct ${(ours.rps / plain.rps).toFixed(2)}×` +
        (fastest === undefined
          ? ""
          : `; ours/best of nginx, HAProxy ${(ours.rps / fastest.rps).toFixed(2)}× (target ≥ 0.90×); p99 ours/theirs ${(ours.p99 / lowestP99).toFixed(2)}× (target ≤ 1.50×)`),
    );
  }
  const [caddy] = proxies;
  if (caddy !== undefined) {
    await wrk(`${caddy.url}/page.html`, 2, SITE_HOST);
    console.log(
      row("static file (12 KB), Caddy", await measured(caddy, `${caddy.url}/page.html`, SITE_HOST)),
    );
  }
} finally {
  await supervisor.stop();
  for (const child of children) child.kill("SIGTERM");
  await Promise.all(
    children.map((child) =>
      child.exitCode === null && child.signalCode === null
        ? new Promise((resolve) => child.once("exit", resolve))
        : Promise.resolve(),
    ),
  );
  await rm(scratch, { recursive: true, force: true });
}

interface Proxy {
  name: string;
  /** `https://127.0.0.1:PORT` */
  url: string;
  /** Its main process (whose child processes count too), for its CPU time. */
  pid: number | null;
}

interface LoadResult {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  /** The proxy's CPU time per request, µs (NaN: not measured). */
  cpuMicroseconds: number;
  /** The proxy's context switches (its threads sleeping and being woken) per request. */
  switches: number;
}

/** A wrk run through `proxy`, with the CPU time and context switches its processes spent. */
async function measured(proxy: Proxy, url: string, host = HOST): Promise<LoadResult> {
  if (proxy.pid === null) return wrk(url, SECONDS, host);
  const before = await treeUsage(proxy.pid);
  const result = await wrk(url, SECONDS, host);
  const after = await treeUsage(proxy.pid);
  return {
    ...result,
    cpuMicroseconds: ((after.cpuSeconds - before.cpuSeconds) / result.requests) * 1e6,
    switches: (after.switches - before.switches) / result.requests,
  };
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
    cpuMicroseconds: NaN,
    switches: NaN,
  };
}

function row(label: string, result: LoadResult): string {
  const cpu = Number.isNaN(result.cpuMicroseconds) ? "" : result.cpuMicroseconds.toFixed(0);
  const switches = Number.isNaN(result.switches) ? "" : result.switches.toFixed(2);
  return `  ${label.padEnd(32)} ${result.rps.toFixed(0).padStart(10)} ${result.p50.toFixed(2).padStart(9)} ${result.p99.toFixed(2).padStart(9)} ${cpu.padStart(12)} ${switches.padStart(12)}`;
}

/**
 * User plus system CPU time and context switches of a process and its
 * children, all threads, from /proc (CPU in clock ticks of 1/100 s on Linux).
 */
async function treeUsage(pid: number): Promise<{ cpuSeconds: number; switches: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  let cpuSeconds = (Number(fields[11]) + Number(fields[12])) / 100;
  let switches = 0;
  for (const thread of await readdir(`/proc/${pid}/task`)) {
    const status = await readFile(`/proc/${pid}/task/${thread}/status`, "utf8");
    for (const match of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm))
      switches += Number(match[1]);
  }
  const childPids = (await readFile(`/proc/${pid}/task/${pid}/children`, "utf8"))
    .split(" ")
    .filter((part) => part !== "")
    .map(Number);
  for (const child of await Promise.all(childPids.map((childPid) => treeUsage(childPid)))) {
    cpuSeconds += child.cpuSeconds;
    switches += child.switches;
  }
  return { cpuSeconds, switches };
}

/** Starts `command` as a child of the bench (stopped at its end) and waits for `port` to listen. */
async function started(
  command: string,
  args: string[],
  port: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "inherit"], env });
  children.push(child);
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) break;
    if (await listening(port)) return child;
    await sleep(50);
  }
  throw new Error(`${command} did not listen on port ${port}`);
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => {
      resolve(false);
    });
  });
}

/** nginx's settings that would otherwise point at the system's files. */
function nginxBasics(name: string): string {
  return `daemon off;
pid ${scratch}/${name}.pid;
error_log ${scratch}/${name}.log warn;
worker_processes ${CPUS};
events { worker_connections 4096; }`;
}

function nginxTempPaths(name: string): string {
  return ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((kind) => `${kind}_temp_path ${scratch}/${name}-${kind};`)
    .join("\n  ");
}

async function nginxRun(name: string, config: string, port: number): Promise<ChildProcess> {
  const file = join(scratch, `${name}.conf`);
  await writeFile(file, config);
  return started("nginx", ["-p", scratch, "-e", join(scratch, `${name}.log`), "-c", file], port);
}

/** The upstream: `/` the hello (from memory), `/page` the 12 KB page (a file). */
async function nginxUpstream(): Promise<{ port: number; kind: string }> {
  const port = await freePort();
  await nginxRun(
    "upstream",
    `${nginxBasics("upstream")}
http {
  access_log off;
  ${nginxTempPaths("upstream")}
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${port};
    location = / { default_type text/plain; return 200 "${HELLO.replace("\n", "\\n")}"; }
    location = /page { default_type text/html; alias ${scratch}/page.html; }
  }
}
`,
    port,
  );
  return { port, kind: "nginx, static" };
}

/** Without nginx: a Node server answering the same bytes. */
async function nodeUpstream(): Promise<{ port: number; kind: string }> {
  const port = await freePort();
  const source = `
const [hello, page] = [process.env.HELLO, require("node:fs").readFileSync(process.env.PAGE_FILE)];
const server = require("node:http").createServer((request, response) => {
  if (request.url === "/page") {
    response.setHeader("content-type", "text/html");
    response.end(page);
  } else response.end(hello);
});
server.keepAliveTimeout = 120000;
server.listen(${port}, "127.0.0.1");`;
  await started(process.execPath, ["-e", source], port, {
    ...process.env,
    HELLO,
    PAGE_FILE: join(scratch, "page.html"),
  });
  return { port, kind: "Node, one process" };
}

async function selfSignedCertificate(): Promise<void> {
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
    "-keyout",
    join(scratch, "key.pem"),
    "-out",
    join(scratch, "cert.pem"),
  ]);
  // HAProxy takes the certificate and its key in one file.
  await writeFile(
    join(scratch, "cert-and-key.pem"),
    (await readFile(join(scratch, "cert.pem"), "utf8")) +
      (await readFile(join(scratch, "key.pem"), "utf8")),
  );
}

async function nginxProxy(upstreamPort: number): Promise<Proxy> {
  const port = await freePort();
  const child = await nginxRun(
    "proxy",
    `${nginxBasics("proxy")}
http {
  access_log off;
  ${nginxTempPaths("proxy")}
  keepalive_requests 1000000;
  upstream app {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${scratch}/cert.pem;
    ssl_certificate_key ${scratch}/key.pem;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto https;
    }
  }
}
`,
    port,
  );
  return { name: "nginx", url: `https://127.0.0.1:${port}`, pid: child.pid ?? null };
}

async function haproxyProxy(upstreamPort: number): Promise<Proxy> {
  const port = await freePort();
  const file = join(scratch, "haproxy.cfg");
  await writeFile(
    file,
    `global
  nbthread ${CPUS}
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 5m
  timeout server 5m
  option forwardfor

frontend https
  bind 127.0.0.1:${port} ssl crt ${scratch}/cert-and-key.pem alpn h2,http/1.1
  http-request set-header X-Forwarded-Proto https
  default_backend app

backend app
  http-reuse always
  server app 127.0.0.1:${upstreamPort}
`,
  );
  const child = await started("haproxy", ["-db", "-f", file], port);
  return { name: "HAProxy", url: `https://127.0.0.1:${port}`, pid: child.pid ?? null };
}
