/**
 * Archive figures: RSS growth and throughput while unpacking a 1 GiB tar.gz
 * that is generated and compressed on the fly in this process (so the
 * figures include the generator's memory and CPU), then while packing the
 * unpacked tree back out as tar.gz.
 * Run: node --conditions=source --import tsx packages/daemon/bench/archive.bench.ts
 * (target: RSS growth < 64 MB; memory must not grow with the archive size).
 * BENCH_ARCHIVE_MIB changes the size.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createGzip } from "node:zlib";
import { packVolume, unpackArchive } from "../src/storage/archive.js";
import { generatedTar } from "../test/storage/archives.js";

const MiB = 1024 * 1024;
const SIZE_MIB = Number(process.env["BENCH_ARCHIVE_MIB"] ?? 1024);
const FILE_MIB = 16;

const scratch = await mkdtemp(join(tmpdir(), "town-archive-bench-"));
/** The volume, and where unpacks stage, as a storage root's volumes/ and tmp/ would be. */
const volume = join(scratch, "volume");
const stagingRoot = join(scratch, "tmp");
try {
  await mkdir(volume);
  await mkdir(stagingRoot, { mode: 0o700 });
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);

  const upload = generatedTar(SIZE_MIB * MiB, FILE_MIB * MiB).pipe(createGzip({ level: 1 }));
  const start = performance.now();
  const result = await unpackArchive(upload, "auto", volume, {
    stagingRoot,
    maxBytes: (SIZE_MIB + 1) * MiB,
  });
  const unpackSeconds = (performance.now() - start) / 1000;
  const unpackPeak = peak;

  const packBaseline = process.memoryUsage().rss;
  peak = packBaseline;
  const packStart = performance.now();
  let packed = 0;
  for await (const chunk of await packVolume(volume, { format: "tar.gz" })) {
    packed += (chunk as Buffer).length;
  }
  const packSeconds = (performance.now() - packStart) / 1000;
  clearInterval(sampler);

  const mb = (bytes: number) => (bytes / MiB).toFixed(1);
  console.log(`archive bench: ${SIZE_MIB} MiB in ${result.entries} files of ${FILE_MIB} MiB`);
  console.log(
    `  unpack tar.gz: ${unpackSeconds.toFixed(1)} s, ${(SIZE_MIB / unpackSeconds).toFixed(0)} MiB/s (generating and gzipping the upload included)`,
  );
  console.log(
    `  RSS growth while unpacking: ${mb(unpackPeak - baseline)} MB (baseline ${mb(baseline)} MB)`,
  );
  console.log(
    `  pack tar.gz: ${packSeconds.toFixed(1)} s, ${mb(packed)} MB out, RSS growth ${mb(peak - packBaseline)} MB`,
  );
} finally {
  await rm(scratch, { recursive: true, force: true });
}
