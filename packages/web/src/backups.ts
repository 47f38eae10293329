import type {
  AddBackupTargetBody,
  BOX_SUBJECT,
  BackupRunView,
  BackupTargetKind,
  KeepPolicy,
  RestoreBoxResult,
  RestorePointView,
  SetBackupPolicyBody,
} from "@townos/client";
import { formatBytes, t, type MessageKey } from "./messages.js";

// Restore points and backups in words for the Backups screen and an app's timeline, and their forms as the API's bodies.

/** The subject naming the whole box (its type ties it to the API's constant). */
export const BOX: typeof BOX_SUBJECT = "box";

/** A policy's, run's or backup's subject in words: the box as "Whole box". */
export function subjectWords(subject: string): string {
  return subject === BOX ? t("backups.wholeBox") : subject;
}

const KEEP_KINDS = ["last", "hourly", "daily", "weekly", "monthly"] as const;
type KeepKind = (typeof KEEP_KINDS)[number];

/** Ready-made retentions for the policy dialog, the first the usual one. */
export const KEEP_PRESETS: { label: MessageKey; keep: KeepPolicy }[] = [
  { label: "backups.preset.month", keep: { hourly: 24, daily: 7, weekly: 4 } },
  { label: "backups.preset.quarter", keep: { daily: 14, weekly: 8, monthly: 3 } },
  { label: "backups.preset.year", keep: { daily: 7, weekly: 4, monthly: 12 } },
  { label: "backups.preset.last", keep: { last: 5 } },
];

/** Ready-made schedules (five-field cron, UTC). */
export const SCHEDULE_PRESETS: { label: MessageKey; cron: string }[] = [
  { label: "backups.schedule.hourly", cron: "0 * * * *" },
  { label: "backups.schedule.daily", cron: "0 3 * * *" },
  { label: "backups.schedule.weekly", cron: "0 3 * * 0" },
];

/** "24 hourly, 7 daily, 4 weekly"; "nothing" when it keeps none. */
export function keepWords(keep: KeepPolicy): string {
  const parts = KEEP_KINDS.flatMap((kind) =>
    keep[kind] === undefined || keep[kind] === 0
      ? []
      : [t(`backups.keep.${kind}`, { count: keep[kind] })],
  );
  return parts.length === 0 ? t("backups.keep.nothing") : parts.join(", ");
}

/** The policy dialog's fields: counts as typed, targets as ticked. */
export interface PolicyForm {
  subject: string;
  schedule: string;
  keep: Record<KeepKind, string>;
  targets: string[];
}

export function policyForm(
  subject: string,
  schedule: string,
  keep: KeepPolicy,
  targets: string[],
): PolicyForm {
  return {
    subject,
    schedule,
    keep: Object.fromEntries(
      KEEP_KINDS.map((kind) => [kind, keep[kind] === undefined ? "" : String(keep[kind])]),
    ) as Record<KeepKind, string>,
    targets,
  };
}

export const KEEP_FIELDS = KEEP_KINDS;

/** The typed counts as a policy (empty fields left out); null when one is not a count. */
export function keepOf(fields: Record<KeepKind, string>): KeepPolicy | null {
  const keep: KeepPolicy = {};
  for (const kind of KEEP_KINDS) {
    const text = fields[kind].trim();
    if (text === "") continue;
    if (!/^[0-9]{1,4}$/.test(text) || Number(text) > 1000) return null;
    keep[kind] = Number(text);
  }
  return keep;
}

/** Which preset a policy is, for the dialog's picker; -1 when none. */
export function keepPresetIndex(keep: KeepPolicy | null): number {
  if (keep === null) return -1;
  return KEEP_PRESETS.findIndex((preset) =>
    KEEP_KINDS.every((kind) => (preset.keep[kind] ?? 0) === (keep[kind] ?? 0)),
  );
}

/** The form as the API's body, or the first thing to fix (the daemon checks again). */
export function policyBody(form: PolicyForm): SetBackupPolicyBody | { missing: MessageKey } {
  const subject = form.subject.trim();
  if (subject === "") return { missing: "backups.missing.subject" };
  if (form.schedule.trim() === "") return { missing: "backups.missing.schedule" };
  const keep = keepOf(form.keep);
  if (keep === null) return { missing: "backups.missing.count" };
  if (Object.values(keep).every((count) => count === 0)) return { missing: "backups.missing.keep" };
  return { subject, schedule: form.schedule.trim(), keep, targets: form.targets };
}

/** The add-target dialog's fields. */
export interface TargetForm {
  name: string;
  kind: BackupTargetKind;
  location: string;
  /** restic: empty to have the daemon make one. */
  password: string;
  /** restic: `KEY=VALUE` lines for its backend. */
  env: string;
}

export const EMPTY_TARGET_FORM: TargetForm = {
  name: "",
  kind: "path",
  location: "",
  password: "",
  env: "",
};

