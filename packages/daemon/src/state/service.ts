/**
 * GitOps: the box follows a state repository. A sync (on the `state` kind of
 * the reconcile manager: every interval, on the webhook, or asked for)
 * fetches the branch's head, reads and checks it (`layout.ts`), compares it
 * with the box (`plan.ts`) and applies the steps in order (`box.ts`).
 *
 * A commit with a problem anywhere (a malformed file, an unknown secret, an
 * app whose answers do not compile) is refused whole: nothing is changed
 * (repositories it adds excepted: the apps are checked against them) and
 * the box stays on the commit before. A step that fails stops the apply;
 * the next sync starts again from what the box then is, so it converges.
 * Every commit seen is recorded with its author, changes and result, and in
 * the audit log.
 */
import { randomBytes } from "node:crypto";
import type {
  SetStateBody,
  StateExport,
  StateKey,
  StateObjectKind,
  StateProblem,
  StateStatus,
} from "@townos/api";
import { parseDuration, TownError } from "@townos/format";
import type { AppInstallPreview, InstallRequest } from "../apps/planner.js";
import { tokensMatch } from "../auth/tokens.js";
import { errorText } from "../error-text.js";
import type { Clock } from "../clock.js";
import { checkBranchName, parseRemoteUrl } from "../git/remote.js";
import type { ReconcileResult } from "../reconcile/queue.js";
import type { Manager } from "../reconcile/manager.js";
import type { AuditLog } from "../store/audit.js";
import type { StateRecords, StateSource } from "../store/state.js";
import { decryptAnswers, type BoxIdentity } from "./age-key.js";
import { applyStep, readCurrentState, type BoxServices } from "./box.js";
import { exportState } from "./export.js";
import type { FetchedState, StateRemote } from "./fetch.js";
import { parseCheckout } from "./layout.js";
import { planChanges, stepText } from "./plan.js";
import type { DesiredState, StateStep } from "./types.js";

const KIND = "state";
const KEY = `${KIND}/box`;
const DEFAULT_INTERVAL_SECONDS = 300;
const MIN_INTERVAL_SECONDS = 30;
const MAX_INTERVAL_SECONDS = 7 * 24 * 3600;
/** How long `sync` waits for the sync it asked for. */
const SYNC_WAIT_MS = 15 * 60_000;
const HISTORY = 20;
/** Problems named in a refusal. */
const MAX_PROBLEMS = 20;

export interface StateServiceOptions {
  records: StateRecords;
  box: BoxServices;
  fetch: (remote: StateRemote) => Promise<FetchedState>;
  /** Checks an install without making it (`Apps.preview`). */
  preview: (request: InstallRequest) => Promise<AppInstallPreview>;
  /** The newest version a repository offers of a package. */
  latest: (repo: string, name: string) => string | undefined;
  /** The questions of an installed app whose answers are secrets (export writes them as secretRefs). */
  secretQuestions: (repo: string, name: string) => readonly string[];
  /** The box's age identity, which decrypts `{age}` answers. */
  identity: () => Promise<BoxIdentity>;
  manager: Manager;
  audit: Pick<AuditLog, "record">;
  clock: Clock;
  log: (message: string, fields: Record<string, unknown>) => void;
}

export class StateService {
  /** What the sync under way does; null when none runs. */
  private step: string | null = null;
  /** The last sync seen by this daemon. */
  private lastSync: { at: number; error: string | null } | null = null;

  constructor(private readonly options: StateServiceOptions) {
    options.manager.register(
      KIND,
      {
        reconcile: () => this.reconcile(),
        onError: (_id, error) => {
          options.log("state sync failed", { error: errorText(error) });
        },
      },
      { concurrency: 1 },
    );
  }

  /** Follows the repository from now on (a sync at once when one is set). */
  start(): void {
    if (this.options.records.source()) this.options.manager.enqueue(KEY);
  }

  async stop(): Promise<void> {
    await this.options.manager.stop(KIND);
  }

  status(): StateStatus {
    const { records } = this.options;
    const source = records.source();
    const applied = records.lastApplied();
    return {
      configured: source !== undefined,
      url: source ? parseRemoteUrl(source.url).display : null,
      branch: source?.branch ?? null,
      intervalSeconds: source?.intervalSeconds ?? null,
      commit: applied?.commit ?? null,
      appliedAt: applied?.at ?? null,
      step: this.step,
      error: this.lastSync?.error ?? null,
      lastSyncAt: this.lastSync?.at ?? null,
      managed: records.managed(),
      history: records.history(HISTORY),
    };
  }

