/**
 * Volumes as btrfs subvolumes, driven through the real `btrfs` program.
 *
 * - One subvolume per volume; quotas are qgroup limits on the subvolume's
 *   level-0 qgroup, on *referenced* bytes (what the volume holds, shared
 *   extents included), so writing past one fails with EDQUOT.
 * - Snapshots are read-only subvolumes (`btrfs subvolume snapshot -r`). A
 *   snapshot starts with its source's qgroup limit (btrfs copies it); being
 *   read-only, that limit never matters. Restoring one makes a writable
 *   snapshot of it in `<root>/tmp`, gives it the volume's limit and swaps it
 *   in (`layout.ts`).
 * - Usage comes from `btrfs qgroup show --raw`: the figures of the last
 *   committed transaction (up to 30 s old) unless a sync is asked for.
 * - Deleting a subvolume returns at once; btrfs frees its space in the
 *   background, and the qgroup of a deleted subvolume lingers until then
 *   (older kernels keep it as "stale" for good; that costs nothing).
 * - Quotas need root (CAP_SYS_ADMIN), so does `open`.
 */
import { mkdir, rm, statfs } from "node:fs/promises";
import { TownError } from "@townos/format";
import { run, requireProgram } from "./exec.js";
import { LayoutDriver, type Accounting } from "./layout.js";
import type { StorageCapabilities } from "./driver.js";
import { lstatOrUndefined } from "./safe-fs.js";
import { walk } from "./tree.js";

/** `f_type` of a btrfs file system (linux/magic.h). */
export const BTRFS_SUPER_MAGIC = 0x9123683e;
/** Inode number of every subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID). */
const SUBVOLUME_ROOT_INO = 256;

/** Whether `path` (which must exist) is on a btrfs file system. Cheap: one statfs(2). */
export async function isOnBtrfs(path: string): Promise<boolean> {
  return (await statfs(path)).type === BTRFS_SUPER_MAGIC;
}

export interface QgroupRow {
  level: number;
  id: number;
  referenced: number;
  exclusive: number;
  /** null: no limit ("none"), or the column was not printed. */
  maxReferenced: number | null;
  maxExclusive: number | null;
}

type Column = "qgroupid" | "referenced" | "exclusive" | "maxReferenced" | "maxExclusive";

/** Header names of `btrfs qgroup show`, new and old spellings. */
const COLUMNS: Record<string, Column> = {
  qgroupid: "qgroupid",
  referenced: "referenced",
  rfer: "referenced",
  exclusive: "exclusive",
  excl: "exclusive",
  "max referenced": "maxReferenced",
  max_rfer: "maxReferenced",
  "max exclusive": "maxExclusive",
  max_excl: "maxExclusive",
};

/**
 * Parses the output of `btrfs qgroup show --raw [-r] [-e]`. Columns are
 * found by their header (btrfs-progs 4.x to 6.x name them differently and
 * may add `Path`, `Parent`, `Child`), not by position.
 * @throws TownError `io` for output it does not understand.
 */
export function parseQgroupShow(text: string): QgroupRow[] {
  const lines = text.split("\n");
  const headerIndex = lines.findIndex((line) => /^\s*qgroupid\s/i.test(line));
  const headerLine = lines[headerIndex];
  if (headerLine === undefined) throw unexpected("no header line");
  // New names hold a space ("Max referenced"); old ones ("max_rfer") may sit one space apart.
  const header = (headerLine.match(/max referenced|max exclusive|\S+/gi) ?? []).map(
    (name) => COLUMNS[name.toLowerCase()],
  );
  if (header[0] !== "qgroupid" || !header.includes("referenced") || !header.includes("exclusive")) {
    throw unexpected(`header "${headerLine.trim()}"`);
  }
  const rows: QgroupRow[] = [];
  for (const line of lines.slice(headerIndex + 1)) {
    const cells = line.trim().split(/\s+/);
    const id = /^(\d+)\/(\d+)$/.exec(cells[0] ?? "");
    if (!id) continue; // the "----" rule, blank lines
    const cell = (column: Column): number | null | undefined => {
      const index = header.indexOf(column);
      if (index < 0) return null;
      const text = cells[index] ?? "";
      if (text === "none") return null;
      return /^\d+$/.test(text) ? Number(text) : undefined;
    };
    const referenced = cell("referenced");
    const exclusive = cell("exclusive");
    const maxReferenced = cell("maxReferenced");
    const maxExclusive = cell("maxExclusive");
    if (
      typeof referenced !== "number" ||
      typeof exclusive !== "number" ||
      maxReferenced === undefined ||
      maxExclusive === undefined
    ) {
      throw unexpected(`line "${line.trim()}"`);
    }
    rows.push({
      level: Number(id[1]),
      id: Number(id[2]),
      referenced,
      exclusive,
      maxReferenced,
      maxExclusive,
    });
  }
  return rows;
}

