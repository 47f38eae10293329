/**
 * The backup service: targets (added once checked, listed without secrets,
 * forgotten), policies (a subject's schedule, keep and targets), runs
 * (started now, done in the background, see `run.ts`), the backups a target
 * holds, restores (`restore-app.ts`) and the overview the backups screen shows.
 *
 * Storage is set up after the API is ready: until then, what needs it
 * answers `unavailable`.
 */
import { randomBytes } from "node:crypto";
import {
  BOX_SUBJECT,
  type AddBackupTargetBody,
  type AddBackupTargetResult,
  type BackupOverview,
  type BackupPolicyView,
  type BackupRunView,
  type BackupTargetView,
  type BackupView,
  type RestoreBackupBody,
  type RestoreBackupResult,
  type RestoreBoxBody,
  type RestoreBoxResult,
  type RunBackupBody,
  type SetBackupPolicyBody,
} from "@townos/api";
import { TownError } from "@townos/format";
import { redactText } from "../redact.js";
import { checkVolumeName } from "../storage/names.js";
import { policyView, type BackupPolicyRecord } from "../store/backup-policies.js";
import { runView, type BackupRunRecord } from "../store/backup-runs.js";
import type { BackupTargetRecord } from "../store/backup-targets.js";
import { BackupContext, targetSecrets, type BackupContextOptions } from "./context.js";
import { checkKeepPolicy } from "./keep.js";
import { AppRestorer } from "./restore-app.js";
import { BoxRestorer } from "./restore-box.js";
import { BackupRunner, type RunPlan } from "./run.js";
import { checkSchedule } from "./schedule.js";
import { checkTargetLocation, redactLocation } from "./targets/index.js";
import type { BackupTargetConfig } from "./types.js";
import { backupView } from "./views.js";

/** How long adding a target may take to check it (a restic repository is initialised). */
const PREPARE_TIMEOUT_MS = 120_000;
/** Runs the overview shows. */
const OVERVIEW_RUNS = 50;

export class Backups {
  private readonly context: BackupContext;
  private readonly runner: BackupRunner;
  private readonly restorer: AppRestorer;
  private readonly boxRestorer: BoxRestorer;
  /** Runs started in the background, for `stop`. */
  private readonly running = new Set<Promise<void>>();

  constructor(options: BackupContextOptions) {
    this.context = new BackupContext(options);
    this.runner = new BackupRunner(this.context);
    this.restorer = new AppRestorer(this.context);
    this.boxRestorer = new BoxRestorer(this.context, this.restorer, options.settings);
  }

  /** Storage is set up: policies fire from now on (overdue ones at once). */
  start(): void {
    this.context.options.scheduler.start();
  }

  /** Stops firing policies, aborts running backups and waits for them. */
  async stop(): Promise<void> {
    // Together: the scheduler's stop waits for a run that only the runner's stop aborts.
    await Promise.all([this.context.options.scheduler.stop(), this.runner.stop()]);
    await Promise.all(this.running);
  }

  // --- targets

  /**
   * Checks the location, prepares the target (a restic repository is
   * initialised) and records it. A restic target without a password gets
   * one, answered this once. @throws `invalid_argument`, `conflict`, `unavailable`, `io`
   */
  async addTarget(body: AddBackupTargetBody): Promise<AddBackupTargetResult> {
    const { targets, openTarget } = this.context.options;
    if (body.kind !== "restic" && (body.password !== undefined || body.env !== undefined)) {
      throw new TownError(
        "invalid_argument",
        `a ${body.kind} target takes no password or environment: only restic ones do`,
      );
    }
    checkTargetLocation(body.kind, body.location);
    if (targets.get(body.name)) {
      throw new TownError("conflict", `a backup target named ${body.name} exists already`);
    }
    const made = body.kind === "restic" && body.password === undefined;
    const config: BackupTargetConfig = {
      name: body.name,
      kind: body.kind,
      location: body.location,
      password:
        body.kind !== "restic" ? null : (body.password ?? randomBytes(24).toString("base64url")),
      env: body.env ?? {},
    };
    try {
      await openTarget(config).prepare({ signal: AbortSignal.timeout(PREPARE_TIMEOUT_MS) });
    } catch (error) {
      throw hideSecrets(error, config);
    }
    targets.add(config);
    targets.recordStatus(config.name, true, null);
    return { target: this.targetView(body.name), password: made ? config.password : null };
  }

