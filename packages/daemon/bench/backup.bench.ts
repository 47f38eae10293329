/**
 * Backup figures: time and bytes of a full backup of a 1 GiB volume
 * (incompressible: 256 random files of 4 MiB) against an incremental one
 * after 1 % of it changed (3 files rewritten, ≈ 12 MiB), to a `btrfs`
 * target (a second loop-file btrfs) and to a `restic` target (a local
 * repository). The volume lives on its own loop-file btrfs, as on a box.
 * Times include a `sync` after each run (its data on disk).
 * Run (root): node --conditions=source --import tsx packages/daemon/bench/backup.bench.ts
 * BENCH_BACKUP_MIB changes the size.
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { mountLoopBtrfs, type LoopBtrfs } from "../test/storage/loop-btrfs.js";
import { run } from "./support.js";
import { BtrfsDriver } from "../src/storage/btrfs.js";
import { packageVolumeName } from "../src/storage/names.js";
import { openTarget } from "../src/backup/targets/index.js";
import {
  MANIFEST_FORMAT,
  type BackupManifest,
  type BackupSource,
  type BackupTargetDriver,
} from "../src/backup/types.js";

const MiB = 1024 * 1024;
const SIZE_MIB = Number(process.env["BENCH_BACKUP_MIB"] ?? 1024);
const FILE_MIB = 4;
const FILES = SIZE_MIB / FILE_MIB;
/** 1 % of the volume, rounded up to whole files. */
const CHANGED = Math.ceil(FILES / 100);
const volume = packageVolumeName("default", "bench", "data");
const owner = { uid: 1000, gid: 1000 };
const [FULL, INCREMENTAL] = ["20260101T000000Z-schedule", "20260102T000000Z-schedule"] as const;

const cleanups: (() => Promise<void>)[] = [];
try {
  const box: LoopBtrfs = await mountLoopBtrfs(3 * SIZE_MIB * MiB);
  cleanups.push(() => box.close());
  const disk: LoopBtrfs = await mountLoopBtrfs(3 * SIZE_MIB * MiB);
  cleanups.push(() => disk.close());
  const resticDir = await mkdtemp(join(tmpdir(), "town-backup-bench-"));
  cleanups.push(() => rm(resticDir, { recursive: true, force: true }));

  const storage = await BtrfsDriver.open(join(box.mountPoint, "root"));
  const root = (await storage.create(volume, { owner })).volume.path;
  for (let i = 0; i < FILES; i++)
    await writeFile(join(root, `f${i}.bin`), randomBytes(FILE_MIB * MiB));
  await storage.snapshot(volume, FULL);
  for (let i = 0; i < CHANGED; i++) {
    await writeFile(join(root, `f${(i * 97) % FILES}.bin`), randomBytes(FILE_MIB * MiB));
  }
  await storage.snapshot(volume, INCREMENTAL);
  const snapshots = await storage.listSnapshots(volume);

  const manifest = (id: string, createdAt: number): BackupManifest => ({
    format: MANIFEST_FORMAT,
    id,
    box: "bench",
    subject: volume,
    app: null,
    volumes: [{ name: volume, quota: null, owner }],
    createdAt,
  });
  const sources = (id: string): BackupSource[] => {
    const index = snapshots.findIndex((snapshot) => snapshot.name === id);
    const self = snapshots[index];
    if (!self) throw new Error(`no snapshot ${id}`);
    return [
      {
        volume,
        snapshot: id,
        path: self.path,
        earlier: snapshots.slice(0, index).map(({ name, path }) => ({ name, path })),
      },
    ];
  };

  await mkdir(join(disk.mountPoint, "backups"));
  const targets: BackupTargetDriver[] = [
    openTarget({
      name: "bench-btrfs",
      kind: "btrfs",
      location: join(disk.mountPoint, "backups"),
      password: null,
      env: {},
    }),
    openTarget({
      name: "bench-restic",
      kind: "restic",
      location: join(resticDir, "repo"),
      password: "bench password",
      env: {},
    }),
  ];

  console.log(
    `backup bench: ${SIZE_MIB} MiB volume (${FILES} random files of ${FILE_MIB} MiB), then ${CHANGED} files (${CHANGED * FILE_MIB} MiB, 1 %) rewritten`,
  );
  const mb = (bytes: number | null) => (bytes === null ? "?" : `${(bytes / MiB).toFixed(1)} MiB`);
  for (const target of targets) {
    await target.prepare();
    for (const [id, at] of [
      [FULL, 1],
      [INCREMENTAL, 2],
    ] as const) {
      // Each run's time includes its own data reaching the disk, not the one before's.
      await run("sync", []);
      const start = performance.now();
      const result = await target.put(manifest(id, at), sources(id));
      await run("sync", []);
      const seconds = (performance.now() - start) / 1000;
      console.log(
        `  ${target.kind.padEnd(6)} ${result.incremental ? "incremental" : "full       "}: ${seconds.toFixed(1)} s, ${mb(result.bytes)} written`,
      );
    }
  }
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
}
