/**
 * What every resource module shares: how names and labels go into libpod
 * requests (checked before anything is sent), how times are put, and how a
 * stream parser's error gets the call's context.
 */
import { TownError } from "@townos/format";
import { WORKLOAD_NAME } from "../workload.js";
import type { Decoder } from "./decode.js";

/** Longest line or frame read from a stream (logs, events, pull progress, exec output). */
export const MAX_LINE_BYTES = 1024 * 1024;

/** Names go into URL paths: only what libpod itself accepts as a name or id. */
export function checkName(name: string, context: string): string {
  if (!WORKLOAD_NAME.test(name)) {
    throw new TownError("invalid_argument", `podman: ${context}: "${name}" is not a valid name`);
  }
  return name;
}

export function namePath(name: string, context: string): string {
  return encodeURIComponent(checkName(name, context));
}

/**
 * Libpod ORs several label filters for events (and ANDs them for lists), so
 * every answer is checked here as well: all labels must match.
 */
export function hasLabels(
  present: Readonly<Record<string, string>>,
  wanted: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(wanted).every(([key, value]) => present[key] === value);
}

export function labelFilters(labels: Readonly<Record<string, string>>): string {
  const list = Object.entries(labels).map(([key, value]) => `${key}=${value}`);
  return JSON.stringify(list.length === 0 ? {} : { label: list });
}

export function unixSeconds(date: Date | undefined): string | undefined {
  return date === undefined ? undefined : (date.getTime() / 1000).toFixed(3);
}

export function parseJson(line: string, d: Decoder): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return d.fail("a line is not JSON");
  }
}

/** Adds the call's context to a stream parser's error (transport errors have it already). */
export function inContext(error: unknown, context: string): TownError {
  if (error instanceof TownError) {
    return error.message.startsWith("podman: ") ? error : error.withContext(`podman: ${context}`);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new TownError("unavailable", `podman: ${context}: ${message}`, { cause: error });
}
