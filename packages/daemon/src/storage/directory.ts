/**
 * Volumes as plain directories: the fallback where btrfs is not available.
 *
 * What it cannot do, it says in `capabilities` rather than pretend:
 * - quotas are not enforced, and not kept either (`quota` is always null;
 *   the desired quota stays in the desired state);
 * - snapshots are full copies (slow, as large as the volume, writable by
 *   root), made in `<root>/tmp` and renamed into place when complete;
 *   restoring one copies it back into `<root>/tmp`, then swaps it in;
 * - usage is measured by walking the tree (no links followed, hard links
 *   counted once), at most `maxUsageEntries` entries: beyond that the figure
 *   is a lower bound marked `partial`.
 */
import { chmod, chown, lstat, mkdir, rename, rm } from "node:fs/promises";
import type { StorageCapabilities } from "./driver.js";
import { LayoutDriver, type Accounting } from "./layout.js";
import { copyTree, measureTree } from "./tree.js";

export const DEFAULT_MAX_USAGE_ENTRIES = 1_000_000;

export class DirectoryDriver extends LayoutDriver {
  readonly kind = "directory";
  readonly capabilities: StorageCapabilities = {
    quotas: false,
    snapshots: "copy",
    usage: "walked",
  };

  private constructor(
    root: string,
    private readonly maxUsageEntries: number,
  ) {
    super(root);
  }

  /** Opens (and lays out) a storage root on any file system. */
  static async open(
    root: string,
    options: { maxUsageEntries?: number } = {},
  ): Promise<DirectoryDriver> {
    await mkdir(root, { recursive: true, mode: 0o755 });
    const driver = new DirectoryDriver(root, options.maxUsageEntries ?? DEFAULT_MAX_USAGE_ENTRIES);
    await driver.prepare();
    return driver;
  }

  protected async makeVolume(path: string): Promise<void> {
    await mkdir(path);
  }

  protected async deleteTree(path: string): Promise<void> {
    // rm does not follow links: a link to elsewhere is removed, not its target.
    await rm(path, { recursive: true, force: true });
  }

  protected applyQuota(): Promise<void> {
    // Not enforced, as `capabilities.quotas` says.
    return Promise.resolve();
  }

  protected async account(path: string): Promise<Accounting> {
    const size = await measureTree(path, this.maxUsageEntries);
    return {
      quota: null,
      usage: { usedBytes: size.bytes, exclusiveBytes: null, partial: size.partial },
    };
  }

  protected snapshotExclusive(): Promise<number | null> {
    // A copy holds all it has alone, but measuring it is a walk: too dear for a listing.
    return Promise.resolve(null);
  }

  protected async makeWritableCopy(snapshot: string, target: string): Promise<void> {
    await mkdir(target, { mode: 0o700 });
    await copyTree(snapshot, target, {
      maxEntries: Number.MAX_SAFE_INTEGER,
      maxBytes: Number.MAX_SAFE_INTEGER,
      keepOwner: true,
    });
  }

  protected async makeSnapshot(source: string, target: string): Promise<void> {
    const staged = this.tmpPath();
    await mkdir(staged, { mode: 0o700 });
    try {
      const stats = await lstat(source);
      await copyTree(source, staged, {
        maxEntries: Number.MAX_SAFE_INTEGER,
        maxBytes: Number.MAX_SAFE_INTEGER,
        keepOwner: true,
      });
      await chown(staged, stats.uid, stats.gid);
      await chmod(staged, stats.mode & 0o1777);
      await rename(staged, target);
    } catch (error) {
      await rm(staged, { recursive: true, force: true });
      throw error;
    }
  }
}
