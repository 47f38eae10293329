/**
 * The backup target drivers by kind, and the checks of where a target is.
 */
export { checkTargetLocation, MAX_LOCATION_LENGTH, redactLocation } from "./location.js";
import type { BackupTargetConfig, BackupTargetDriver } from "../types.js";
import { BtrfsTarget } from "./btrfs.js";
import { checkTargetLocation } from "./location.js";
import { PathTarget } from "./path.js";
import { ResticTarget } from "./restic.js";

export interface OpenTargetOptions {
  /** Where a `path` target unpacks before moving into place: the storage driver's `stagingRoot`. */
  stagingRoot?: string;
}

/** The driver for a configured target. Cheap: nothing is touched until a method is called. */
export function openTarget(
  config: BackupTargetConfig,
  options: OpenTargetOptions = {},
): BackupTargetDriver {
  const location = checkTargetLocation(config.kind, config.location);
  switch (config.kind) {
    case "path":
      return new PathTarget(config.name, location, { stagingRoot: options.stagingRoot });
    case "btrfs":
      return new BtrfsTarget(config.name, location);
    case "restic":
      return new ResticTarget({ ...config, location });
  }
}