  /** Sets the state repository and syncs with it. @throws `invalid_argument` */
  async set(body: SetStateBody): Promise<StateStatus> {
    parseRemoteUrl(body.url);
    if (body.branch !== undefined) checkBranchName(body.branch);
    if (body.password !== undefined && body.username === undefined) {
      throw new TownError("invalid_argument", "a password needs a username", {
        issues: [{ field: "username", message: "required with a password" }],
      });
    }
    const intervalSeconds = checkInterval(body.interval);
    const { records } = this.options;
    records.setSource({
      url: body.url,
      branch: body.branch ?? null,
      username: body.username ?? null,
      password: body.password ?? null,
      intervalSeconds,
      hookToken: records.source()?.hookToken ?? randomBytes(24).toString("base64url"),
    });
    this.lastSync = null;
    return this.sync();
  }

  /** Stops following the repository; what it made stays, managed by hand. @throws `not_found` */
  unset(): void {
    this.source();
    this.options.records.unset();
    this.lastSync = null;
  }

  /** Syncs now and answers once it ended (its error is in the status). @throws `not_found` */
  async sync(): Promise<StateStatus> {
    this.source();
    await this.options.manager.requestAndWait(KEY, SYNC_WAIT_MS);
    return this.status();
  }

  /** The webhook's secret token. @throws `not_found` */
  hookToken(): string {
    return this.source().hookToken;
  }

  /** A git host's call: a sync soon (calls while one waits coalesce). @throws `not_found` for any wrong token */
  hook(token: string): void {
    if (!tokensMatch(token, this.options.records.source()?.hookToken)) {
      throw new TownError("not_found", "no such hook");
    }
    this.options.manager.enqueue(KEY);
  }

  /** The box as a state repository; the answers it writes as secretRefs are stored as secrets here. */
  async export(): Promise<StateExport> {
    const current = await readCurrentState(this.options.box);
    const { files, secrets } = exportState(current, {
      secretQuestions: this.options.secretQuestions,
    });
    for (const secret of secrets) {
      const app = current.apps.find((a) => `${a.repo}/${a.name}` === secret.app);
      const value = app?.answers[secret.question];
      if (value !== undefined) this.options.records.setSecret(secret.name, value);
    }
    return { files };
  }

  secretNames(): string[] {
    return this.options.records.secretNames();
  }

  setSecret(name: string, value: string): void {
    this.options.records.setSecret(name, value);
  }

  /** @throws `not_found` */
  removeSecret(name: string): void {
    if (!this.options.records.removeSecret(name)) {
      throw new TownError("not_found", `there is no secret ${name}`);
    }
  }

  /** The key answers are encrypted to. */
  async publicKey(): Promise<StateKey> {
    return { publicKey: (await this.options.identity()).publicKey };
  }

  /** Whether the state repository declares the object: then only git changes it. */
  isManaged(kind: StateObjectKind, name: string): boolean {
    return this.options.records.isManaged(kind, name);
  }

  // --- the sync

  private source(): StateSource {
    const source = this.options.records.source();
    if (!source) throw new TownError("not_found", "no state repository is set");
    return source;
  }

  private async reconcile(): Promise<ReconcileResult | undefined> {
    const source = this.options.records.source();
    if (!source) return undefined;
    try {
      await this.syncWith(source);
      this.lastSync = { at: this.options.clock(), error: null };
    } catch (error) {
      this.lastSync = { at: this.options.clock(), error: errorText(error) };
      this.options.log("state sync failed", { error: errorText(error) });
    } finally {
      this.step = null;
    }
    return { requeueAfterMs: source.intervalSeconds * 1000 };
  }

