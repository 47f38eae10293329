import type { CompiledPackage } from "@townos/format";
import type { RestorePointReason } from "@townos/api";
import type { ExposureLevel } from "./installs.js";
import { sql, type Db } from "./database.js";

/** How an app was quiesced for a restore point. */
export type Quiesce = "none" | "stop" | "command";

/** An app as a restore point records it. */
export interface PointApp {
  repo: string;
  name: string;
  version: string;
  definitionHash: string;
  answers: Record<string, string>;
  plan: CompiledPackage | null;
}

/** An app as a whole-box restore point records it: with what a person chose for it. */
export interface BoxApp extends PointApp {
  /** False when a person had stopped it. */
  running: boolean;
  /** Host port → exposure, where a person changed it. */
  exposures: Record<string, ExposureLevel>;
}

/** What a whole-box restore point records besides its volumes: the box's desired state then. */
export interface BoxState {
  apps: BoxApp[];
  /** Package repositories in their order; `url` as configured (the manifest strips credentials). */
  repositories: { name: string; url: string; credentials: boolean }[];
  /** The settings changed from their defaults. */
  settings: Record<string, number | string | boolean>;
}

/** A restore point as recorded: which snapshots were taken together, and what the app was then. */
export interface RestorePointRecord {
  /** Also the name of each volume's snapshot. */
  id: string;
  /** `repo/name` of an app, or a volume's name. */
  subject: string;
  /** The app whose volumes these are; null for a volume of no app. */
  app: PointApp | null;
  /** Only for the subject `box`. */
  box?: BoxState;
  reason: RestorePointReason;
  quiesce: Quiesce;
  /** The volumes snapshotted, by name. */
  volumes: string[];
  createdAt: number;
}

interface Row {
  id: string;
  subject: string;
  repo: string | null;
  name: string | null;
  reason: string;
  version: string | null;
  definition_hash: string | null;
  answers: string | null;
  plan: string | null;
  quiesce: string;
  volumes: string;
  created_at: number;
  box: string | null;
}

/** The record of restore points; the snapshots themselves are the storage driver's. */
export class RestorePoints {
  constructor(private readonly db: Db) {}

  add(point: RestorePointRecord): void {
    sql(
      this.db,
      `INSERT INTO restore_points
         (id, subject, repo, name, reason, version, definition_hash, answers, plan, quiesce, volumes, created_at, box)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      point.id,
      point.subject,
      point.app?.repo ?? null,
      point.app?.name ?? null,
      point.reason,
      point.app?.version ?? null,
      point.app?.definitionHash ?? null,
      point.app ? JSON.stringify(point.app.answers) : null,
      point.app?.plan ? JSON.stringify(point.app.plan) : null,
      point.quiesce,
      JSON.stringify(point.volumes),
      point.createdAt,
      point.box ? JSON.stringify(point.box) : null,
    );
  }

  /** The subject's restore points (every one without a subject), newest first. */
  list(subject?: string): RestorePointRecord[] {
    const rows = (
      subject === undefined
        ? sql(this.db, "SELECT * FROM restore_points ORDER BY created_at DESC, id DESC").all()
        : sql(
            this.db,
            "SELECT * FROM restore_points WHERE subject = ? ORDER BY created_at DESC, id DESC",
          ).all(subject)
    ) as Row[];
    return rows.map(toRecord);
  }

  get(subject: string, id: string): RestorePointRecord | undefined {
    const row = sql(this.db, "SELECT * FROM restore_points WHERE subject = ? AND id = ?").get(
      subject,
      id,
    ) as Row | undefined;
    return row && toRecord(row);
  }

  /** False when there was none. */
  remove(subject: string, id: string): boolean {
    return (
      sql(this.db, "DELETE FROM restore_points WHERE subject = ? AND id = ?").run(subject, id)
        .changes > 0
    );
  }
}

function toRecord(row: Row): RestorePointRecord {
  return {
    id: row.id,
    subject: row.subject,
    app:
      row.repo !== null && row.name !== null
        ? {
            repo: row.repo,
            name: row.name,
            version: row.version ?? "",
            definitionHash: row.definition_hash ?? "",
            answers: JSON.parse(row.answers ?? "{}") as Record<string, string>,
            plan: row.plan === null ? null : (JSON.parse(row.plan) as CompiledPackage),
          }
        : null,
    reason: row.reason as RestorePointReason,
    quiesce: row.quiesce as Quiesce,
    volumes: JSON.parse(row.volumes) as string[],
    createdAt: row.created_at,
    ...(row.box === null ? {} : { box: JSON.parse(row.box) as BoxState }),
  };
}