  listTargets(): BackupTargetView[] {
    return this.context.options.targets.list().map(targetView);
  }

  /** Forgets the target; the backups on it stay. @throws `not_found` */
  removeTarget(name: string): void {
    const { targets, policies } = this.context.options;
    if (!targets.remove(name))
      throw new TownError("not_found", `there is no backup target ${name}`);
    // Policies stop sending there; what they keep on the box is unchanged.
    for (const policy of policies.list()) {
      if (policy.targets.includes(name)) {
        policies.set({ ...policy, targets: policy.targets.filter((t) => t !== name) });
      }
    }
  }

  /** The backups a target holds, oldest first. @throws `not_found`, `unavailable`, `io` */
  async targetBackups(name: string): Promise<BackupView[]> {
    const { config, driver } = this.context.target(name);
    try {
      const stored = await driver.list({ signal: AbortSignal.timeout(PREPARE_TIMEOUT_MS) });
      return stored
        .map((backup) => backupView(name, backup))
        .sort((a, b) => a.createdAt - b.createdAt);
    } catch (error) {
      throw hideSecrets(error, config);
    }
  }

  // --- policies

  /** Sets the subject's policy. @throws `not_found` (subject, target), `invalid_argument`, `unavailable` */
  async setPolicy(body: SetBackupPolicyBody): Promise<BackupPolicyView> {
    const { targets, policies } = this.context.options;
    await this.checkSubject(body.subject);
    const schedule = checkSchedule(body.schedule);
    const keep = checkKeepPolicy(body.keep);
    const names = [...new Set(body.targets ?? [])];
    for (const name of names) {
      if (!targets.get(name)) throw new TownError("not_found", `there is no backup target ${name}`);
    }
    policies.set({ subject: body.subject, schedule, keep, targets: names });
    this.context.options.scheduler.policiesChanged(body.subject);
    return this.policyView(body.subject);
  }

  /** @throws `not_found` */
  removePolicy(subject: string): void {
    if (!this.context.options.policies.remove(subject)) {
      throw new TownError("not_found", `${subject} has no backup policy`);
    }
    this.context.options.scheduler.policiesChanged(subject);
  }

  listPolicies(): BackupPolicyView[] {
    return this.context.options.policies.list().map((policy) => this.toPolicyView(policy));
  }

  // --- runs

  /**
   * Starts runs now and answers with them: of one subject (its policy's
   * targets, or the one asked), or of every subject with a policy. The work
   * goes on in the background; runs of a subject wait for each other.
   * @throws `not_found` (subject, target), `unavailable`
   */
  async startRuns(body: RunBackupBody): Promise<BackupRunView[]> {
    const { policies, targets } = this.context.options;
    this.context.storage();
    if (body.target !== undefined && !targets.get(body.target)) {
      throw new TownError("not_found", `there is no backup target ${body.target}`);
    }
    const subjects =
      body.subject === undefined ? policies.list().map((policy) => policy.subject) : [body.subject];
    if (body.subject !== undefined) await this.checkSubject(body.subject);
    const plans = subjects.map((subject) => {
      const policy = policies.get(subject);
      const names = body.target === undefined ? (policy?.targets ?? []) : [body.target];
      return this.plan(subject, "manual", policy ?? null, names);
    });
    for (const plan of plans) this.background(plan);
    return plans.flatMap((plan) => plan.runs.map(({ id }) => this.runView(id)));
  }

  /** The scheduler's call: the subject's policy run, waited for. */
  async runPolicy(subject: string): Promise<void> {
    const policy = this.context.options.policies.get(subject);
    if (!policy) return;
    await this.runner.run(this.plan(subject, "schedule", policy, policy.targets));
  }

  // --- restores

  /** Restores an app from a target (see `restore-app.ts`); the target's secrets are kept out of errors. */
  async restore(body: RestoreBackupBody): Promise<RestoreBackupResult> {
    return this.keepingSecrets(body.target, () => this.restorer.restore(body));
  }

