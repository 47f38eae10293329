import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import type { VolumeView } from "@townos/client";
import { collect } from "./answers.js";
import { allPages } from "./connect.js";
import { clientKit, type JsonFlag } from "./client-kit.js";
import { formatBytes, table } from "./text.js";
import { counted, progressLine } from "./upload-progress.js";
import type { Io } from "./io.js";
import { UsageError } from "./usage.js";

/** `town volume …`: volumes, their quotas, snapshots and archives. */
export function registerVolumeCommands(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  const { client, print, json } = clientKit(program, io);

  const volume = program.command("volume").description("volumes: quotas, snapshots, archives");
  volume
    .command("ls")
    .description("every volume with the app using it, usage, quota and snapshots")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const api = await client();
      const [volumes, storage] = await Promise.all([
        allPages((query) => api.volumes(query)),
        api.storage(),
      ]);
      if (flags.json) {
        json({ storage, volumes });
        return;
      }
      print(
        volumes.length === 0
          ? "there are no volumes"
          : table(
              ["NAME", "KIND", "APP", "USED", "QUOTA", "SNAPSHOTS"],
              volumes.map((v) => [
                v.name,
                v.kind,
                appOf(v),
                `${formatBytes(v.usedBytes)}${v.usagePartial ? "+" : ""}`,
                v.quota === null ? "-" : formatBytes(v.quota),
                String(v.snapshots),
              ]),
            ),
      );
      if (!storage.capabilities.quotas) print(`note: ${storage.notes[0] ?? storage.reason}`);
    });

  volume
    .command("create")
    .description("make a user volume (named user.NAME)")
    .argument("<name>")
    .option("--quota <size>", "e.g. 10gb (default: the storage.default_quota setting)")
    .action(async (name: string, flags: { quota?: string }) => {
      const created = await (
        await client()
      ).createVolume({ name, ...(flags.quota === undefined ? {} : { quota: flags.quota }) });
      print(
        `created ${created.name}${created.quota === null ? "" : ` (quota ${formatBytes(created.quota)})`}`,
      );
    });

  volume
    .command("rm")
    .description("delete a volume and its snapshots")
    .argument("<name>")
    .action(async (name: string) => {
      await (await client()).removeVolume(name);
      print(`deleted ${name}`);
    });

  volume
    .command("quota")
    .description("set a volume's quota, or lift it with 'none'")
    .argument("<name>")
    .argument("<size>", "e.g. 10gb, or none")
    .action(async (name: string, size: string) => {
      const view = await (await client()).setVolumeQuota(name, size === "none" ? null : size);
      print(`${view.name}: quota ${view.quota === null ? "none" : formatBytes(view.quota)}`);
    });

  volume
    .command("upload")
    .description("unpack an archive (tar, tar.gz, tar.xz, tar.bz2, zip) into a volume")
    .argument("<name>")
    .argument("<file>")
    .option("--json")
    .action(async (name: string, file: string, flags: JsonFlag) => {
      const path = resolve(io.cwd, file);
      const total = (await stat(path)).size;
      const progress = io.interactive ? progressLine(io, total) : undefined;
      const result = await (
        await client()
      ).uploadVolumeArchive(name, counted(createReadStream(path), progress));
      progress?.(total, true);
      if (flags.json) json(result);
      else {
        print(
          `unpacked ${result.entries - result.refusedCount} entries (${formatBytes(result.bytes)}) into ${result.volume}` +
            (result.heldApp ? `; ${result.heldApp} was stopped meanwhile` : ""),
        );
      }
      if (result.refusedCount > 0) {
        io.stderr(`town: refused ${result.refusedCount} entries:\n`);
        for (const entry of result.refused) io.stderr(`  ${entry.path}: ${entry.reason}\n`);
        if (result.refusedCount > result.refused.length) {
          io.stderr(`  … and ${result.refusedCount - result.refused.length} more\n`);
        }
        setExit(1);
      }
    });

  volume
    .command("download")
    .description("save a volume, or chosen paths in it, as an archive")
    .argument("<name>")
    .argument("[file]", "where to save it (default: NAME.tar.gz or NAME.tar.xz here)")
    .option("--format <format>", "tar.gz or tar.xz", "tar.gz")
    .option("--path <path>", "a path inside the volume (repeatable)", collect, [])
    .action(
      async (name: string, file: string | undefined, flags: { format: string; path: string[] }) => {
        if (flags.format !== "tar.gz" && flags.format !== "tar.xz") {
          throw new UsageError(`--format must be tar.gz or tar.xz, not "${flags.format}"`);
        }
        const target = resolve(io.cwd, file ?? `${name}.${flags.format}`);
        const body = await (
          await client()
        ).downloadVolumeArchive(name, { format: flags.format, paths: flags.path });
        // Written aside and renamed when complete: a cut-off download leaves no half archive.
        const partial = `${target}.part`;
        try {
          await pipeline(
            Readable.fromWeb(body),
            createWriteStream(partial, { flags: "wx", mode: 0o600 }),
          );
          await rename(partial, target);
        } catch (error) {
          await rm(partial, { force: true });
          throw error;
        }
        print(`saved ${name} to ${target} (${formatBytes((await stat(target)).size)})`);
      },
    );

  volume
    .command("snapshot")
    .description("take a snapshot of a volume (name default: the time)")
    .argument("<name>")
    .argument("[snapshot]")
    .action(async (name: string, snapshot: string | undefined) => {
      const taken = await (await client()).snapshotVolume(name, snapshot);
      print(`took snapshot ${taken.name} of ${taken.volume}`);
    });

  volume
    .command("restore")
    .description("give a volume the content of one of its snapshots (which stay)")
    .argument("<name>")
    .argument("<snapshot>")
    .option("--json")
    .action(async (name: string, snapshot: string, flags: JsonFlag) => {
      const result = await (await client()).restoreVolumeSnapshot(name, snapshot);
      if (flags.json) json(result);
      else {
        print(
          `restored ${result.volume} to snapshot ${result.snapshot.name} (taken ${new Date(result.snapshot.createdAt).toISOString()})` +
            (result.heldApp ? `; ${result.heldApp} was stopped meanwhile` : ""),
        );
      }
    });

  volume
    .command("snapshots")
    .description("a volume's snapshots")
    .argument("<name>")
    .option("--json")
    .action(async (name: string, flags: JsonFlag) => {
      const snapshots = await (await client()).volumeSnapshots(name);
      if (flags.json) {
        json(snapshots);
        return;
      }
      print(
        snapshots.length === 0
          ? `${name} has no snapshots`
          : table(
              ["SNAPSHOT", "TAKEN"],
              snapshots.map((s) => [s.name, new Date(s.createdAt).toISOString()]),
            ),
      );
    });
}

function appOf(volume: VolumeView): string {
  if (volume.usedBy) return volume.usedBy;
  if (volume.package) return `(${volume.package.repo}/${volume.package.instance})`;
  return "-";
}
