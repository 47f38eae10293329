/**
 * Runs repository work (git fetch or read, then parsing every package file)
 * in worker threads, so that no repository can hold the daemon's event loop.
 * Each job gets its own worker, stopped when it is over its time budget or
 * its heap limit: the repository's error says so. At most `MAX_WORKERS` run
 * at once; the others wait their turn.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import {
  TownError,
  type ErrorCode,
  type LoadedRepository,
  type RepositoryFile,
} from "@townos/format";
import type { SyncOptions } from "../repos/git-sync.js";
import type { FetchedRepository } from "./catalog.js";

export type RepositoryJob =
  | { kind: "sync"; options: Pick<SyncOptions, "dir" | "url" | "username" | "password"> }
  | { kind: "read"; dir: string }
  | { kind: "parse"; files: RepositoryFile[] };

/** What a worker posts: `started`, `parsing` after a fetch, then one result. */
export type JobAnswer =
  | { started: true }
  | { parsing: true }
  | { ok: true; fetched?: FetchedRepository; repository?: LoadedRepository }
  | { ok: false; code: ErrorCode; message: string };

export type JobResult = Extract<JobAnswer, { ok: true }>;

export interface RepositoryJobLimits {
  /** Wall-clock time one job may take once its worker runs; a fetch's parse gets its own. */
  budgetMs: number;
  /** The worker's V8 heap limit. */
  maxHeapMb: number;
}

export const DEFAULT_JOB_LIMITS: RepositoryJobLimits = { budgetMs: 60_000, maxHeapMb: 1024 };

/** A core is left to the event loop (on a 2-core box, one job at a time). */
const MAX_WORKERS = Math.max(1, availableParallelism() - 1);
/** Starting a worker (loading its modules) is the daemon's own cost, bounded apart. */
const STARTUP_MS = 60_000;

const here = new URL(import.meta.url);
const WORKER = new URL(
  here.pathname.endsWith(".ts") ? "./repository-worker.ts" : "./repository-worker.js",
  here,
);

export class RepositoryJobs {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limits: RepositoryJobLimits = DEFAULT_JOB_LIMITS) {}

  /**
   * Runs one job. Resolves with its result; rejects with the TownError the
   * worker threw, or `io` when it was stopped (over budget, out of memory).
   * A fetch has `fetchMs` for git (which has its own timeout), then the budget to parse.
   */
  async run(job: RepositoryJob, fetchMs = 0): Promise<JobResult> {
    if (this.running >= MAX_WORKERS) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.running += 1;
    try {
      return await runInWorker(job, this.limits, fetchMs);
    } finally {
      this.running -= 1;
      this.waiting.shift()?.();
    }
  }

  /** Parses a repository's files in a worker. */
  async parse(files: RepositoryFile[]): Promise<LoadedRepository> {
    const { repository } = await this.run({ kind: "parse", files });
    if (!repository) throw new TownError("internal", "the repository reader returned nothing");
    return repository;
  }
}

function runInWorker(
  job: RepositoryJob,
  limits: RepositoryJobLimits,
  fetchMs: number,
): Promise<JobResult> {
  return new Promise((resolve, reject) => {
    const worker = startWorker(job, limits);
    let done = false;
    const finish = (outcome: JobResult | TownError): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void worker.terminate();
      if (outcome instanceof TownError) reject(outcome);
      else resolve(outcome);
    };
    const stopAfter = (ms: number, what: string): NodeJS.Timeout =>
      setTimeout(() => {
        finish(new TownError("io", `${what} took longer than ${seconds(ms)}; it was stopped`));
      }, ms);
    let timer = stopAfter(STARTUP_MS, "starting the repository reader");
    worker.on("message", (answer: JobAnswer) => {
      if ("started" in answer) {
        clearTimeout(timer);
        timer =
          fetchMs > 0
            ? stopAfter(fetchMs, "fetching the repository")
            : stopAfter(limits.budgetMs, "reading the repository");
      } else if ("parsing" in answer) {
        clearTimeout(timer);
        timer = stopAfter(limits.budgetMs, "reading the repository");
      } else if (answer.ok) finish(answer);
      else finish(new TownError(answer.code, answer.message));
    });
    worker.on("error", (error: Error & { code?: string }) => {
      finish(
        new TownError(
          "io",
          error.code === "ERR_WORKER_OUT_OF_MEMORY"
            ? `reading the repository needs more than ${limits.maxHeapMb} MiB; it was stopped`
            : `the repository reader failed: ${error.message}`,
        ),
      );
    });
    worker.on("exit", (code) => {
      finish(new TownError("io", `the repository reader exited (${code}) without an answer`));
    });
  });
}

/**
 * Built code runs the compiled worker. Under tsx (tests run the sources with
 * `--import tsx`), a worker does not inherit the loader: it registers tsx
 * itself before importing the TypeScript module (and keeps the process's
 * flags, `--conditions=source` among them).
 */
function startWorker(job: RepositoryJob, limits: RepositoryJobLimits): Worker {
  const options = {
    workerData: job,
    resourceLimits: { maxOldGenerationSizeMb: limits.maxHeapMb },
  };
  // The process's own flags (`--input-type`, say) are not the worker's business.
  if (!WORKER.pathname.endsWith(".ts")) return new Worker(WORKER, { ...options, execArgv: [] });
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(WORKER.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}
