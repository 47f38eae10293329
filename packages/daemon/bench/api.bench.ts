/**
 * Daemon figures: idle memory, throughput and p99 latency of an
 * authenticated list call under 100 concurrent clients (this process is the
 * load; the daemon is a second process, built from dist/), and the time to
 * refresh a 500-package repository with one changed file.
 * Run: npm run bench (targets: idle RSS < 120 MB; p99 < 50 ms at 100 clients).
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { TownClient } from "@townos/client";
import { commitFiles, createRepo, startGitServer } from "../test/git-server.js";

const CLIENTS = Number(process.env["BENCH_CLIENTS"] ?? 100);
const REQUESTS = 20_000;
const PACKAGES = 500;
const root = join(import.meta.dirname, "../../..");

const scratch = await mkdtemp(join(tmpdir(), "town-bench-"));
const port = 20000 + Math.floor(Math.random() * 20000);
const daemon = spawn(
  process.execPath,
  [
    // The flag the town command's own first line sets.
    "--max-semi-space-size=4",
    join(root, "packages/cli/dist/main.js"),
    "daemon",
    "--data-dir",
    join(scratch, "data"),
    "--listen",
    `127.0.0.1:${port}`,
  ],
  {
    env: {
      ...process.env,
      TOWN_DEFAULT_REPOSITORY: "",
      TOWN_LOG_LEVEL: "warn",
      TOWN_NETWORK: "off",
    },
    stdio: ["ignore", "ignore", "inherit"],
  },
);
const baseUrl = `http://127.0.0.1:${port}`;

try {
  const client = new TownClient({ baseUrl });
  await waitUntilReady(client);
  const setupCode = (await readFile(join(scratch, "data", "setup-code"), "utf8")).trim();
  const token = (await client.setup({ username: "bench", password: "bench-password", setupCode }))
    .token;
  client.token = token;
  // Only the refreshes measured here: no background refresh may take the change first.
  await client.setSetting("repositories.refresh_interval", 0);

  // A 500-package repository served over smart HTTP.
  const files: Record<string, string> = {};
  for (let i = 0; i < PACKAGES; i++) {
    files[`packages/app-${i}/1.0.yaml`] =
      `image: localhost/town/busybox:latest\ndescription: app ${i}\nnetwork:\n  internal:\n    http: "8080"\nvolumes:\n  data:\n    mountpoint: /data\n`;
  }
  const repoDir = await createRepo(join(scratch, "git"), "big.git", files);
  const server = await startGitServer({ root: join(scratch, "git") });
  const addStart = performance.now();
  await client.addRepository({ name: "big", url: server.url("big.git") });
  const firstFetch = performance.now() - addStart;
  await commitFiles(
    repoDir,
    { "packages/app-7/1.0.yaml": `${files["packages/app-7/1.0.yaml"] ?? ""}# changed\n` },
    "one change",
  );
  const refreshStart = performance.now();
  const refreshed = await client.refreshRepository("big");
  const refresh = performance.now() - refreshStart;
  if (refreshed.status.changedPackages.join() !== "app-7")
    throw new Error("the refresh did not see the change");
  await server.close();

  await sleep(2000);
  const idleRss = await rssMb(daemon.pid ?? 0);

  const path = "/api/v1/catalog?limit=20&q=app-1";
  // A first, unmeasured round lets V8 compile the hot paths, as in a daemon that has run a while.
  if (hasWrk()) await wrkLoad(port, path, token, 3);
  const load = hasWrk() ? await wrkLoad(port, path, token) : await nodeLoad(port, path, token);
  for (let i = 0; i < 3 && process.env["BENCH_ROUNDS"]; i++)
    console.log(await wrkLoad(port, path, token, 5));
  if (process.env["BENCH_ROUNDS"])
    console.log(
      (await (await fetch(`${baseUrl}/api/v1/metrics`)).text())
        .split("\n")
        .filter((l) => l.includes("catalog") || l.includes("eventloop_lag"))
        .join("\n"),
    );
  const loadedRss = await rssMb(daemon.pid ?? 0);

  console.log(`idle RSS after boot, setup and a 500-package repository: ${idleRss.toFixed(1)} MB`);
  console.log(`first fetch of the ${PACKAGES}-package repository: ${firstFetch.toFixed(0)} ms`);
  console.log(`refresh with one changed file:               ${refresh.toFixed(0)} ms`);
  console.log(`GET ${path} with ${CLIENTS} concurrent clients (load from ${load.tool}):`);
  console.log(`  throughput: ${load.rps.toFixed(0)} requests/s`);
  console.log(`  latency p50 ${load.p50.toFixed(1)} ms, p99 ${load.p99.toFixed(1)} ms`);
  console.log(`RSS after the load: ${loadedRss.toFixed(1)} MB`);
} finally {
  daemon.kill("SIGTERM");
  await new Promise((resolve) => daemon.once("exit", resolve));
  await rm(scratch, { recursive: true, force: true });
}

interface LoadResult {
  tool: string;
  rps: number;
  p50: number;
  p99: number;
}

function hasWrk(): boolean {
  return spawnSync("wrk", ["--version"]).error === undefined;
}

/** wrk (Debian's package) is a C load generator: it leaves the CPU to the daemon. */
async function wrkLoad(
  port: number,
  path: string,
  token: string,
  seconds = 10,
): Promise<LoadResult> {
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      "wrk",
      [
        "-t1",
        `-c${CLIENTS}`,
        `-d${seconds}s`,
        "--latency",
        "-H",
        `authorization: Bearer ${token}`,
        `http://127.0.0.1:${port}${path}`,
      ],
      (error, stdout) => {
        if (error) reject(new Error(`wrk failed: ${error.message}`));
        else resolve(stdout);
      },
    );
  });
  const ms = (label: string): number => {
    const match = new RegExp(`^\\s*${label}\\s+([0-9.]+)(us|ms|s)$`, "m").exec(output);
    const value = Number(match?.[1] ?? NaN);
    return match?.[2] === "us" ? value / 1000 : match?.[2] === "s" ? value * 1000 : value;
  };
  if (/Non-2xx/.test(output)) throw new Error(`wrk saw failed requests:\n${output}`);
  return {
    tool: "wrk",
    rps: Number(/Requests\/sec:\s+([0-9.]+)/.exec(output)?.[1] ?? NaN),
    p50: ms("50%"),
    p99: ms("99%"),
  };
}

/** Without wrk: a Node client with keep-alive, which shares the CPU with the daemon. */
async function nodeLoad(port: number, path: string, token: string): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const latencies: number[] = [];
  let next = 0;
  const loadStart = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < REQUESTS) {
        next += 1;
        const start = performance.now();
        await get(agent, port, path, token);
        latencies.push(performance.now() - start);
      }
    }),
  );
  const seconds = (performance.now() - loadStart) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const p = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    tool: "a Node client in the same machine",
    rps: REQUESTS / seconds,
    p50: p(0.5),
    p99: p(0.99),
  };
}

async function waitUntilReady(client: TownClient): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      if ((await client.status()).state === "ready") return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error("the daemon did not become ready");
}

function get(agent: Agent, port: number, path: string, token: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, agent, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 200) resolve();
          else reject(new Error(`HTTP ${String(res.statusCode)}`));
        });
      },
    );
    req.on("error", reject);
    req.end();
  });
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0) / 1024;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
