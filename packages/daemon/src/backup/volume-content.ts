/**
 * Writing a backed-up volume's content into a volume of this box: into a new
 * volume made with the backed-up quota and owner, or in place of an
 * existing volume's content.
 */
import type { StorageDriver } from "../storage/driver.js";
import { commitStaging, createStaging, discardStaging } from "../storage/staging.js";
import { namesAt, removeAt, withDirectory } from "../storage/tree.js";
import type { BackupManifestVolume, BackupTargetDriver, TargetCallOptions } from "./types.js";

/** Where the content comes from: backup `id` on `target`, volume `from` in it. */
export interface VolumeSource {
  target: BackupTargetDriver;
  id: string;
  from: BackupManifestVolume;
}

/**
 * Makes `volume` with the backed-up quota and owner and fills it.
 * @returns false when the volume existed already (then nothing was written)
 */
export async function restoreIntoNewVolume(
  storage: StorageDriver,
  volume: string,
  source: VolumeSource,
  options: TargetCallOptions,
): Promise<boolean> {
  const { created } = await storage.create(volume, {
    quota: source.from.quota,
    owner: source.from.owner,
  });
  if (!created) return false;
  try {
    await source.target.restoreVolume(source.id, source.from.name, storage.path(volume), options);
  } catch (error) {
    await storage.remove(volume);
    throw error;
  }
  return true;
}

/**
 * Replaces the existing volume's content (its root keeps owner, mode and
 * quota). The backup is written to a private staging directory first, so a
 * failed read changes nothing; then the old content is deleted through
 * handles (links in it are never followed) and the new one moved in.
 * The volume's app must be stopped.
 */
export async function replaceVolumeContent(
  storage: StorageDriver,
  volume: string,
  source: VolumeSource,
  options: TargetCallOptions,
): Promise<void> {
  const staging = await createStaging(storage.stagingRoot);
  try {
    await source.target.restoreVolume(source.id, source.from.name, staging.tree, options);
    const path = storage.path(volume);
    await withDirectory(path, async (dir) => {
      for (const name of await namesAt(dir)) await removeAt(dir, name);
    });
    await commitStaging(staging, path);
  } finally {
    await discardStaging(staging);
  }
}
