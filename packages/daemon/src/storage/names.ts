/**
 * Volume and snapshot names, and where they live on disk: made here and
 * nowhere else, and read back here.
 *
 * A volume name says whose volume it is:
 * - `pkg.<repo>.<instance>.<volume>`: a volume of an installed package;
 * - `user.<name>`: a volume a person made;
 * - `uninstalled.<repo>.<instance>.<volume>.<YYYYMMDDTHHMMSSZ>`: a package
 *   volume moved aside when its package was uninstalled, reattachable later.
 * Repository and instance names never hold a dot, and the timestamp has a
 * fixed shape, so every name splits back into its parts unambiguously.
 *
 * Names become single file names (and btrfs subvolume names), so each part is
 * checked: no `/`, no `..`, no control characters, bounded lengths, and the
 * whole name fits in one 255-byte path component.
 *
 * Layout of a storage root:
 * ```
 * <root>/volumes/<volume>                   a volume (btrfs subvolume or directory)
 * <root>/snapshots/<volume>/<snapshot>      its snapshots
 * <root>/tmp/                               work in progress (uploads and seeds staged,
 *                                           volumes being made or deleted): private to
 *                                           the daemon, finished or emptied when a driver opens
 * ```
 */
import { join } from "node:path";
import { MAX_VOLUME_NAME_BYTES } from "@townos/api";
import { TownError } from "@townos/format";

export const MAX_REPO_LENGTH = 63;
/** Dependency instances are `<parent>-<key>`: longer than one DNS label may be. */
export const MAX_INSTANCE_LENGTH = 96;
export const MAX_VOLUME_PART_LENGTH = 64;
export const MAX_USER_NAME_LENGTH = 64;
export const MAX_SNAPSHOT_NAME_LENGTH = 64;

/** Name prefixes of the system's own volumes: what a person may not type as a volume name. */
export const RESERVED_PREFIXES = ["pkg.", "uninstalled.", "snap.", "user."] as const;

export const VOLUMES_DIR = "volumes";
export const SNAPSHOTS_DIR = "snapshots";
export const TMP_DIR = "tmp";

export type ParsedVolumeName =
  | { kind: "package"; repo: string; instance: string; volume: string }
  | { kind: "user"; name: string }
  | { kind: "uninstalled"; repo: string; instance: string; volume: string; uninstalledAt: Date };

const REPO = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const INSTANCE = REPO;
/** The package format's volume-name rule (`VOLUME_NAME` in @townos/format). */
const VOLUME_PART = /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/;
const USER_NAME = VOLUME_PART;
const SNAPSHOT_NAME = VOLUME_PART;
const TIMESTAMP = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const UNINSTALLED = /^uninstalled\.([^.]+)\.([^.]+)\.(.+)\.(\d{8}T\d{6}Z)$/;

/** `pkg.<repo>.<instance>.<volume>`. @throws TownError `invalid_argument` */
export function packageVolumeName(repo: string, instance: string, volume: string): string {
  checkPackageParts(repo, instance, volume);
  return fitted(`pkg.${repo}.${instance}.${volume}`);
}

/**
 * `user.<name>` for a name a person typed. Names that look like the system's
 * own (`pkg.…`, `snap.…`) are refused so that lists never confuse the two.
 * @throws TownError `invalid_argument`
 */
export function userVolumeName(name: string): string {
  const problem = partProblem(name, USER_NAME, MAX_USER_NAME_LENGTH);
  if (problem) throw invalid(`volume name "${printable(name)}" ${problem}`);
  const lower = name.toLowerCase();
  const reserved = RESERVED_PREFIXES.find((prefix) => lower.startsWith(prefix));
  if (reserved) throw invalid(`volume names starting with "${reserved}" are reserved`);
  return fitted(`user.${name}`);
}

/**
 * The name a package volume moves to when its package is uninstalled at `at`
 * (to the second, UTC). @throws TownError `invalid_argument` for a name that
 * is not a package volume.
 */
export function uninstalledVolumeName(packageVolume: string, at: Date): string {
  const parsed = checkVolumeName(packageVolume);
  if (parsed.kind !== "package") {
    throw invalid(`"${printable(packageVolume)}" is not a package volume`);
  }
  if (Number.isNaN(at.getTime())) throw invalid("the uninstall time is not a valid date");
  return fitted(`uninstalled.${parsed.repo}.${parsed.instance}.${parsed.volume}.${timestamp(at)}`);
}

/** The package volume an uninstalled volume came from, to reattach it under. */
export function reattachedVolumeName(uninstalled: string): string {
  const parsed = checkVolumeName(uninstalled);
  if (parsed.kind !== "uninstalled") {
    throw invalid(`"${printable(uninstalled)}" is not an uninstalled volume`);
  }
  return packageVolumeName(parsed.repo, parsed.instance, parsed.volume);
}

