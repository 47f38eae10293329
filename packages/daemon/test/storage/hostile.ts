/**
 * Test helpers that play a hostile container: content an app can write into
 * its own volume (links out of it, staging-looking names, a directory swapped
 * for a link over and over while the daemon works), and a decoy "host"
 * directory outside the volume whose every detail is checked afterwards.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";

/** Text in every decoy file: it must never show up in anything the daemon makes. */
export const SECRET = "host-secret-5d1e0c";
/** Names found both in the decoy and in the volume's `sub/`, so a path that goes astray lands on one. */
export const SHARED_NAMES = Array.from({ length: 40 }, (_, i) => `f${i}`);

/** A decoy host directory: files (0600, root's), a `tree/` like a staging tree, and the shared names. */
export async function makeOutside(dir: string): Promise<void> {
  await mkdir(join(dir, "tree"), { recursive: true });
  await writeFile(join(dir, "secret"), SECRET, { mode: 0o600 });
  await writeFile(join(dir, "tree", "secret"), SECRET, { mode: 0o600 });
  for (const name of SHARED_NAMES) await writeFile(join(dir, name), SECRET, { mode: 0o600 });
}

/** Every entry of a tree with type, owner, mode and content hash (or link target), sorted. */
export async function describeTree(dir: string, prefix = ""): Promise<string[]> {
  const lines: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    const stats = await lstat(path);
    const meta = `${stats.uid}:${stats.gid} ${(stats.mode & 0o7777).toString(8)}`;
    if (stats.isSymbolicLink()) lines.push(`${prefix}${name} -> ${await readlink(path)} ${meta}`);
    else if (stats.isDirectory()) {
      lines.push(`${prefix}${name}/ ${meta}`);
      lines.push(...(await describeTree(path, `${prefix}${name}/`)));
    } else {
      const hash = createHash("sha256")
        .update(await readFile(path))
        .digest("hex")
        .slice(0, 12);
      lines.push(`${prefix}${name} ${meta} ${hash}`);
    }
  }
  return lines;
}

/** Whether any file in a tree (links not followed) holds `SECRET`. */
export async function holdsSecret(dir: string): Promise<boolean> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const stats = await lstat(path);
    if (stats.isDirectory() && (await holdsSecret(path))) return true;
    if (stats.isFile() && (await readFile(path, "utf8")).includes(SECRET)) return true;
  }
  return false;
}

/** What earlier versions staged inside volumes, and what an app can forge like it. */
export const PLANTED = {
  /** A "complete" staged tree whose tree leads out. */
  readyTree: ".town-ready-0123456789abcdef",
  /** A "complete" staged tree that is itself a link out. */
  readyLink: ".town-ready-fedcba9876543210",
  /** An earlier version's unfinished upload, counted against the quota. */
  staging: ".town-staging-00112233445566ff",
} as const;

/**
 * Writes into a volume what a hostile app could: `etc` and `deep/up` linking
 * to the decoy, the staging-looking names of `PLANTED`, a `sub/` holding the
 * decoy's names, and real data. The leftover staging holds `leftoverBytes`.
 */
export async function plantHostileContent(
  volume: string,
  outside: string,
  leftoverBytes: number,
): Promise<void> {
  await symlink(outside, join(volume, "etc"));
  await mkdir(join(volume, "deep"));
  await symlink("../../..", join(volume, "deep", "up"));
  await mkdir(join(volume, PLANTED.readyTree));
  await symlink(outside, join(volume, PLANTED.readyTree, "tree"));
  await symlink(outside, join(volume, PLANTED.readyLink));
  await mkdir(join(volume, PLANTED.staging, "tree"), { recursive: true });
  await writeFile(join(volume, PLANTED.staging, "tree", "half"), Buffer.alloc(leftoverBytes, 1));
  await mkdir(join(volume, "sub"));
  for (const name of SHARED_NAMES) await writeFile(join(volume, "sub", name), "app data");
  await writeFile(join(volume, "data.txt"), "app data");
}

export interface Swapper {
  /** Stops swapping and puts the real directory back. */
  stop(): Promise<void>;
}

/**
 * Swaps `dir` for a link to `target` and back, as fast as it can, in another
 * process (another core): what a hostile app does to catch the daemon
 * between a check and a use.
 */
export function swapForLink(dir: string, target: string): Swapper {
  const aside = `${dir}.real`;
  const script = `
    const fs = require("node:fs");
    const [dir, aside, target] = process.argv.slice(1);
    for (;;) {
      try {
        fs.renameSync(dir, aside);
        fs.symlinkSync(target, dir);
        fs.unlinkSync(dir);
        fs.renameSync(aside, dir);
      } catch {}
    }`;
  const child = spawn(process.execPath, ["-e", script, dir, aside, target], { stdio: "ignore" });
  return {
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
      const stats = await lstat(dir).catch(() => undefined);
      if (stats?.isSymbolicLink()) await rm(dir);
      if (!stats?.isDirectory()) await rename(aside, dir);
    },
  };
}
