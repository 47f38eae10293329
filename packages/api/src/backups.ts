import { Type, type Static } from "@sinclair/typebox";
import { Nullable, StringEnum } from "./schema.js";

/**
 * Why a restore point was taken. The daemon takes one by itself before every
 * change that could lose data (`upgrade`, `reinstall` over old data, `quota`,
 * `upload`, and `rollback`/`restore`, which keep the state they replace), on
 * a policy's schedule (`schedule`), and when a person asks (`manual`).
 */
export const RESTORE_POINT_REASONS = [
  "manual",
  "upgrade",
  "reinstall",
  "quota",
  "upload",
  "rollback",
  "restore",
  "schedule",
] as const;
export type RestorePointReason = (typeof RESTORE_POINT_REASONS)[number];

/** A restore point's id: the name of the snapshot it took of each volume (`YYYYMMDDTHHMMSSZ-<reason>[-N]`). */
export const RestorePointIdParam = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: "^[a-zA-Z0-9][a-zA-Z0-9._-]*$",
});

/**
 * The subject of a whole-box backup: the desired state (package
 * repositories, settings) with every installed app and every person's
 * volume. Neither an app (`repo/name`) nor a volume name (those have a prefix).
 */
export const BOX_SUBJECT = "box";

/** What a restore point or backup is of: an app (`repo/name`), a volume (its full name) or `box`. */
export const BackupSubjectParam = Type.String({ minLength: 1, maxLength: 255 });

export const RestorePointVolumeSchema = Type.Object({
  volume: Type.String(),
  /** The snapshot's name: the restore point's id. */
  snapshot: Type.String(),
  /** False once the snapshot is gone (deleted by hand, or with its volume). */
  present: Type.Boolean(),
  /** Bytes only this snapshot holds (freed by deleting it); null when the storage cannot tell. */
  exclusiveBytes: Nullable(Type.Integer()),
});
export type RestorePointVolume = Static<typeof RestorePointVolumeSchema>;

/**
 * Read-only snapshots of an app's volumes (or of one volume) taken together,
 * with what the app was then: enough to return to it.
 */
export const RestorePointViewSchema = Type.Object({
  id: Type.String(),
  /** `repo/name` of an app, or a volume's name. */
  subject: Type.String(),
  app: Nullable(Type.Object({ repo: Type.String(), name: Type.String() })),
  reason: StringEnum(RESTORE_POINT_REASONS),
  /** The app's version then; null for a volume of no app. */
  version: Nullable(Type.String()),
  /** The app's answers then (secrets included: admin-only routes); null for a volume of no app. */
  answers: Nullable(Type.Record(Type.String(), Type.String())),
  /** How the app was quiesced: `stop`ped, a `command` run in it, or `none` (crash-consistent). */
  quiesce: StringEnum(["none", "stop", "command"]),
  createdAt: Type.Integer(),
  volumes: Type.Array(RestorePointVolumeSchema),
});
export type RestorePointView = Static<typeof RestorePointViewSchema>;

export const TakeRestorePointBody = Type.Object(
  { subject: BackupSubjectParam },
  { additionalProperties: false },
);
export type TakeRestorePointBody = Static<typeof TakeRestorePointBody>;

export const RollbackBody = Type.Object(
  {
    /** The restore point to return to; absent: the newest one taken before an upgrade. */
    to: Type.Optional(RestorePointIdParam),
  },
  { additionalProperties: false },
);
export type RollbackBody = Static<typeof RollbackBody>;

export const RollbackResultSchema = Type.Object({
  /** The restore point the app is back at. */
  restoredFrom: RestorePointViewSchema,
  /** The restore point that keeps the state the rollback replaced. */
  kept: RestorePointViewSchema,
  /** The app's version now. */
  version: Type.String(),
});
export type RollbackResult = Static<typeof RollbackResultSchema>;

/**
 * How many restore points (or backups) a policy keeps: the newest `last`, and
 * the newest one of each of the newest `hourly` hours, `daily` days, `weekly`
 * ISO weeks and `monthly` months (UTC) that have one. Written `hourly=24,daily=7,weekly=4`.
 */
export const KeepPolicySchema = Type.Object(
  {
    last: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    hourly: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    daily: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    weekly: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    monthly: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
  },
  { additionalProperties: false },
);
export type KeepPolicy = Static<typeof KeepPolicySchema>;

