/**
 * Fires backup policies on their schedules: the reconcile manager's kind
 * `backups`, one key per policy (`backups/<subject>`; a subject's `/` is
 * fine, the manager splits a key at its first `/` only).
 *
 * A policy is due at the first slot of its schedule after the later of when
 * it was set and when its last scheduled run started. Reconciling a key runs
 * the policy when it is due, then looks again at the next slot, or within
 * an hour so that a clock that jumped is noticed. A daemon that was down
 * over several slots runs a policy once at start, not once per slot missed;
 * slots that pass while a run goes on are skipped too.
 */
import type { Clock } from "../clock.js";
import type { Manager } from "../reconcile/manager.js";
import type { ReconcileResult } from "../reconcile/queue.js";
import type { BackupPolicies, BackupPolicyRecord } from "../store/backup-policies.js";
import type { BackupRuns } from "../store/backup-runs.js";
import { nextRun } from "./schedule.js";

export const BACKUPS = "backups";

/** The longest the scheduler sleeps between looks at a policy (well below setTimeout's 24.8 days). */
export const MAX_SLEEP_MS = 60 * 60_000;

export interface BackupSchedulerOptions {
  manager: Manager;
  policies: Pick<BackupPolicies, "get" | "list">;
  runs: Pick<BackupRuns, "lastStartedAt">;
  /** Takes the subject's restore point, sends it to the policy's targets and prunes; records its runs. */
  runPolicy: (subject: string) => Promise<void>;
  clock: Clock;
  log?: (message: string, fields: Record<string, unknown>) => void;
}

export class BackupScheduler {
  /** Subject → when this daemon's last run of it ended: the runs table knows only starts. */
  private readonly ended = new Map<string, number>();
  private started = false;

  constructor(private readonly options: BackupSchedulerOptions) {
    options.manager.register(
      BACKUPS,
      {
        reconcile: (subject) => this.reconcile(subject),
        onError: (subject, error, failure) => {
          options.log?.("scheduled backup failed", {
            subject,
            error: error instanceof Error ? error.message : String(error),
            attempt: failure.attempt,
          });
        },
      },
      // Runs of different subjects may overlap; storage and targets serialize what must be.
      { concurrency: 2 },
    );
  }

  /** Starts firing policies: every one is looked at now (those overdue run once). */
  start(): void {
    this.started = true;
    this.policiesChanged();
  }

  /** Tells the scheduler a policy was set or removed (every one when no subject is given). */
  policiesChanged(subject?: string): void {
    if (!this.started) return;
    const subjects =
      subject === undefined ? this.options.policies.list().map((p) => p.subject) : [subject];
    for (const one of subjects) this.options.manager.enqueue(`${BACKUPS}/${one}`);
  }

  /**
   * When the subject's policy runs next (ms since the epoch): now when it
   * is overdue (about to run, or running); null without a policy or when
   * its schedule never fires again.
   */
  nextRunAt(subject: string): number | null {
    const policy = this.options.policies.get(subject);
    const due = policy ? this.dueAt(policy) : null;
    return due === null ? null : Math.max(due, this.options.clock());
  }

  /** Stops firing and waits for runs going on. */
  async stop(): Promise<void> {
    await this.options.manager.stop(BACKUPS);
  }

  private async reconcile(subject: string): Promise<ReconcileResult | undefined> {
    const { policies, clock } = this.options;
    let policy = policies.get(subject);
    if (!policy) {
      this.ended.delete(subject);
      return undefined;
    }
    const due = this.dueAt(policy);
    if (due !== null && due <= clock()) {
      try {
        await this.options.runPolicy(subject);
      } finally {
        // Set even when the run threw: it is tried again at the next slot, not at once.
        this.ended.set(subject, clock());
      }
      policy = policies.get(subject);
      if (!policy) return undefined;
    }
    const next = this.dueAt(policy);
    if (next === null) return undefined;
    return { requeueAfterMs: Math.min(MAX_SLEEP_MS, Math.max(1, next - clock())) };
  }

  private dueAt(policy: BackupPolicyRecord): number | null {
    const from = Math.max(
      policy.createdAt,
      this.options.runs.lastStartedAt(policy.subject, "schedule") ?? -Infinity,
      this.ended.get(policy.subject) ?? -Infinity,
    );
    return nextRun(policy.schedule, from);
  }
}