  private async syncWith(source: StateSource): Promise<void> {
    const { records, box } = this.options;
    this.step = "fetching";
    const fetched = await this.options.fetch(source);
    this.step = "checking";
    const parsed = parseCheckout(fetched.files);
    const fileProblems = [...fetched.problems, ...parsed.problems];
    if (fileProblems.length > 0) this.refuse(fetched, fileProblems);
    const { desired, problems } = await decryptAnswers(
      parsed.desired,
      async () => (await this.options.identity()).identity,
    );
    const current = await readCurrentState(box);
    const plan = planChanges(desired, current, {
      secret: (name) => records.secret(name),
      latest: this.options.latest,
    });
    problems.push(...plan.problems);
    if (problems.length > 0) this.refuse(fetched, problems);
    const purge = purgedOnRemoval(desired);
    if (plan.steps.length === 0) {
      if (records.lastApplied()?.commit !== fetched.commit)
        this.record(fetched, "applied", [], null);
      records.setManaged(plan.managed, purge);
      return;
    }
    const changes: string[] = [];
    const run = async (steps: readonly StateStep[]) => {
      for (const step of steps) {
        this.step = stepText(step);
        await applyStep(box, step);
        changes.push(stepText(step));
      }
    };
    try {
      // Repositories first: the apps to install are checked against their packages before anything else changes.
      await run(plan.steps.filter((step) => step.kind === "repository.add"));
      const installProblems = await this.checkInstalls(plan.steps);
      if (installProblems.length > 0) this.refuse(fetched, installProblems, changes);
      await run(plan.steps.filter((step) => step.kind !== "repository.add"));
    } catch (error) {
      if (!(error instanceof RefusedCommit)) {
        this.record(fetched, "failed", changes, errorText(error));
        records.setManaged(plan.managed, purge);
      }
      throw error;
    }
    this.record(fetched, "applied", changes, null);
    records.setManaged(plan.managed, purge);
  }

  /** What would keep the apps to install from installing, as problems of their files. */
  private async checkInstalls(steps: readonly StateStep[]): Promise<StateProblem[]> {
    const problems: StateProblem[] = [];
    for (const step of steps) {
      if (step.kind !== "app.install") continue;
      const path = `apps/${step.repo}/${step.name}.yaml`;
      try {
        const preview = await this.options.preview({
          repo: step.repo,
          name: step.name,
          ...(step.version === undefined ? {} : { version: step.version }),
          answers: step.answers,
        });
        for (const problem of [...preview.answerProblems, ...preview.problems]) {
          problems.push({ path, message: problem.message });
        }
      } catch (error) {
        problems.push({ path, message: errorText(error) });
      }
    }
    return problems;
  }

  /** Records the commit as refused (once, however often it is seen) and throws. */
  private refuse(
    fetched: FetchedState,
    problems: readonly StateProblem[],
    changes: string[] = [],
  ): never {
    const listed = problems.slice(0, MAX_PROBLEMS).map((p) => `${p.path}: ${p.message}`);
    const more =
      problems.length > MAX_PROBLEMS ? `; and ${problems.length - MAX_PROBLEMS} more` : "";
    const error = `${listed.join("; ")}${more}`;
    const [newest] = this.options.records.history(1);
    if (newest?.commit !== fetched.commit || newest.result !== "refused") {
      this.record(fetched, "refused", changes, error);
    }
    const kept = this.options.records.lastApplied()?.commit;
    throw new RefusedCommit(
      `commit ${fetched.commit.slice(0, 12)} is refused${kept ? `, the box stays on ${kept.slice(0, 12)}` : ""}: ${error}`,
    );
  }

  private record(
    fetched: FetchedState,
    result: "applied" | "refused" | "failed",
    changes: string[],
    error: string | null,
  ): void {
    const entry = {
      commit: fetched.commit,
      author: fetched.author,
      message: fetched.message,
      result,
      error,
      changes,
    };
    this.options.records.recordCommit(entry);
    this.options.audit.record({
      accountId: null,
      username: null,
      action: "state.commit",
      target: fetched.commit,
      detail: { author: fetched.author, message: fetched.message, result, changes },
      outcome: result === "applied" ? "success" : result,
      error,
      source: "git",
    });
  }
}

/** A commit refused whole; nothing of it was applied. */
class RefusedCommit extends TownError {
  constructor(message: string) {
    super("invalid_argument", message);
  }
}

/** The apps whose files say to delete their data when the file goes. */
function purgedOnRemoval(desired: DesiredState): Set<string> {
  return new Set([...desired.apps].filter(([, app]) => app.purge === true).map(([key]) => key));
}

/** Seconds between syncs. @throws `invalid_argument` */
function checkInterval(interval: string | undefined): number {
  if (interval === undefined) return DEFAULT_INTERVAL_SECONDS;
  const seconds = parseDuration(interval);
  if (seconds === undefined || seconds < MIN_INTERVAL_SECONDS || seconds > MAX_INTERVAL_SECONDS) {
    throw new TownError(
      "invalid_argument",
      `the interval must be a duration from ${MIN_INTERVAL_SECONDS}s to 7d, like "5m"`,
      { issues: [{ field: "interval", message: "not a duration in range" }] },
    );
  }
  return Math.round(seconds);
}