export const BACKUP_TARGET_KINDS = ["path", "btrfs", "restic"] as const;
export type BackupTargetKind = (typeof BACKUP_TARGET_KINDS)[number];

export const BackupTargetNameParam = Type.String({
  minLength: 1,
  maxLength: 63,
  pattern: "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
});

/**
 * Where backups go off the box. `path`: a directory (another disk) holding
 * compressed archives; `btrfs`: a directory on another btrfs file system
 * receiving snapshots (`btrfs send`, incremental from the last common one);
 * `restic`: a restic repository (a local path, `sftp:…`, `s3:…`), encrypted.
 */
export const BackupTargetViewSchema = Type.Object({
  name: Type.String(),
  kind: StringEnum(BACKUP_TARGET_KINDS),
  /** The directory or restic repository, without credentials. */
  location: Type.String(),
  /** The last check or run: null before the first. */
  status: Nullable(
    Type.Object({
      ok: Type.Boolean(),
      error: Nullable(Type.String()),
      at: Type.Integer(),
    }),
  ),
  createdAt: Type.Integer(),
});
export type BackupTargetView = Static<typeof BackupTargetViewSchema>;

export const AddBackupTargetBody = Type.Object(
  {
    name: BackupTargetNameParam,
    kind: StringEnum(BACKUP_TARGET_KINDS),
    location: Type.String({ minLength: 1, maxLength: 4096 }),
    /** restic: the repository's password; absent: one is made and answered once. */
    password: Type.Optional(Type.String({ minLength: 8, maxLength: 1024 })),
    /** restic: credentials its backend reads from the environment (e.g. AWS_ACCESS_KEY_ID); never shown. */
    env: Type.Optional(
      Type.Record(
        Type.String({ pattern: "^[A-Z][A-Z0-9_]{0,63}$" }),
        Type.String({ maxLength: 4096 }),
      ),
    ),
  },
  { additionalProperties: false },
);
export type AddBackupTargetBody = Static<typeof AddBackupTargetBody>;

export const AddBackupTargetResultSchema = Type.Object({
  target: BackupTargetViewSchema,
  /** restic: the password made for it, answered this once; null when one was given. */
  password: Nullable(Type.String()),
});
export type AddBackupTargetResult = Static<typeof AddBackupTargetResultSchema>;

/** A policy: restore points of a subject on a schedule, kept by `keep`, each also sent to `targets`. */
export const BackupPolicyViewSchema = Type.Object({
  subject: Type.String(),
  /** Five-field cron expression, in UTC. */
  schedule: Type.String(),
  keep: KeepPolicySchema,
  targets: Type.Array(Type.String()),
  /** When it runs next (ms since the epoch); null when it never will. */
  nextRunAt: Nullable(Type.Integer()),
  /** The last run, or null before the first. */
  lastRun: Nullable(
    Type.Object({
      at: Type.Integer(),
      ok: Type.Boolean(),
      error: Nullable(Type.String()),
    }),
  ),
});
export type BackupPolicyView = Static<typeof BackupPolicyViewSchema>;

export const SetBackupPolicyBody = Type.Object(
  {
    subject: BackupSubjectParam,
    schedule: Type.String({ minLength: 1, maxLength: 128 }),
    keep: KeepPolicySchema,
    targets: Type.Optional(Type.Array(BackupTargetNameParam, { maxItems: 16 })),
  },
  { additionalProperties: false },
);
export type SetBackupPolicyBody = Static<typeof SetBackupPolicyBody>;

/** One backup held by a target. */
export const BackupViewSchema = Type.Object({
  /** The restore point it was made from: its id. */
  id: Type.String(),
  target: Type.String(),
  subject: Type.String(),
  app: Nullable(Type.Object({ repo: Type.String(), name: Type.String(), version: Type.String() })),
  createdAt: Type.Integer(),
  volumes: Type.Array(Type.String()),
  /** Bytes written to the target for it; null when the target cannot tell. */
  bytes: Nullable(Type.Integer()),
  /** Sent as changes from an earlier backup rather than whole. */
  incremental: Type.Boolean(),
});
export type BackupView = Static<typeof BackupViewSchema>;

export const BACKUP_RUN_STATES = ["running", "ok", "failed"] as const;

