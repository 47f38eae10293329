/**
 * Test helper: a real btrfs file system in a sparse loop file, made and
 * mounted by the test and unmounted (which releases the loop device) by
 * `close`. Needs root, `mkfs.btrfs` and a kernel with btrfs and loop
 * devices; `btrfsUnavailable` says why not, for `describe(…, { skip })`.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { findProgram } from "../../src/storage/exec.js";

export interface LoopBtrfs {
  /** Where the file system is mounted. */
  mountPoint: string;
  /** Unmounts and deletes everything; later calls return the same promise. */
  close(): Promise<void>;
}

/** Runs a program (no shell) and returns its stdout. */
export function sh(program: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(program, args, { encoding: "utf8" }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${program} ${args.join(" ")}: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

/** Why btrfs tests cannot run here, or undefined when they can. */
export async function btrfsUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "needs root (mkfs.btrfs, mount -o loop, qgroups)";
  const filesystems = await readFile("/proc/filesystems", "utf8").catch(() => "");
  if (!/\sbtrfs$/m.test(filesystems)) return "the kernel has no btrfs";
  for (const program of ["mkfs.btrfs", "btrfs", "mount", "umount"]) {
    if (!(await findProgram(program))) return `${program} is not installed`;
  }
  return undefined;
}

/** Makes a sparse file of `bytes`, formats it as btrfs and mounts it. */
export async function mountLoopBtrfs(bytes = 512 * 1024 * 1024): Promise<LoopBtrfs> {
  const base = await mkdtemp(join(os.tmpdir(), "town-btrfs-"));
  const image = join(base, "disk.img");
  const mountPoint = join(base, "mnt");
  await mkdir(mountPoint);
  await writeFile(image, "");
  await truncate(image, bytes);
  await sh("mkfs.btrfs", ["-q", image]);
  await sh("mount", ["-o", "loop", image, mountPoint]);
  let closing: Promise<void> | undefined;
  return {
    mountPoint,
    close: () => {
      closing ??= (async () => {
        await sh("umount", [mountPoint]);
        await rm(base, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
