/**
 * Where a backup target is: checked before it is stored, and shown without
 * credentials.
 */
import { posix } from "node:path";
import { TownError } from "@townos/format";
import type { BackupTargetKind } from "@townos/api";
import { printable } from "../../storage/names.js";
import { hasControl } from "../../storage/paths.js";

export const MAX_LOCATION_LENGTH = 4096;
/** restic backends a location may name (`restic help init`); `rclone:` is left out: it runs another program. */
const RESTIC_BACKENDS = ["sftp:", "s3:", "rest:", "b2:", "azure:", "gs:", "swift:"];

/**
 * Checks a target's location and returns it: for `path` and `btrfs` an
 * absolute, normalised directory other than `/`; for `restic` such a path
 * or a backend's URL (`sftp:…`, `s3:…`, `rest:…`, …). No control characters,
 * at most `MAX_LOCATION_LENGTH` characters.
 * @throws TownError `invalid_argument` (its message never repeats credentials)
 */
export function checkTargetLocation(kind: BackupTargetKind, location: string): string {
  const refuse = (why: string) =>
    new TownError("invalid_argument", `backup target location ${why}`, {
      issues: [{ field: "location", message: why }],
    });
  if (location === "") throw refuse("must not be empty");
  if (location.length > MAX_LOCATION_LENGTH)
    throw refuse(`is longer than ${MAX_LOCATION_LENGTH} characters`);
  if (hasControl(location)) throw refuse("contains a control character");
  if (kind === "restic" && RESTIC_BACKENDS.some((prefix) => location.startsWith(prefix))) {
    return location;
  }
  if (!location.startsWith("/")) {
    throw refuse(
      kind === "restic"
        ? `"${printable(redactLocation(location))}" is neither an absolute path nor one of ${RESTIC_BACKENDS.join(" ")}`
        : `"${printable(location)}" is not an absolute path`,
    );
  }
  if (posix.normalize(location) !== location || (location.endsWith("/") && location !== "/")) {
    throw refuse(`"${printable(location)}" is not normalised (${posix.normalize(location)})`);
  }
  if (location === "/") throw refuse("must not be the root directory");
  return location;
}

/** A location as it may be shown: a password in a URL (`rest:https://user:secret@host/`) becomes `***`. */
export function redactLocation(location: string): string {
  return location.replace(/(:\/\/[^/@:]*):[^/@]*@/, "$1:***@");
}
