/**
 * Daemon memory while a 1 GiB archive is uploaded into a volume through the
 * API: the daemon runs as a child process (this file, started again with
 * `--daemon`), and its VmRSS is read from /proc every 50 ms. The tar.gz
 * (files of a repeated 1 MiB random block: gzip finds nothing to squeeze in
 * its 32 KiB window, so the archive is as large as its contents) is written
 * to a temporary file first, so the figures are the daemon's alone.
 * Storage is a btrfs loop file when running as root, else plain directories.
 * Run: node --conditions=source --import tsx packages/daemon/bench/upload.bench.ts
 * (target: RSS growth under 64 MB). BENCH_UPLOAD_MIB changes the size.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { createGzip } from "node:zlib";
import { Header } from "tar";
import { ApiError, TownClient } from "@townos/client";
import { startDaemon } from "../src/daemon.js";
import { mountedAt, storageLocations, unmount } from "../src/storage/setup.js";
import { btrfsUnavailable } from "../test/storage/loop-btrfs.js";

const MiB = 1024 * 1024;
const SIZE_MIB = Number(process.env["BENCH_UPLOAD_MIB"] ?? 1024);
const FILE_MIB = 16;
const SAMPLE_MS = 50;

if (process.argv[2] === "--daemon") await runDaemon(process.argv[3] ?? "", process.argv[4]);
else await bench();

/** Child mode: a daemon on an ephemeral port; its URL is the first line on stdout. */
async function runDaemon(dataDir: string, loopBytes: string | undefined): Promise<void> {
  const daemon = await startDaemon({
    dataDir,
    host: "127.0.0.1",
    port: 0,
    defaultRepositoryUrl: "",
    logLevel: "warn",
    extraHosts: [],
    version: "bench",
    apps: {
      ...(loopBytes ? { storageLoopBytes: Number(loopBytes) } : {}),
      // No container runtime: the bench must not start a Podman service; volumes do not need one.
      podman: { socketPath: join(dataDir, "podman.sock"), podmanPath: join(dataDir, "no-podman") },
    },
  });
  process.stdout.write(`${daemon.url}\n`);
  process.once("SIGTERM", () => {
    void daemon.stop().then(() => process.exit(0));
  });
}

async function bench(): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), "town-upload-bench-"));
  const dataDir = join(scratch, "data");
  const archive = join(scratch, "upload.tar.gz");
  const useLoop = (await btrfsUnavailable()) === undefined;
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      new URL(import.meta.url).pathname,
      "--daemon",
      dataDir,
      ...(useLoop ? [String((SIZE_MIB + 1024) * MiB)] : []),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      resolve();
    }),
  );
  try {
    const generateStart = performance.now();
    await pipeline(
      generatedTar(SIZE_MIB * MiB, "data"),
      createGzip({ level: 1 }),
      createWriteStream(archive),
    );
    const archiveBytes = (await stat(archive)).size;
    const generateSeconds = (performance.now() - generateStart) / 1000;

    const url = await firstLine(child.stdout);
    const pid = child.pid;
    if (pid === undefined) throw new Error("the daemon did not start");
    const client = new TownClient({ baseUrl: url });
    const setupCode = (await readFile(join(dataDir, "setup-code"), "utf8")).trim();
    client.token = (
      await client.setup({ username: "bench", password: "bench-password", setupCode })
    ).token;
    const storage = await waitForStorage(client);
    await client.createVolume({ name: "bench", quota: `${SIZE_MIB + 512}mb` });
    // A small upload first, so the baseline includes what every upload loads once.
    await client.uploadVolumeArchive("user.bench", Readable.from([await smallArchive()]));

    const baseline = await rssOf(pid);
    let peak = baseline;
    const sampler = setInterval(() => {
      void rssOf(pid).then(
        (rss) => {
          peak = Math.max(peak, rss);
        },
        () => undefined,
      );
    }, SAMPLE_MS);
    const start = performance.now();
    const result = await client.uploadVolumeArchive("user.bench", createReadStream(archive));
    const seconds = (performance.now() - start) / 1000;
    clearInterval(sampler);
    peak = Math.max(peak, await rssOf(pid));

    const mb = (bytes: number) => (bytes / MiB).toFixed(1);
    console.log(
      `upload bench: ${mb(archiveBytes)} MB tar.gz (${SIZE_MIB} MiB in ${result.entries} files) into a ${storage} volume through the API`,
    );
    console.log(`  archive generated in ${generateSeconds.toFixed(1)} s (not counted)`);
    console.log(
      `  upload + unpack: ${seconds.toFixed(1)} s, ${(archiveBytes / MiB / seconds).toFixed(0)} MB/s`,
    );
    console.log(
      `  daemon RSS: baseline ${mb(baseline)} MB, peak ${mb(peak)} MB, growth ${mb(peak - baseline)} MB (target < 64 MB)`,
    );
  } finally {
    child.kill("SIGTERM");
    await Promise.race([exited, sleep(15_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    const { root } = storageLocations(dataDir);
    if (await mountedAt(root)) await unmount(root);
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Tar entries of FILE_MIB each, their contents a repeated 1 MiB random block. */
function generatedTar(totalBytes: number, dir: string): Readable {
  const block = randomBytes(MiB);
  const fileBytes = FILE_MIB * MiB;
  return Readable.from(
    (function* () {
      for (let i = 0; i * fileBytes < totalBytes; i++) {
        const header = new Header({
          path: `${dir}/file-${i}.bin`,
          type: "File",
          size: fileBytes,
          mode: 0o644,
          mtime: new Date("2026-01-01T00:00:00Z"),
        });
        header.encode();
        if (!header.block) throw new Error("tar header not encoded");
        yield header.block;
        for (let left = fileBytes; left > 0; left -= block.length) yield block;
      }
      yield Buffer.alloc(1024);
    })(),
  );
}

/** A one-file tar.gz under `warm-up/`, a top-level name the big upload does not use. */
async function smallArchive(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of generatedTar(FILE_MIB * MiB, "warm-up").pipe(createGzip())) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function firstLine(stream: NodeJS.ReadableStream): Promise<string> {
  for await (const line of createInterface({ input: stream })) return line;
  throw new Error("the daemon exited before it listened");
}

async function waitForStorage(client: TownClient): Promise<string> {
  for (let tries = 0; ; tries++) {
    try {
      return (await client.storage()).mode;
    } catch (error) {
      if (!(error instanceof ApiError && error.problem.code === "unavailable") || tries > 600)
        throw error;
      await sleep(100);
    }
  }
}

/** VmRSS of a process, in bytes. */
async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(kib) * 1024;
}