/** One backup run: a restore point taken and sent to one target. */
export const BackupRunViewSchema = Type.Object({
  id: Type.Integer(),
  subject: Type.String(),
  target: Nullable(Type.String()),
  /** What started it. */
  trigger: StringEnum(["schedule", "manual"]),
  state: StringEnum(BACKUP_RUN_STATES),
  /** While running: what it is doing now, e.g. "sending pkg.main.wiki.data (40 %)". */
  step: Nullable(Type.String()),
  error: Nullable(Type.String()),
  restorePoint: Nullable(Type.String()),
  bytes: Nullable(Type.Integer()),
  startedAt: Type.Integer(),
  finishedAt: Nullable(Type.Integer()),
});
export type BackupRunView = Static<typeof BackupRunViewSchema>;

export const RunBackupBody = Type.Object(
  {
    /** Absent: every subject that has a policy. */
    subject: Type.Optional(BackupSubjectParam),
    /** Absent: the policy's targets (none: a restore point only). */
    target: Type.Optional(BackupTargetNameParam),
  },
  { additionalProperties: false },
);
export type RunBackupBody = Static<typeof RunBackupBody>;

export const RestoreBackupBody = Type.Object(
  {
    /** `repo/name` of the app the backup is of. */
    app: BackupSubjectParam,
    target: BackupTargetNameParam,
    /** The backup's id; absent: the newest of the app on the target. */
    at: Type.Optional(RestorePointIdParam),
    /** Install it beside the app under a new name (`<name>-restored`) instead of replacing it. */
    asNew: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type RestoreBackupBody = Static<typeof RestoreBackupBody>;

export const RestoreBackupResultSchema = Type.Object({
  /** The app restored: `repo/name` (the new name with `asNew`). */
  app: Type.String(),
  version: Type.String(),
  backup: BackupViewSchema,
  /** The restore point keeping what the restore replaced; null when nothing was there. */
  kept: Nullable(Type.String()),
});
export type RestoreBackupResult = Static<typeof RestoreBackupResultSchema>;

export const RestoreBoxBody = Type.Object(
  {
    target: BackupTargetNameParam,
    /** The box backup's id; absent: the newest box backup on the target. */
    at: Type.Optional(RestorePointIdParam),
  },
  { additionalProperties: false },
);
export type RestoreBoxBody = Static<typeof RestoreBoxBody>;

/** What a restore of the whole box did, part by part: one part failing does not stop the others. */
export const RestoreBoxResultSchema = Type.Object({
  backup: BackupViewSchema,
  repositories: Type.Array(
    Type.Object({
      name: Type.String(),
      /** Without credentials: a repository that had some must be given them again. */
      url: Type.String(),
      /** `present`: one of that name was there already and is kept as it is. */
      state: StringEnum(["added", "present", "failed"]),
      error: Nullable(Type.String()),
    }),
  ),
  /** The settings set to the backed-up values (those changed from their defaults then). */
  settings: Type.Array(
    Type.Object({ key: Type.String(), ok: Type.Boolean(), error: Nullable(Type.String()) }),
  ),
  /** People's volumes (apps' volumes come back with their apps). */
  volumes: Type.Array(
    Type.Object({
      volume: Type.String(),
      /** `present`: a volume of that name was there and is left as it is. */
      state: StringEnum(["restored", "present", "failed"]),
      error: Nullable(Type.String()),
    }),
  ),
  apps: Type.Array(
    Type.Object({
      app: Type.String(),
      version: Type.String(),
      state: StringEnum(["restored", "failed"]),
      /** The restore point keeping what an in-place restore replaced. */
      kept: Nullable(Type.String()),
      error: Nullable(Type.String()),
    }),
  ),
});
export type RestoreBoxResult = Static<typeof RestoreBoxResultSchema>;

/** The backups screen in one answer. */
export const BackupOverviewSchema = Type.Object({
  targets: Type.Array(BackupTargetViewSchema),
  policies: Type.Array(BackupPolicyViewSchema),
  /** The newest runs first (at most 50). */
  runs: Type.Array(BackupRunViewSchema),
  /** Subjects whose last run failed, with why: shown on Home. */
  failures: Type.Array(
    Type.Object({
      subject: Type.String(),
      target: Nullable(Type.String()),
      error: Type.String(),
      at: Type.Integer(),
    }),
  ),
});
export type BackupOverview = Static<typeof BackupOverviewSchema>;
