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
 *   in (`layout.ts`). A snapshot's root directory keeps the birth time of
 *   the volume it was taken from: when it was taken is the subvolume's own
 *   creation time (otime), which btrfs keeps to the second.
 * - Usage comes from `btrfs qgroup show --raw`: the figures of the last
 *   committed transaction (up to 30 s old) unless a sync is asked for.
 * - Deleting a subvolume returns at once; btrfs frees its space in the
 *   background, and the qgroup of a deleted subvolume lingers until then
 *   (older kernels keep it as "stale" for good; that costs nothing).
 * - Quotas need root (CAP_SYS_ADMIN), so does `open`.
 */
import { lstat, mkdir, rm, statfs } from "node:fs/promises";
import { TownError } from "@townos/format";
import { run, requireProgram } from "./exec.js";
import { LayoutDriver, type Accounting } from "./layout.js";
import type { StorageCapabilities } from "./driver.js";
import { snapshotPath, snapshotsDir, SNAPSHOTS_DIR } from "./names.js";
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
  if (headerLine === undefined) throw unexpected("qgroup show", "no header line");
  // New names hold a space ("Max referenced"); old ones ("max_rfer") may sit one space apart.
  const header = (headerLine.match(/max referenced|max exclusive|\S+/gi) ?? []).map(
    (name) => COLUMNS[name.toLowerCase()],
  );
  if (header[0] !== "qgroupid" || !header.includes("referenced") || !header.includes("exclusive")) {
    throw unexpected("qgroup show", `header "${headerLine.trim()}"`);
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
      throw unexpected("qgroup show", `line "${line.trim()}"`);
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

const BTRFS_TIME =
  /^(?<day>\d{4}-\d{2}-\d{2}) (?<time>\d{2}:\d{2}:\d{2})(?: (?<sign>[+-])(?<hours>\d{2})(?<minutes>\d{2}))?$/;

/**
 * Parses a time as btrfs prints it: "2026-12-04 15:40:12 +0100", or without
 * the offset in the zone it ran in, which `run` makes UTC. Undefined for
 * anything else ("-" for none included).
 */
export function parseBtrfsTime(text: string): Date | undefined {
  const groups = BTRFS_TIME.exec(text.trim())?.groups;
  if (!groups) return undefined;
  const { day, time, sign, hours, minutes } = groups;
  const zone = sign ? `${sign}${hours}:${minutes}` : "Z";
  const date = new Date(`${day}T${time}${zone}`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

export interface SnapshotRow {
  /** From the file system's top level (with `-o`). */
  path: string;
  createdAt: Date;
}

const SNAPSHOT_LINE = /^ID \d+ .*? otime (?<otime>\S+ \S+) path (?<path>.+)$/;

/**
 * Parses `btrfs subvolume list -s` output, a snapshot a line: "ID 257 gen 9
 * cgen 9 top level 5 otime 2026-12-04 15:34:04 path snapshots/v/s". The path
 * is the rest of the line.
 * @throws TownError `io` for a line it does not understand.
 */
export function parseSnapshotList(text: string): SnapshotRow[] {
  const rows: SnapshotRow[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const groups = SNAPSHOT_LINE.exec(line)?.groups;
    const createdAt = groups?.["otime"] === undefined ? undefined : parseBtrfsTime(groups["otime"]);
    const path = groups?.["path"];
    if (!createdAt || path === undefined) throw unexpected("subvolume list", `line "${line}"`);
    rows.push({ path, createdAt });
  }
  return rows;
}

/** The "Creation time" of `btrfs subvolume show` output. @throws TownError `io` without one. */
export function parseCreationTime(text: string): Date {
  const value = /^\s*Creation time:(.*)$/m.exec(text)?.[1];
  const createdAt = value === undefined ? undefined : parseBtrfsTime(value);
  if (!createdAt) throw unexpected("subvolume show", "no creation time");
  return createdAt;
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
      throw unexpected("qgroup show", `${rows.length} level-0 quota groups for ${path}`);
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

  /**
   * The subvolumes' creation times: one `btrfs subvolume list` for all of
   * `names`. A name it leaves ambiguous (another storage root in the same
   * subvolume holding the same names) costs a `btrfs subvolume show`; a plain
   * directory (a copy the directory driver made) has its birth time.
   */
  protected override async snapshotTimes(
    volume: string,
    names: readonly string[],
  ): Promise<Map<string, Date>> {
    // -o: the subvolumes right in the one holding the directory, their paths from the top level.
    const listed = parseSnapshotList(
      await run(
        this.btrfs,
        ["subvolume", "list", "-s", "-o", snapshotsDir(this.root, volume)],
        "btrfs: list snapshots",
      ),
    );
    const times = new Map<string, Date>();
    for (const name of names) {
      // Ours is among these (it sits in that subvolume): a single one is ours.
      const tail = `${SNAPSHOTS_DIR}/${volume}/${name}`;
      const [row, ...others] = listed.filter(
        (entry) => entry.path === tail || entry.path.endsWith(`/${tail}`),
      );
      const path = snapshotPath(this.root, volume, name);
      if (row && others.length === 0) {
        times.set(name, row.createdAt);
      } else if ((await lstat(path)).ino === SUBVOLUME_ROOT_INO) {
        const shown = await run(this.btrfs, ["subvolume", "show", path], "btrfs: show snapshot");
        times.set(name, parseCreationTime(shown));
      } else {
        const [time] = (await super.snapshotTimes(volume, [name])).values();
        if (time) times.set(name, time);
      }
    }
    return times;
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

function unexpected(command: string, what: string): TownError {
  return new TownError("io", `btrfs: unexpected "${command}" output: ${what}`);
}