export class BtrfsDriver extends LayoutDriver {
  readonly kind = "btrfs";
  readonly capabilities: StorageCapabilities = {
    quotas: true,
    snapshots: "atomic",
    usage: "accounted",
  };

  private constructor(
    root: string,
    private readonly btrfs: string,
  ) {
    super(root);
  }

  /**
   * Opens (and lays out) a storage root on btrfs, enabling quotas on its file
   * system if needed and waiting for any quota rescan to finish, so that the
   * first figures are right.
   * @throws TownError `invalid_argument` when `root` is not on btrfs,
   *   `unavailable` without the `btrfs` program, `io` when btrfs refuses
   *   (e.g. not root).
   */
  static async open(root: string, options: { btrfs?: string } = {}): Promise<BtrfsDriver> {
    const btrfs = options.btrfs ?? (await requireProgram("btrfs", "storage"));
    await mkdir(root, { recursive: true, mode: 0o755 });
    if (!(await isOnBtrfs(root))) {
      throw new TownError("invalid_argument", `storage: ${root} is not on a btrfs file system`);
    }
    // Both are no-ops when quotas are on and no rescan runs.
    await run(btrfs, ["quota", "enable", root], "btrfs: enable quotas");
    await run(btrfs, ["quota", "rescan", "-W", root], "btrfs: wait for the quota rescan");
    const driver = new BtrfsDriver(root, btrfs);
    await driver.prepare();
    return driver;
  }

  protected async makeVolume(path: string): Promise<void> {
    await run(this.btrfs, ["subvolume", "create", path], "btrfs: create subvolume");
  }

  protected async deleteTree(path: string): Promise<void> {
    const stats = await lstatOrUndefined(path);
    if (!stats) return;
    if (!stats.isDirectory() || stats.ino !== SUBVOLUME_ROOT_INO) {
      // rm(2)/rmdir(2) remove plain trees; root may rmdir an empty nested subvolume too.
      await rm(path, { recursive: true, force: true });
      return;
    }
    try {
      await run(this.btrfs, ["subvolume", "delete", path], "btrfs: delete subvolume");
    } catch (error) {
      // Subvolumes an app made inside its volume block the delete: they go first.
      const nested: string[] = [];
      for await (const entry of walk(path)) {
        if (entry.stats.isDirectory() && entry.stats.ino === SUBVOLUME_ROOT_INO)
          nested.push(entry.path);
      }
      if (nested.length === 0) throw error;
      for (const inner of nested.reverse()) {
        await run(this.btrfs, ["subvolume", "delete", inner], "btrfs: delete nested subvolume");
      }
      await run(this.btrfs, ["subvolume", "delete", path], "btrfs: delete subvolume");
    }
  }

  protected async applyQuota(path: string, bytes: number | null): Promise<void> {
    await this.mustBeSubvolume(path);
    await run(
      this.btrfs,
      ["qgroup", "limit", bytes === null ? "none" : String(bytes), path],
      "btrfs: set quota",
    );
  }

  protected async account(path: string, sync: boolean): Promise<Accounting> {
    await this.mustBeSubvolume(path);
    const args = ["qgroup", "show", "--raw", "-r", "-e", "-f", ...(sync ? ["--sync"] : []), path];
    const rows = parseQgroupShow(await run(this.btrfs, args, "btrfs: read quota groups")).filter(
      (row) => row.level === 0,
    );
    const row = rows[0];
    if (rows.length !== 1 || !row)
      throw unexpected(`${rows.length} level-0 quota groups for ${path}`);
    return {
      quota: row.maxReferenced,
      usage: { usedBytes: row.referenced, exclusiveBytes: row.exclusive, partial: false },
    };
  }

  protected async snapshotExclusive(path: string, sync: boolean): Promise<number | null> {
    // With quotas on, btrfs gives every subvolume (snapshots too) its level-0 quota group.
    return (await this.account(path, sync)).usage.exclusiveBytes;
  }

  protected async makeSnapshot(source: string, target: string): Promise<void> {
    await this.mustBeSubvolume(source);
    // Made in place: a read-only subvolume cannot be moved to another directory (EROFS).
    await run(this.btrfs, ["subvolume", "snapshot", "-r", source, target], "btrfs: snapshot");
  }

  protected async makeWritableCopy(snapshot: string, target: string): Promise<void> {
    await this.mustBeSubvolume(snapshot);
    await run(this.btrfs, ["subvolume", "snapshot", snapshot, target], "btrfs: writable snapshot");
  }

  /** Quota commands on a plain directory would silently hit its parent subvolume. */
  private async mustBeSubvolume(path: string): Promise<void> {
    const stats = await lstatOrUndefined(path);
    if (!stats?.isDirectory() || stats.ino !== SUBVOLUME_ROOT_INO) {
      throw new TownError("io", `${path} is not a btrfs subvolume`);
    }
  }
}

function unexpected(what: string): TownError {
  return new TownError("io", `btrfs: unexpected "qgroup show" output: ${what}`);
}