/** Reads a volume name back; undefined for anything that is not one. */
export function parseVolumeName(name: string): ParsedVolumeName | undefined {
  if (Buffer.byteLength(name) > MAX_VOLUME_NAME_BYTES) return undefined;
  if (name.startsWith("pkg.")) {
    const [repo, instance, ...rest] = name.slice(4).split(".");
    const volume = rest.join(".");
    if (repo === undefined || instance === undefined) return undefined;
    if (packagePartsProblem(repo, instance, volume)) return undefined;
    return { kind: "package", repo, instance, volume };
  }
  if (name.startsWith("user.")) {
    const user = name.slice(5);
    return partProblem(user, USER_NAME, MAX_USER_NAME_LENGTH)
      ? undefined
      : { kind: "user", name: user };
  }
  const match = UNINSTALLED.exec(name);
  if (match) {
    const [, repo = "", instance = "", volume = "", stamp = ""] = match;
    const uninstalledAt = parseTimestamp(stamp);
    if (!uninstalledAt || packagePartsProblem(repo, instance, volume)) return undefined;
    return { kind: "uninstalled", repo, instance, volume, uninstalledAt };
  }
  return undefined;
}

/** Like `parseVolumeName`, for names that must be valid. @throws TownError `invalid_argument` */
export function checkVolumeName(name: string): ParsedVolumeName {
  const parsed = parseVolumeName(name);
  if (!parsed) throw invalid(`"${printable(name)}" is not a valid volume name`);
  return parsed;
}

/** Snapshot names: like volume names in the package format, at most 64 characters. */
export function checkSnapshotName(name: string): void {
  const problem = partProblem(name, SNAPSHOT_NAME, MAX_SNAPSHOT_NAME_LENGTH);
  if (problem) throw invalid(`snapshot name "${printable(name)}" ${problem}`);
}

export function isValidSnapshotName(name: string): boolean {
  return partProblem(name, SNAPSHOT_NAME, MAX_SNAPSHOT_NAME_LENGTH) === undefined;
}

/** Where a volume lives under a storage root. Validates the name. */
export function volumePath(root: string, name: string): string {
  checkVolumeName(name);
  return join(root, VOLUMES_DIR, name);
}

/** The directory holding a volume's snapshots. Validates the name. */
export function snapshotsDir(root: string, volume: string): string {
  checkVolumeName(volume);
  return join(root, SNAPSHOTS_DIR, volume);
}

/** Where one snapshot of a volume lives. Validates both names. */
export function snapshotPath(root: string, volume: string, snapshot: string): string {
  checkSnapshotName(snapshot);
  return join(snapshotsDir(root, volume), snapshot);
}

/** `YYYYMMDDTHHMMSSZ` (UTC), the timestamp of uninstalled volume names. */
export function timestamp(at: Date): string {
  return at
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/[-:]/g, "");
}

/** A short, printable rendering of untrusted text for error messages. */
export function printable(text: string, max = 120): string {
  // eslint-disable-next-line no-control-regex -- escaping control characters is the point
  const escaped = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (char) => {
    return `\\u${(char.codePointAt(0) ?? 0).toString(16).padStart(4, "0")}`;
  });
  return escaped.length > max ? `${escaped.slice(0, max)}…` : escaped;
}

/** A time limit for messages: "300 ms", "30 s". */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

// ---------------------------------------------------------------------------

function parseTimestamp(stamp: string): Date | undefined {
  const match = TIMESTAMP.exec(stamp);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls over (month 13, second 61): only a real instant round-trips.
  return timestamp(date) === stamp ? date : undefined;
}

function checkPackageParts(repo: string, instance: string, volume: string): void {
  const problem = packagePartsProblem(repo, instance, volume);
  if (problem) throw invalid(problem);
}

function packagePartsProblem(repo: string, instance: string, volume: string): string | undefined {
  const repoProblem = partProblem(repo, REPO, MAX_REPO_LENGTH);
  if (repoProblem) return `repository name "${printable(repo)}" ${repoProblem}`;
  const instanceProblem = partProblem(instance, INSTANCE, MAX_INSTANCE_LENGTH);
  if (instanceProblem) return `instance name "${printable(instance)}" ${instanceProblem}`;
  const volumeProblem = partProblem(volume, VOLUME_PART, MAX_VOLUME_PART_LENGTH);
  if (volumeProblem) return `volume name "${printable(volume)}" ${volumeProblem}`;
  return undefined;
}

function partProblem(part: string, rule: RegExp, max: number): string | undefined {
  if (part === "") return "must not be empty";
  if (part.length > max) return `is longer than ${max} characters`;
  if (!rule.test(part)) return `does not match ${String(rule)}`;
  if (part.includes("..")) return "must not contain '..'";
  return undefined;
}

function fitted(name: string): string {
  if (Buffer.byteLength(name) > MAX_VOLUME_NAME_BYTES) {
    throw invalid(
      `the volume name "${printable(name)}" is longer than ${MAX_VOLUME_NAME_BYTES} bytes`,
    );
  }
  return name;
}

function invalid(message: string): TownError {
  return new TownError("invalid_argument", `storage: ${message}`);
}
