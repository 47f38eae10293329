import type { BackupOverview, BackupPolicyView, BackupRunView } from "@townos/api";
import type { Clock } from "../clock.js";
import { sql, type Db } from "./database.js";

export type BackupTrigger = BackupRunView["trigger"];

/** A backup run as recorded (observed facts). */
export interface BackupRunRecord {
  id: number;
  subject: string;
  /** Null: a restore point only. */
  target: string | null;
  trigger: BackupTrigger;
  state: BackupRunView["state"];
  error: string | null;
  restorePoint: string | null;
  bytes: number | null;
  startedAt: number;
  finishedAt: number | null;
}

/** How a run ended. */
export interface BackupRunEnd {
  state: "ok" | "failed";
  error: string | null;
  restorePoint: string | null;
  bytes: number | null;
  finishedAt: number;
}

/** Runs kept: older ones are deleted as new ones start. */
export const KEPT_RUNS = 500;

/** Runs of a subject started this close to each other are one run (one record per target). */
const SAME_RUN_MS = 1000;

/** Why a run left `running` by a crash failed. */
export const INTERRUPTED = "the daemon stopped during the run";

interface Row {
  id: number;
  subject: string;
  target: string | null;
  trigger: string;
  state: string;
  error: string | null;
  restore_point: string | null;
  bytes: number | null;
  started_at: number;
  finished_at: number | null;
}

/** What backup runs did, newest kept (`KEPT_RUNS`). */
export class BackupRuns {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /** Records a run that starts now; answers its id. Deletes the oldest finished runs past `KEPT_RUNS`. */
  start(subject: string, target: string | null, trigger: BackupTrigger): number {
    const id = Number(
      sql(
        this.db,
        `INSERT INTO backup_runs (subject, target, trigger, state, started_at)
         VALUES (?, ?, ?, 'running', ?)`,
      ).run(subject, target, trigger, this.clock()).lastInsertRowid,
    );
    sql(
      this.db,
      `DELETE FROM backup_runs WHERE state != 'running' AND id NOT IN
         (SELECT id FROM backup_runs ORDER BY id DESC LIMIT ?)`,
    ).run(KEPT_RUNS);
    return id;
  }

  finish(id: number, end: BackupRunEnd): void {
    sql(
      this.db,
      `UPDATE backup_runs SET state = ?, error = ?, restore_point = ?, bytes = ?, finished_at = ?
       WHERE id = ?`,
    ).run(end.state, end.error, end.restorePoint, end.bytes, end.finishedAt, id);
  }

  /**
   * Marks the runs a crash left `running` failed: no run goes on across a
   * daemon start. Call once at start, before any run. Answers how many.
   */
  failInterrupted(): number {
    return sql(
      this.db,
      `UPDATE backup_runs SET state = 'failed', error = ?, finished_at = ? WHERE state = 'running'`,
    ).run(INTERRUPTED, this.clock()).changes;
  }

  get(id: number): BackupRunRecord | undefined {
    const row = sql(this.db, "SELECT * FROM backup_runs WHERE id = ?").get(id) as Row | undefined;
    return row && toRecord(row);
  }

  /** The newest runs first. */
  list(limit = 50): BackupRunRecord[] {
    return (
      sql(this.db, "SELECT * FROM backup_runs ORDER BY started_at DESC, id DESC LIMIT ?").all(
        limit,
      ) as Row[]
    ).map(toRecord);
  }

  /**
   * How the subject's last finished run went: the newest finished record
   * and those started with it (one per target), ok when all were. Null before the first.
   */
  lastFor(subject: string): BackupPolicyView["lastRun"] {
    const rows = sql(
      this.db,
      `SELECT * FROM backup_runs WHERE subject = ? AND state != 'running' AND started_at >=
         (SELECT MAX(started_at) FROM backup_runs WHERE subject = ? AND state != 'running') - ?
       ORDER BY id`,
    ).all(subject, subject, SAME_RUN_MS) as Row[];
    if (rows.length === 0) return null;
    const failed = rows.find((row) => row.state === "failed");
    return {
      at: Math.max(...rows.map((row) => row.finished_at ?? row.started_at)),
      ok: failed === undefined,
      error: failed ? (failed.error ?? "failed") : null,
    };
  }

  /** When a run of the subject with this trigger last started (running ones too); undefined: never. */
  lastStartedAt(subject: string, trigger: BackupTrigger): number | undefined {
    const row = sql(
      this.db,
      "SELECT MAX(started_at) AS at FROM backup_runs WHERE subject = ? AND trigger = ?",
    ).get(subject, trigger) as { at: number | null };
    return row.at ?? undefined;
  }

  /**
   * Per subject and target, the newest finished run when it failed: what
   * Home shows until a later run of the same subject and target succeeds.
   * Newest first.
   */
  failures(): BackupOverview["failures"] {
    const rows = sql(
      this.db,
      `SELECT subject, target, error, finished_at FROM (
         SELECT *, ROW_NUMBER() OVER (
           PARTITION BY subject, target ORDER BY started_at DESC, id DESC) AS newest
         FROM backup_runs WHERE state != 'running')
       WHERE newest = 1 AND state = 'failed'
       ORDER BY finished_at DESC, subject`,
    ).all() as Pick<Row, "subject" | "target" | "error" | "finished_at">[];
    return rows.map((row) => ({
      subject: row.subject,
      target: row.target,
      error: row.error ?? "failed",
      at: row.finished_at ?? 0,
    }));
  }
}

/** The run as the API shows it; `step` is what a running run does now (kept by the runner, not stored). */
export function runView(run: BackupRunRecord, step: string | null): BackupRunView {
  return { ...run, step: run.state === "running" ? step : null };
}

function toRecord(row: Row): BackupRunRecord {
  return {
    id: row.id,
    subject: row.subject,
    target: row.target,
    trigger: row.trigger as BackupTrigger,
    state: row.state as BackupRunRecord["state"],
    error: row.error,
    restorePoint: row.restore_point,
    bytes: row.bytes,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}
