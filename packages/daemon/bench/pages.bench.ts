/**
 * Pages: the time from the start of an upload of a 50 MB site (an
 * uncompressed tar of 400 files of random bytes and an index.html) to its new
 * index being served through the ingress over HTTPS, for three uploads in a
 * row (each replaces the last). Also the time the API took to answer the
 * upload (it answers once the version is served).
 * The daemon runs in this process with networking on loopback ports (Caddy
 * and dnsmasq, as root) and no container runtime: archive pages need none.
 * Run: node --conditions=source --import tsx packages/daemon/bench/pages.bench.ts
 * (BENCH_SITE_MIB changes the size).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { startDaemon } from "../src/daemon.js";
import { loopbackNetwork, networkMissing, viaCaddy } from "../test/net.js";
import { testDaemonConfig } from "../test/daemon.js";
import { buildTar } from "../test/storage/archives.js";
import { benchAccount, median } from "./support.js";

const MiB = 1024 * 1024;
const SITE_MIB = Number(process.env["BENCH_SITE_MIB"] ?? 50);
const FILES = 400;
const ROUNDS = 3;

const missing = networkMissing();
if (missing) {
  console.log(`pages bench skipped: ${missing}`);
  process.exit(0);
}

const scratch = await mkdtemp(join(tmpdir(), "town-pages-bench-"));
const network = await loopbackNetwork(scratch);
const daemon = await startDaemon(
  testDaemonConfig(scratch, { logLevel: "warn", checkResponses: false, apps: false, network }),
);
try {
  await daemon.booted;
  const client = await benchAccount(daemon);
  const caFile = join(scratch, "ca.crt");
  await writeFile(caFile, await retry(() => client.caCertificate()));
  await retry(() => client.createPage({ name: "bench", source: { type: "archive" } }));

  const index = (): Promise<string> =>
    viaCaddy(caFile, "bench.home", network.httpsPort).catch(() => "");

  const totals: number[] = [];
  const answers: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const marker = `version ${round} ${randomBytes(4).toString("hex")}\n`;
    const site = siteTar(marker);
    const started = performance.now();
    await client.uploadPage("bench", new Blob([site]));
    answers.push(performance.now() - started);
    while ((await index()) !== marker) await sleep(5);
    totals.push(performance.now() - started);
  }
  const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(
    `pages: upload of a ${SITE_MIB} MB site (${FILES} files) to its new index served over HTTPS: median ${seconds(median(totals))} (${totals.map(seconds).join(", ")}); the API answered after ${seconds(median(answers))}`,
  );
} finally {
  const running = daemon.boot.services?.network;
  await daemon.stop();
  await running?.stopForTests();
  await rm(scratch, { recursive: true, force: true });
}

/** An uncompressed tar: `FILES` files of random bytes (`SITE_MIB` in all) and an index holding `marker`. */
function siteTar(marker: string): Buffer {
  const fileBytes = Math.floor((SITE_MIB * MiB) / FILES);
  return buildTar([
    { path: "index.html", body: marker },
    ...Array.from({ length: FILES }, (_, i) => ({
      path: `assets/file-${i}.bin`,
      body: randomBytes(fileBytes),
    })),
  ]);
}

/** Retries `call` every 200 ms for up to 60 s: the ingress and pages come up after the boot. */
async function retry<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= 300) throw error;
      await sleep(200);
    }
  }
}
