import type { BackupPolicyView, KeepPolicy } from "@townos/api";
import type { Clock } from "../clock.js";
import { checkKeepPolicy } from "../backup/keep.js";
import { checkSchedule } from "../backup/schedule.js";
import { sql, type Db } from "./database.js";

/** A backup policy as stored (desired state). */
export interface BackupPolicyRecord {
  /** An app's `repo/name` or a volume's name. */
  subject: string;
  /** Five-field cron in UTC, normalized by `checkSchedule`. */
  schedule: string;
  keep: KeepPolicy;
  /** Names of the targets each run is sent to. */
  targets: string[];
  /** When the policy was last set: its schedule counts from then. */
  createdAt: number;
}

interface Row {
  subject: string;
  schedule: string;
  keep: string;
  targets: string;
  created_at: number;
}

/** Per subject: when to take a restore point, how many to keep, where to send each. */
export class BackupPolicies {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /**
   * Adds or replaces the subject's policy. Setting it again counts its
   * schedule from now, so a changed schedule does not fire for a slot passed.
   * @throws `invalid_argument` for a bad schedule or keep policy
   */
  set(policy: Omit<BackupPolicyRecord, "createdAt">): BackupPolicyRecord {
    const record: BackupPolicyRecord = {
      subject: policy.subject,
      schedule: checkSchedule(policy.schedule),
      keep: checkKeepPolicy(policy.keep),
      targets: [...new Set(policy.targets)],
      createdAt: this.clock(),
    };
    sql(
      this.db,
      `INSERT INTO backup_policies (subject, schedule, keep, targets, created_at)
       VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (subject) DO UPDATE SET
         schedule = excluded.schedule, keep = excluded.keep,
         targets = excluded.targets, created_at = excluded.created_at`,
    ).run(
      record.subject,
      record.schedule,
      JSON.stringify(record.keep),
      JSON.stringify(record.targets),
      record.createdAt,
    );
    return record;
  }

  get(subject: string): BackupPolicyRecord | undefined {
    const row = sql(this.db, "SELECT * FROM backup_policies WHERE subject = ?").get(subject) as
      Row | undefined;
    return row && toRecord(row);
  }

  /** Every policy, by subject. */
  list(): BackupPolicyRecord[] {
    return (sql(this.db, "SELECT * FROM backup_policies ORDER BY subject").all() as Row[]).map(
      toRecord,
    );
  }

  /** False when there was none. */
  remove(subject: string): boolean {
    return sql(this.db, "DELETE FROM backup_policies WHERE subject = ?").run(subject).changes > 0;
  }
}

/** The policy as the API shows it, with when it runs next and how it last went. */
export function policyView(
  policy: BackupPolicyRecord,
  nextRunAt: number | null,
  lastRun: BackupPolicyView["lastRun"],
): BackupPolicyView {
  return {
    subject: policy.subject,
    schedule: policy.schedule,
    keep: policy.keep,
    targets: policy.targets,
    nextRunAt,
    lastRun,
  };
}

function toRecord(row: Row): BackupPolicyRecord {
  return {
    subject: row.subject,
    schedule: row.schedule,
    keep: JSON.parse(row.keep) as KeepPolicy,
    targets: JSON.parse(row.targets) as string[],
    createdAt: row.created_at,
  };
}
