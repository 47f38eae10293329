/**
 * What a target keeps about each backup besides its volumes' content: the
 * manifest with the bytes written and whether it was incremental, as JSON.
 * Read back from a target that anyone may have written to, so it is parsed
 * with a bound and checked field by field; a record that fails the checks is
 * treated as absent (the backup is not listed).
 */
import { TownError } from "@townos/format";
import { checkSnapshotName, checkVolumeName, printable } from "../../storage/names.js";
import { checkOwner } from "../../storage/safe-fs.js";
import {
  MANIFEST_FORMAT,
  MAX_MANIFEST_BYTES,
  type BackupManifest,
  type BackupSource,
  type StoredBackup,
} from "../types.js";

/** Backups oldest first (ties by id), as `list` answers them. */
export function oldestFirst(backups: StoredBackup[]): StoredBackup[] {
  return backups.sort(
    (a, b) =>
      a.manifest.createdAt - b.manifest.createdAt || a.manifest.id.localeCompare(b.manifest.id),
  );
}

/** Encodes a stored backup for the target. */
export function encodeStored(stored: StoredBackup): string {
  return `${JSON.stringify(stored)}\n`;
}

/** The stored backup in `text`, or undefined when it is not a valid one. */
export function parseStored(text: string): StoredBackup | undefined {
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(value)) return undefined;
  const { manifest, bytes, incremental } = value;
  if (typeof incremental !== "boolean") return undefined;
  if (bytes !== null && !(Number.isSafeInteger(bytes) && (bytes as number) >= 0)) return undefined;
  if (!isManifest(manifest)) return undefined;
  return { manifest, bytes: bytes as number | null, incremental };
}

/** The manifest alone, as restic keeps it (bytes and incremental are its tags). */
export function parseManifest(text: string): BackupManifest | undefined {
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return isManifest(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks what `put` is given: a valid id and volume names (they become file
 * names on the target), one source per volume of the manifest.
 * @throws TownError `invalid_argument`
 */
export function checkPut(
  target: string,
  manifest: BackupManifest,
  sources: readonly BackupSource[],
): void {
  const problem = (message: string) =>
    new TownError("invalid_argument", `backup target "${target}": ${message}`);
  if (!isManifest(manifest)) throw problem("the manifest is not valid");
  // What could not be read back must not be written.
  if (Buffer.byteLength(JSON.stringify(manifest)) > MAX_MANIFEST_BYTES - 1024) {
    throw problem(`the manifest is larger than ${MAX_MANIFEST_BYTES - 1024} bytes`);
  }
  const names = manifest.volumes.map((volume) => volume.name).sort();
  const given = sources.map((source) => source.volume).sort();
  if (names.join("\n") !== given.join("\n")) {
    throw problem("the sources are not the manifest's volumes");
  }
  for (const source of sources) {
    if (source.snapshot !== manifest.id) {
      throw problem(`the snapshot of ${source.volume} is not "${printable(manifest.id)}"`);
    }
    for (const earlier of source.earlier) checkSnapshotName(earlier.name);
  }
}

function isManifest(value: unknown): value is BackupManifest {
  if (!isObject(value)) return false;
  if (value["format"] !== MANIFEST_FORMAT) return false;
  for (const key of ["id", "box", "subject"] as const) {
    if (typeof value[key] !== "string" || value[key] === "") return false;
  }
  if (
    !valid(() => {
      checkSnapshotName(value["id"] as string);
    })
  )
    return false;
  const createdAt = value["createdAt"];
  if (!Number.isSafeInteger(createdAt) || (createdAt as number) < 0) return false;
  const desired = value["desired"];
  if (desired !== undefined && !isDesired(desired)) return false;
  const volumes = value["volumes"];
  // Only a whole box may have no volume: its apps' state is a backup too.
  if (!Array.isArray(volumes) || (volumes.length === 0 && desired === undefined)) return false;
  const seen = new Set<string>();
  for (const volume of volumes as unknown[]) {
    if (!isObject(volume) || typeof volume["name"] !== "string") return false;
    const name = volume["name"];
    if (seen.has(name) || !valid(() => checkVolumeName(name))) return false;
    seen.add(name);
    const quota = volume["quota"];
    if (quota !== null && !(Number.isSafeInteger(quota) && (quota as number) >= 0)) return false;
    const owner = volume["owner"];
    if (
      !isObject(owner) ||
      !valid(() => {
        checkOwner(owner as { uid: number; gid: number });
      })
    )
      return false;
  }
  const app = value["app"];
  if (app !== null) {
    if (!isApp(app)) return false;
    if (app["repoUrl"] !== null && typeof app["repoUrl"] !== "string") return false;
  }
  return true;
}

/** What a manifest says of an app: strings, answers as strings, a plan that is only carried. */
function isApp(app: unknown): app is Record<string, unknown> {
  if (!isObject(app)) return false;
  for (const key of ["repo", "name", "version", "definitionHash"] as const) {
    if (typeof app[key] !== "string") return false;
  }
  const answers = app["answers"];
  if (!isObject(answers) || Object.values(answers).some((answer) => typeof answer !== "string"))
    return false;
  // The plan is only carried: whoever uses it compiles the package again to check it.
  return app["plan"] === null || isObject(app["plan"]);
}

const EXPOSURES: readonly unknown[] = ["local", "lan", "internet"];

function isDesired(desired: unknown): boolean {
  if (!isObject(desired)) return false;
  const { apps, repositories, settings } = desired;
  if (!Array.isArray(apps) || !Array.isArray(repositories) || !isObject(settings)) return false;
  const appsValid = (apps as unknown[]).every(
    (app) =>
      isApp(app) &&
      typeof app["running"] === "boolean" &&
      isObject(app["exposures"]) &&
      Object.values(app["exposures"]).every((level) => EXPOSURES.includes(level)),
  );
  const repositoriesValid = (repositories as unknown[]).every(
    (repository) =>
      isObject(repository) &&
      typeof repository["name"] === "string" &&
      typeof repository["url"] === "string" &&
      typeof repository["credentials"] === "boolean",
  );
  const settingsValid = Object.values(settings).every((setting) =>
    ["string", "number", "boolean"].includes(typeof setting),
  );
  return appsValid && repositoriesValid && settingsValid;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Whether `check` passes (it throws when not). */
export function valid(check: () => unknown): boolean {
  try {
    check();
    return true;
  } catch {
    return false;
  }
}
