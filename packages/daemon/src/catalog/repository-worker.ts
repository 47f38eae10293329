/**
 * A worker thread that reads one package repository: fetches or reads its
 * git clone and parses every package file. A hostile repository (huge or
 * deeply nested YAML, objects that inflate to gigabytes) then costs this
 * thread, which the daemon stops when over its time budget, and never the
 * daemon's event loop. Started by `repository-jobs.ts`, one job per worker.
 */
import { parentPort, workerData } from "node:worker_threads";
import { isTownError, loadRepository } from "@townos/format";
import { readLocalRepository, syncRepository } from "../repos/git-sync.js";
import type { JobAnswer, RepositoryJob } from "./repository-jobs.js";

async function run(job: RepositoryJob): Promise<JobAnswer> {
  if (job.kind === "parse") return { ok: true, repository: loadRepository(job.files) };
  const fetched =
    job.kind === "sync" ? await syncRepository(job.options) : await readLocalRepository(job.dir);
  if (!fetched) return { ok: true };
  if (job.kind === "sync") parentPort?.postMessage({ parsing: true } satisfies JobAnswer);
  const { commit, files, changedPaths, skipped } = fetched;
  return {
    ok: true,
    fetched: { commit, files, changedPaths, skipped, repository: loadRepository(files) },
  };
}

// The budget starts now: loading this module is the daemon's own cost, not the repository's.
parentPort?.postMessage({ started: true } satisfies JobAnswer);
run(workerData as RepositoryJob).then(
  (answer) => {
    parentPort?.postMessage(answer);
  },
  (error: unknown) => {
    const answer: JobAnswer = isTownError(error)
      ? { ok: false, code: error.code, message: error.message }
      : {
          ok: false,
          code: "internal",
          message: error instanceof Error ? error.message : String(error),
        };
    parentPort?.postMessage(answer);
  },
);
