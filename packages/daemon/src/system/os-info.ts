/**
 * What the Town OS image tells the daemon about the box (off the image both
 * files are absent and both answers null): the image's version, written by
 * the build into `/etc/town-os-release`, and where the data lives, decided
 * at boot by `town-os-data` into `/run/town-os/data` (`disk DISKS`,
 * `disk-degraded DISKS` or `ram REASON`). Data in RAM is lost at reboot, and
 * a degraded pool has one copy left: the dashboard says so.
 */
import { findControlCharacter } from "@townos/format";
import { readSmallFile } from "./small-files.js";

export const DEFAULT_OS_FILES = {
  release: "/etc/town-os-release",
  data: "/run/town-os/data",
} as const;

export interface OsFiles {
  release: string;
  data: string;
}

export interface OsInfo {
  /** The running image; null off the image. */
  image: { version: string; built: string | null } | null;
  /** Where apps and settings are kept; null when nothing decided it (off the image). */
  data: { storage: "disk" | "ram"; detail: string; degraded: boolean } | null;
}

/** Both files are a line or a few: anything longer is not theirs. */
const MAX_FILE_BYTES = 4096;
const MAX_VALUE_LENGTH = 200;

export async function readOsInfo(files: OsFiles = DEFAULT_OS_FILES): Promise<OsInfo> {
  const [release, data] = await Promise.all([
    readSmallFile(files.release, MAX_FILE_BYTES),
    readSmallFile(files.data, MAX_FILE_BYTES),
  ]);
  return {
    image: release === undefined ? null : parseRelease(release),
    data: data === undefined ? null : parseDataDecision(data),
  };
}

/** `KEY=VALUE` lines (os-release style, values optionally double-quoted); needs TOWN_OS_VERSION. */
export function parseRelease(text: string): OsInfo["image"] {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (!match) continue;
    const [, key = "", raw = ""] = match;
    const value = raw.replace(/^"(.*)"$/, "$1");
    if (value.length > 0 && value.length <= MAX_VALUE_LENGTH && !findControlCharacter(value))
      values.set(key, value);
  }
  const version = values.get("TOWN_OS_VERSION");
  if (version === undefined) return null;
  return { version, built: values.get("TOWN_OS_BUILT") ?? null };
}

/** `disk DISKS`, `disk-degraded DISKS` or `ram REASON`, one line; anything else decides nothing. */
export function parseDataDecision(text: string): OsInfo["data"] {
  const line = text.split("\n")[0]?.trim() ?? "";
  const match = /^(disk|disk-degraded|ram)(?: (.+))?$/.exec(line);
  if (!match) return null;
  const [, kind, detail = ""] = match;
  if (detail.length > MAX_VALUE_LENGTH || findControlCharacter(detail)) return null;
  return { storage: kind === "ram" ? "ram" : "disk", detail, degraded: kind === "disk-degraded" };
}
