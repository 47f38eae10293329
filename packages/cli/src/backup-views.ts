import type {
  BOX_SUBJECT,
  BackupOverview,
  BackupPolicyView,
  BackupRunView,
  BackupTargetView,
  BackupView,
  KeepPolicy,
  RestoreBoxResult,
  RestorePointView,
  RollbackResult,
} from "@townos/client";
import { checkSchedule, formatKeepPolicy, parseKeepPolicy } from "@townos/daemon";
import { isTownError } from "@townos/format";
import { formatBytes, table, oneLine } from "./text.js";
import { UsageError } from "./usage.js";

// Restore points and backups as `town app snapshots` and `town backup` print them.

/** The subject naming the whole box (its type ties it to the API's constant). */
export const BOX: typeof BOX_SUBJECT = "box";

/** A subject as a table shows it: the whole box said so. */
function subjectText(subject: string): string {
  return subject === BOX ? "box (whole box)" : subject;
}

/** The daemon's own parsers, their refusals made usage errors (exit 2) naming the flag. */
function asUsage<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (isTownError(error) && error.code === "invalid_argument") {
      throw new UsageError(`${flag}: ${error.message}`);
    }
    throw error;
  }
}

/** `--keep hourly=24,daily=7,weekly=4` → `{hourly: 24, daily: 7, weekly: 4}`. */
export function parseKeep(text: string): KeepPolicy {
  return asUsage("--keep", () => parseKeepPolicy(text));
}

/** `--schedule`, checked before anything is sent: five-field cron (UTC) or @daily and the like. */
export function parseSchedule(text: string): string {
  return asUsage("--schedule", () => checkSchedule(text));
}

/** The text form back: `hourly=24,daily=7,weekly=4`; "nothing" when empty. */
export function keepText(keep: KeepPolicy): string {
  return formatKeepPolicy(keep) || "nothing";
}

/**
 * `--env` for a restic target's backend: `KEY=VALUE`, or `KEY` alone to take
 * the value from this command's environment (kept out of the process list).
 */
export function parseEnv(
  pairs: readonly string[],
  environment: NodeJS.ProcessEnv,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const match = /^([A-Z][A-Z0-9_]{0,63})(?:=(.*))?$/s.exec(pair);
    if (!match?.[1]) {
      throw new UsageError(`--env "${pair.split("=")[0] ?? ""}…" is not KEY=VALUE or KEY`);
    }
    const value = match[2] ?? environment[match[1]];
    if (value === undefined) throw new UsageError(`--env ${match[1]}: it is not set here`);
    env[match[1]] = value;
  }
  return env;
}

/** "just now", "40 s ago", "5 min ago", "2 h ago", "3 d ago"; the future as "in 2 h". */
export function agoText(ms: number, now: number): string {
  const seconds = Math.round((now - ms) / 1000);
  const size = Math.abs(seconds);
  if (size < 5) return "just now";
  const amount =
    size < 60
      ? `${size} s`
      : size < 3600
        ? `${Math.floor(size / 60)} min`
        : size < 48 * 3600
          ? `${Math.floor(size / 3600)} h`
          : `${Math.floor(size / 86_400)} d`;
  return seconds > 0 ? `${amount} ago` : `in ${amount}`;
}

