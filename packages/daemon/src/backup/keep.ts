/**
 * Retention: which restore points (or backups) a keep policy holds on to,
 * the way restic's `forget --keep-*` decides. Pure.
 *
 * Newest first, `last` keeps the newest N points; each of `hourly`, `daily`,
 * `weekly` (ISO weeks) and `monthly` keeps the newest point of each of its
 * UTC periods, period after period going back, until N periods have one.
 * Periods without a point do not count. A point kept by any rule is kept.
 */
import type { KeepPolicy } from "@townos/api";
import { TownError, type Issue } from "@townos/format";

/** The rules in the order they are written. */
export const KEEP_RULES = ["hourly", "daily", "weekly", "monthly", "last"] as const;
export type KeepRule = (typeof KEEP_RULES)[number];

const MAX_COUNT = 1000;
const MAX_TEXT = 256;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A restore point as retention sees it. */
export interface KeepPoint {
  id: string;
  createdAt: number;
}

/**
 * Refuses a policy that keeps nothing (every rule absent or 0) or holds a
 * count outside 0..1000: a policy that kept nothing would prune every point.
 * @throws `invalid_argument`, with an issue per problem
 */
export function checkKeepPolicy(policy: KeepPolicy): KeepPolicy {
  const issues: Issue[] = [];
  for (const rule of KEEP_RULES) {
    const count = policy[rule];
    if (count === undefined) continue;
    if (!Number.isInteger(count) || count < 0 || count > MAX_COUNT) {
      issues.push({
        field: `keep.${rule}`,
        message: `must be a whole number from 0 to ${MAX_COUNT}`,
      });
    }
  }
  if (issues.length === 0 && !KEEP_RULES.some((rule) => (policy[rule] ?? 0) > 0)) {
    issues.push({ field: "keep", message: "must keep something: give at least one rule above 0" });
  }
  if (issues.length > 0) {
    throw new TownError("invalid_argument", `invalid keep policy: ${describe(issues)}`, { issues });
  }
  return policy;
}

/**
 * Reads the written form, `hourly=24,daily=7,weekly=4,monthly=6,last=3`:
 * any of the rules, each at most once, in any order.
 * @throws `invalid_argument`, with an issue per problem
 */
export function parseKeepPolicy(text: string): KeepPolicy {
  if (text.length > MAX_TEXT) {
    const issue = { field: "keep", message: `longer than ${MAX_TEXT} characters` };
    throw new TownError("invalid_argument", `invalid keep policy: ${issue.message}`, {
      issues: [issue],
    });
  }
  const policy: KeepPolicy = {};
  const issues: Issue[] = [];
  for (const part of text.split(",")) {
    const item = part.trim();
    const match = /^([a-z]+)=(\d+)$/.exec(item);
    const rule = KEEP_RULES.find((known) => known === match?.[1]);
    if (!match || !rule) {
      issues.push({
        field: "keep",
        message: `"${item.slice(0, 40)}" is not RULE=COUNT with RULE one of ${KEEP_RULES.join(", ")}`,
      });
      continue;
    }
    if (policy[rule] !== undefined) {
      issues.push({ field: `keep.${rule}`, message: "given twice" });
      continue;
    }
    const digits = match[2] ?? "";
    const count = digits.length > 4 ? Infinity : Number(digits);
    if (count > MAX_COUNT) {
      issues.push({
        field: `keep.${rule}`,
        message: `must be a whole number from 0 to ${MAX_COUNT}`,
      });
      continue;
    }
    policy[rule] = count;
  }
  if (issues.length > 0) {
    throw new TownError("invalid_argument", `invalid keep policy: ${describe(issues)}`, { issues });
  }
  return checkKeepPolicy(policy);
}

/** The written form, rules in a fixed order; `parseKeepPolicy` reads it back. */
export function formatKeepPolicy(policy: KeepPolicy): string {
  return KEEP_RULES.filter((rule) => policy[rule] !== undefined)
    .map((rule) => `${rule}=${String(policy[rule])}`)
    .join(",");
}

/**
 * Splits `points` into those the policy keeps and those to prune (newest
 * first). Input order does not matter; points made at the same instant are
 * ordered by id, the greater one counting as newer. A policy that keeps
 * nothing prunes nothing (`checkKeepPolicy` refuses such policies).
 */
export function selectKept(
  points: readonly KeepPoint[],
  policy: KeepPolicy,
): { keep: Set<string>; prune: string[] } {
  const newestFirst = [...points].sort(
    (a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0),
  );
  if (!KEEP_RULES.some((rule) => (policy[rule] ?? 0) > 0)) {
    return { keep: new Set(newestFirst.map((point) => point.id)), prune: [] };
  }
  const keep = new Set<string>();
  for (const rule of KEEP_RULES) {
    let left = policy[rule] ?? 0;
    let previous: string | undefined;
    for (const point of newestFirst) {
      if (left <= 0) break;
      const period = rule === "last" ? point.id : periodOf(rule, point.createdAt);
      if (period === previous) continue;
      previous = period;
      keep.add(point.id);
      left--;
    }
  }
  const prune = newestFirst.filter((point) => !keep.has(point.id)).map((point) => point.id);
  return { keep, prune };
}

/** The UTC period a time falls in, as a string equal for all times of that period. */
export function periodOf(rule: Exclude<KeepRule, "last">, ms: number): string {
  const date = new Date(ms);
  switch (rule) {
    case "hourly":
      return String(Math.floor(ms / HOUR));
    case "daily":
      return String(Math.floor(ms / DAY));
    case "weekly": {
      const { year, week } = isoWeek(date);
      return `${String(year)}-W${String(week)}`;
    }
    case "monthly":
      return `${String(date.getUTCFullYear())}-${String(date.getUTCMonth() + 1)}`;
  }
}

/** ISO 8601 week (weeks start on Monday; week 1 holds the year's first Thursday), in UTC. */
export function isoWeek(date: Date): { year: number; week: number } {
  const day = Math.floor(date.getTime() / DAY) * DAY;
  const weekday = (new Date(day).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = new Date(day + (3 - weekday) * DAY);
  const year = thursday.getUTCFullYear();
  const firstOfYear = Date.UTC(year, 0, 1);
  const week = Math.floor((thursday.getTime() - firstOfYear) / DAY / 7) + 1;
  return { year, week };
}

function describe(issues: readonly Issue[]): string {
  return issues.map((issue) => `${issue.field ?? "keep"}: ${issue.message}`).join("; ");
}