/** The form as the API's body, or the first thing to fix (the daemon checks again). */
export function targetBody(form: TargetForm): AddBackupTargetBody | { missing: MessageKey } {
  const name = form.name.trim();
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name)) return { missing: "backups.missing.name" };
  const location = form.location.trim();
  if (location === "") return { missing: "backups.missing.location" };
  if (form.kind !== "restic") return { name, kind: form.kind, location };
  if (form.password !== "" && form.password.length < 8) {
    return { missing: "backups.missing.password" };
  }
  const env: Record<string, string> = {};
  for (const line of form.env.split("\n")) {
    if (line.trim() === "") continue;
    const match = /^\s*([A-Z][A-Z0-9_]{0,63})=(.*)$/.exec(line);
    if (!match?.[1]) return { missing: "backups.missing.env" };
    env[match[1]] = match[2] ?? "";
  }
  return {
    name,
    kind: "restic",
    location,
    ...(form.password === "" ? {} : { password: form.password }),
    ...(Object.keys(env).length === 0 ? {} : { env }),
  };
}

/** The bytes only a restore point holds; null when the storage cannot tell for any volume. */
export function restorePointBytes(point: RestorePointView): number | null {
  const known = point.volumes.flatMap((v) => (v.exclusiveBytes === null ? [] : [v.exclusiveBytes]));
  return known.length === 0 ? null : known.reduce((a, b) => a + b, 0);
}

export function restorePointSizeText(point: RestorePointView): string {
  const bytes = restorePointBytes(point);
  return bytes === null ? "–" : formatBytes(bytes);
}

/** What "Roll back" returns to: the newest point taken before an upgrade (the daemon's default too). */
export function rollbackPoint(points: readonly RestorePointView[]): RestorePointView | undefined {
  return [...points].sort((a, b) => b.createdAt - a.createdAt).find((p) => p.reason === "upgrade");
}

/** "just now", "5 min ago", "2 h ago", "3 d ago"; the future "in 2 h". */
export function agoText(ms: number, now: number): string {
  const seconds = Math.round((now - ms) / 1000);
  const size = Math.abs(seconds);
  if (size < 5) return t("backups.justNow");
  const amount =
    size < 60
      ? t("backups.seconds", { count: size })
      : size < 3600
        ? t("backups.minutes", { count: Math.floor(size / 60) })
        : size < 48 * 3600
          ? t("backups.hours", { count: Math.floor(size / 3600) })
          : t("backups.days", { count: Math.floor(size / 86_400) });
  return seconds > 0 ? t("backups.ago", { amount }) : t("backups.in", { amount });
}

/** A run's badge and words: what it is doing, how much it sent, or why it failed. */
export function runStatus(run: BackupRunView): {
  badge: "starting" | "running" | "failed";
  label: string;
  detail: string | null;
} {
  switch (run.state) {
    case "running":
      return { badge: "starting", label: t("backups.run.running"), detail: run.step };
    case "failed":
      return { badge: "failed", label: t("backups.run.failed"), detail: run.error };
    case "ok":
      return {
        badge: "running",
        label: t("backups.run.ok"),
        detail: run.bytes === null ? null : formatBytes(run.bytes),
      };
  }
}

/** One repository, setting, volume or app of a whole-box restore, as its result lists it. */
export interface BoxRestorePart {
  part: "repository" | "setting" | "volume" | "app";
  name: string;
  failed: boolean;
  /** What was done, or why it failed. */
  words: string;
}

/** A whole-box restore part by part, in the order the daemon did them. */
export function boxRestoreParts(result: RestoreBoxResult): BoxRestorePart[] {
  const failure = (error: string | null): string => error ?? t("backups.box.unknownError");
  return [
    ...result.repositories.map((r) => ({
      part: "repository" as const,
      name: `${r.name} (${r.url})`,
      failed: r.state === "failed",
      words: r.state === "failed" ? failure(r.error) : t(`backups.box.repository.${r.state}`),
    })),
    ...result.settings.map((s) => ({
      part: "setting" as const,
      name: s.key,
      failed: !s.ok,
      words: s.ok ? t("backups.box.setting.set") : failure(s.error),
    })),
    ...result.volumes.map((v) => ({
      part: "volume" as const,
      name: v.volume,
      failed: v.state === "failed",
      words: v.state === "failed" ? failure(v.error) : t(`backups.box.volume.${v.state}`),
    })),
    ...result.apps.map((a) => ({
      part: "app" as const,
      name: a.app,
      failed: a.state === "failed",
      words:
        a.state === "failed"
          ? failure(a.error)
          : a.kept === null
            ? t("backups.box.app.restored", { version: a.version })
            : t("backups.box.app.restoredKept", { version: a.version, kept: a.kept }),
    })),
  ];
}
