/**
 * One backup run of a subject: a restore point taken (quiesced as its
 * package says), sent to each target, then what the policy no longer keeps
 * pruned there and on the box. Runs of the same subject wait for each other.
 *
 * A send that fails marks its run and its target failed with the reason and
 * changes nothing else: the restore point stays, nothing is pruned (the box
 * keeps its restore points while they are not off the box).
 */
import type { KeepPolicy, RestorePointReason } from "@townos/api";
import { redactText } from "../redact.js";
import type { RestorePointRecord } from "../store/restore-points.js";
import { targetSecrets, type BackupContext } from "./context.js";
import { errorText } from "../error-text.js";
import { selectKept } from "./keep.js";
import { buildManifest } from "./manifest.js";
import type { TargetProgress } from "./types.js";

/** What a run does: which subject, where to, and whether a policy's keep applies. */
export interface RunPlan {
  subject: string;
  trigger: "schedule" | "manual";
  /** A policy's run: its restore point is a `schedule` one, and `keep` prunes after it. */
  keep: KeepPolicy | null;
  /** One run record per target; `target` null: a restore point only. */
  runs: { id: number; target: string | null }[];
}

export class BackupRunner {
  /** Run id → what it is doing now. */
  private readonly steps = new Map<number, string>();
  private readonly stopping = new AbortController();

  constructor(private readonly context: BackupContext) {}

  /** What the run is doing now; null once it is done (or was never seen by this daemon). */
  step(id: number): string | null {
    return this.steps.get(id) ?? null;
  }

  /** Runs the plan; never throws (failures are recorded on the runs and targets). */
  async run(plan: RunPlan): Promise<void> {
    const release = await this.context.subjects.acquire(plan.subject);
    try {
      await this.runHeld(plan);
    } finally {
      for (const { id } of plan.runs) this.steps.delete(id);
      release();
    }
  }

  /** Aborts what runs and waits for it to end. */
  async stop(): Promise<void> {
    this.stopping.abort(new Error("the daemon is stopping"));
    await this.context.subjects.idle();
  }

  private async runHeld(plan: RunPlan): Promise<void> {
    const { runs, restorePoints } = this.context.options;
    const clock = this.context.options.clock;
    for (const { id } of plan.runs) this.steps.set(id, "taking restore point");
    const reason: RestorePointReason = plan.keep ? "schedule" : "manual";
    let point: RestorePointRecord;
    try {
      this.stopping.signal.throwIfAborted();
      this.context.storage();
      point = await restorePoints.take(plan.subject, reason);
    } catch (error) {
      for (const { id } of plan.runs) {
        runs.finish(id, {
          state: "failed",
          error: `taking a restore point failed: ${errorText(error)}`,
          restorePoint: null,
          bytes: null,
          finishedAt: clock(),
        });
      }
      return;
    }
    let allSent = true;
    for (const { id, target } of plan.runs) {
      if (target === null) {
        runs.finish(id, {
          state: "ok",
          error: null,
          restorePoint: point.id,
          bytes: null,
          finishedAt: clock(),
        });
        continue;
      }
      const sent = await this.send(id, target, point, plan.keep);
      allSent &&= sent;
    }
    if (plan.keep && allSent) await this.pruneLocal(plan.subject, plan.keep);
  }

  /** Sends the restore point to one target and prunes there; true when it all worked. */
  private async send(
    id: number,
    targetName: string,
    point: RestorePointRecord,
    keep: KeepPolicy | null,
  ): Promise<boolean> {
    const { runs, targets, restorePoints, apps, repositories, clock } = this.context.options;
    let secrets: string[] = [];
    try {
      const { config, driver } = this.context.target(targetName);
      secrets = targetSecrets(config);
      const manifest = await buildManifest(point, {
        box: apps.box,
        storage: this.context.storage(),
        repositoryUrl: (repo) => repositories.list().find((r) => r.name === repo)?.url,
      });
      const options = {
        signal: this.stopping.signal,
        progress: (progress: TargetProgress) => {
          this.steps.set(id, progressText(progress));
        },
      };
      const { bytes } = await driver.put(manifest, await restorePoints.sources(point), options);
      if (keep) {
        this.steps.set(id, "pruning");
        const held = (await driver.list(options)).filter(
          (backup) => backup.manifest.subject === point.subject,
        );
        const { prune } = selectKept(
          held.map(({ manifest: m }) => ({ id: m.id, createdAt: m.createdAt })),
          keep,
        );
        for (const old of prune) await driver.remove(old, options);
      }
      runs.finish(id, {
        state: "ok",
        error: null,
        restorePoint: point.id,
        bytes,
        finishedAt: clock(),
      });
      targets.recordStatus(targetName, true, null);
      return true;
    } catch (error) {
      const text = redactText(errorText(error), secrets);
      this.context.options.log("backup run failed", {
        subject: point.subject,
        target: targetName,
        error: text,
      });
      runs.finish(id, {
        state: "failed",
        error: text,
        restorePoint: point.id,
        bytes: null,
        finishedAt: clock(),
      });
      // A target removed meanwhile has no status to keep.
      targets.recordStatus(targetName, false, text);
      return false;
    }
  }

  /** Deletes the subject's `schedule` restore points the policy no longer keeps. */
  private async pruneLocal(subject: string, keep: KeepPolicy): Promise<void> {
    const { restorePoints } = this.context.options;
    const scheduled = restorePoints.list(subject).filter((point) => point.reason === "schedule");
    const { prune } = selectKept(scheduled, keep);
    for (const id of prune) {
      try {
        await restorePoints.remove(subject, id);
      } catch (error) {
        this.context.options.log("pruning a restore point failed", {
          subject,
          restorePoint: id,
          error: errorText(error),
        });
      }
    }
  }
}

/** "sending pkg.main.wiki.data (40 %)". */
function progressText(progress: TargetProgress): string {
  const total = progress.totalBytes;
  if (total === undefined || total <= 0) return progress.step;
  const percent = Math.min(100, Math.floor((progress.bytes / total) * 100));
  return `${progress.step} (${String(percent)} %)`;
}