/** Local time to the minute: "2026-12-03 21:00". */
export function localTime(ms: number): string {
  const date = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}`;
}

/** "2026-12-03 21:00 (2 h ago)". */
export function whenText(ms: number, now: number): string {
  return `${localTime(ms)} (${agoText(ms, now)})`;
}

/** The bytes only a restore point holds: "–" when the storage cannot tell, "+" when some part is unknown. */
export function restorePointSize(point: RestorePointView): string {
  const known = point.volumes.flatMap((v) => (v.exclusiveBytes === null ? [] : [v.exclusiveBytes]));
  if (known.length === 0) return "–";
  const sum = formatBytes(known.reduce((a, b) => a + b, 0));
  return known.length < point.volumes.length ? `${sum}+` : sum;
}

/** `town app snapshots`: newest first, as the daemon answers. */
export function restorePointTable(points: readonly RestorePointView[], now: number): string {
  if (points.length === 0) return "no restore points";
  return table(
    ["ID", "WHEN", "REASON", "VERSION", "VOLUMES", "SIZE"],
    points.map((point) => {
      const gone = point.volumes.filter((v) => !v.present).length;
      return [
        point.id,
        whenText(point.createdAt, now),
        point.reason,
        point.version ?? "-",
        `${point.volumes.length}${gone > 0 ? ` (${gone} gone)` : ""}`,
        restorePointSize(point),
      ];
    }),
  );
}

/** "main/wiki is back at 1.2.0 from …; what it replaced is kept as …". */
export function rollbackText(app: string, result: RollbackResult): string {
  return `${app} is back at ${result.version} from ${result.restoredFrom.id}; what it replaced is kept as ${result.kept.id}`;
}

export function targetStatus(target: BackupTargetView): string {
  if (target.status === null) return "not checked yet";
  if (target.status.ok) return "ok";
  return `failed: ${oneLine(target.status.error ?? "unknown error")}`;
}

export function targetTable(targets: readonly BackupTargetView[], now: number): string {
  if (targets.length === 0) return "no backup targets";
  return table(
    ["NAME", "KIND", "LOCATION", "CHECKED", "STATUS"],
    targets.map((target) => [
      target.name,
      target.kind,
      target.location,
      target.status === null ? "-" : agoText(target.status.at, now),
      targetStatus(target),
    ]),
  );
}

function lastRunText(policy: BackupPolicyView, now: number): string {
  const last = policy.lastRun;
  if (last === null) return "never";
  const result = last.ok ? "ok" : `failed: ${oneLine(last.error ?? "unknown error")}`;
  return `${agoText(last.at, now)}, ${result}`;
}

export function policyTable(policies: readonly BackupPolicyView[], now: number): string {
  if (policies.length === 0) return "no backup policies";
  return table(
    ["SUBJECT", "SCHEDULE", "KEEP", "TARGETS", "NEXT", "LAST"],
    policies.map((policy) => [
      policy.subject,
      policy.schedule,
      keepText(policy.keep),
      policy.targets.length === 0 ? "(restore points only)" : policy.targets.join(","),
      policy.nextRunAt === null ? "never" : whenText(policy.nextRunAt, now),
      lastRunText(policy, now),
    ]),
  );
}

/** A run's state with what it is doing or why it failed. */
export function runStateText(run: BackupRunView): string {
  if (run.state === "running") return run.step === null ? "running" : `running: ${run.step}`;
  if (run.state === "failed") return `failed: ${oneLine(run.error ?? "unknown error")}`;
  return run.bytes === null ? "ok" : `ok, ${formatBytes(run.bytes)}`;
}

export function runTable(runs: readonly BackupRunView[], now: number): string {
  if (runs.length === 0) return "no backup runs";
  return table(
    ["RUN", "SUBJECT", "TARGET", "TRIGGER", "STARTED", "STATE"],
    runs.map((run) => [
      String(run.id),
      run.subject,
      run.target ?? "-",
      run.trigger,
      agoText(run.startedAt, now),
      runStateText(run),
    ]),
  );
}

/** `town backup ls`: targets, policies, failures needing a person, then recent runs. */
export function overviewText(overview: BackupOverview, now: number, recentRuns = 10): string {
  const sections = [
    `TARGETS\n${targetTable(overview.targets, now)}`,
    `POLICIES\n${policyTable(overview.policies, now)}`,
  ];
  if (overview.failures.length > 0) {
    sections.push(
      `FAILING\n${overview.failures
        .map(
          (f) =>
            `${f.subject}${f.target === null ? "" : ` → ${f.target}`} (${agoText(f.at, now)}): ${oneLine(f.error)}`,
        )
        .join("\n")}`,
    );
  }
  sections.push(`RECENT RUNS\n${runTable(overview.runs.slice(0, recentRuns), now)}`);
  return sections.join("\n\n");
}

/** `town backup ls TARGET`: a target's backups, newest first. */
export function backupTable(backups: readonly BackupView[], now: number): string {
  if (backups.length === 0) return "no backups on this target";
  return table(
    ["ID", "SUBJECT", "VERSION", "WHEN", "VOLUMES", "SIZE", "KIND"],
    [...backups]
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((backup) => [
        backup.id,
        subjectText(backup.subject),
        backup.app?.version ?? "-",
        whenText(backup.createdAt, now),
        String(backup.volumes.length),
        backup.bytes === null ? "–" : formatBytes(backup.bytes),
        backup.incremental ? "incremental" : "full",
      ]),
  );
}

/** A part's state, with why it failed. */
function partState(state: string, error: string | null): string {
  return state === "failed" ? `failed: ${oneLine(error ?? "unknown error")}` : state;
}

/** How many parts of a whole-box restore failed (each part is tried whatever the others did). */
export function boxRestoreFailures(result: RestoreBoxResult): number {
  return [
    ...result.repositories.map((r) => r.state === "failed"),
    ...result.settings.map((s) => !s.ok),
    ...result.volumes.map((v) => v.state === "failed"),
    ...result.apps.map((a) => a.state === "failed"),
  ].filter(Boolean).length;
}

/** `town backup restore box`: what happened to each repository, setting, volume and app. */
export function boxRestoreText(result: RestoreBoxResult, now: number): string {
  const section = (title: string, header: string[], rows: string[][]): string =>
    `${title}\n${rows.length === 0 ? "none" : table(header, rows)}`;
  return [
    `the whole box from backup ${result.backup.id}, taken ${whenText(result.backup.createdAt, now)}, on ${result.backup.target}:`,
    section(
      "REPOSITORIES",
      ["NAME", "URL", "STATE"],
      result.repositories.map((r) => [
        r.name,
        r.url,
        r.state === "present" ? "present (kept as it is)" : partState(r.state, r.error),
      ]),
    ),
    section(
      "SETTINGS",
      ["KEY", "STATE"],
      result.settings.map((s) => [s.key, s.ok ? "set" : partState("failed", s.error)]),
    ),
    section(
      "VOLUMES",
      ["VOLUME", "STATE"],
      result.volumes.map((v) => [
        v.volume,
        v.state === "present" ? "present (left as it is)" : partState(v.state, v.error),
      ]),
    ),
    section(
      "APPS",
      ["APP", "VERSION", "STATE"],
      result.apps.map((a) => [
        a.app,
        a.version,
        a.state === "restored" && a.kept !== null
          ? `restored; what it replaced is kept as ${a.kept}`
          : partState(a.state, a.error),
      ]),
    ),
  ].join("\n\n");
}