  /** Restores the whole box from a target (see `restore-box.ts`). */
  async restoreBox(body: RestoreBoxBody): Promise<RestoreBoxResult> {
    return this.keepingSecrets(body.target, () => this.boxRestorer.restore(body));
  }

  /** Runs `work`, with the target's secrets kept out of its error. */
  private async keepingSecrets<T>(target: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const config = this.context.options.targets.get(target);
      throw config ? hideSecrets(error, config) : error;
    }
  }

  // --- overview

  overview(): BackupOverview {
    const { runs } = this.context.options;
    return {
      targets: this.listTargets(),
      policies: this.listPolicies(),
      runs: runs.list(OVERVIEW_RUNS).map((run) => this.toRunView(run)),
      failures: runs.failures(),
    };
  }

  // --- helpers

  /** Records a run per target (one without a target when there is none). */
  private plan(
    subject: string,
    trigger: RunPlan["trigger"],
    policy: BackupPolicyRecord | null,
    targets: readonly string[],
  ): RunPlan {
    const { runs } = this.context.options;
    const names = targets.length === 0 ? [null] : targets;
    return {
      subject,
      trigger,
      keep: policy?.keep ?? null,
      runs: names.map((target) => ({
        id: runs.start(subject, target, trigger),
        target,
      })),
    };
  }

  private background(plan: RunPlan): void {
    const work = this.runner.run(plan).catch((error: unknown) => {
      this.context.options.log("backup run failed", {
        subject: plan.subject,
        error: error instanceof Error ? error.message : String(error),
      });
    });
    this.running.add(work);
    void work.finally(() => this.running.delete(work));
  }

  /** The whole box, an installed app `repo/name`, or an existing volume. @throws `not_found`, `invalid_argument`, `unavailable` */
  private async checkSubject(subject: string): Promise<void> {
    if (subject === BOX_SUBJECT) return;
    const slash = subject.indexOf("/");
    if (slash !== -1) {
      const repo = subject.slice(0, slash);
      const name = subject.slice(slash + 1);
      if (!this.context.options.installs.get(repo, name)) {
        throw new TownError("not_found", `${subject} is not installed`);
      }
      return;
    }
    checkVolumeName(subject);
    if (!(await this.context.storage().exists(subject))) {
      throw new TownError("not_found", `there is no volume ${subject}`);
    }
  }

  private targetView(name: string): BackupTargetView {
    const target = this.context.options.targets.get(name);
    if (!target) throw new TownError("not_found", `there is no backup target ${name}`);
    return targetView(target);
  }

  private policyView(subject: string): BackupPolicyView {
    const policy = this.context.options.policies.get(subject);
    if (!policy) throw new TownError("not_found", `${subject} has no backup policy`);
    return this.toPolicyView(policy);
  }

  private toPolicyView(policy: BackupPolicyRecord): BackupPolicyView {
    return policyView(
      policy,
      this.context.options.scheduler.nextRunAt(policy.subject),
      this.context.options.runs.lastFor(policy.subject),
    );
  }

  private runView(id: number): BackupRunView {
    const run = this.context.options.runs.get(id);
    if (!run) throw new TownError("not_found", `there is no backup run ${String(id)}`);
    return this.toRunView(run);
  }

  private toRunView(run: BackupRunRecord): BackupRunView {
    return runView(run, this.runner.step(run.id));
  }

  private now(): number {
    return this.context.options.clock();
  }
}

function targetView(target: BackupTargetRecord): BackupTargetView {
  return {
    name: target.name,
    kind: target.kind,
    location: redactLocation(target.location),
    status: target.status,
    createdAt: target.createdAt,
  };
}

/** The error with the target's password and credentials taken out of its message. */
function hideSecrets(error: unknown, config: BackupTargetConfig): unknown {
  if (!(error instanceof TownError)) return error;
  const secrets = targetSecrets(config);
  const message = redactText(error.message, secrets);
  return message === error.message
    ? error
    : new TownError(error.code, message, {
        issues: error.issues,
        ...(error.retryAfter === undefined ? {} : { retryAfter: error.retryAfter }),
      });
}
