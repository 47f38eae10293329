/**
 * Clone, fetch and asking for a branch's commit over the guarded transport:
 * the only isomorphic-git calls that touch the network. Clones are shallow
 * (depth 1), of one branch, without tags and without a work tree;
 * credentials go only through the auth callback, so they are never written
 * to the clone's config.
 */
import fs from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as git from "isomorphic-git";
import type { HttpClient } from "isomorphic-git/http/node";
import {
  Aborted,
  DownloadLimit,
  gitError,
  type GitErrorContext,
  type GitOperation,
} from "./errors.js";
import {
  ABANDON_GRACE_MS,
  guardedHttp,
  raceAbort,
  settleWithin,
  type TransportLimits,
} from "./transport.js";

/** A progress report: git's own phases ("Receiving objects", …) and the caller's. */
export interface GitProgress {
  phase: string;
  loaded: number;
  total?: number;
}

/** One remote and the bounds of talking to it. */
export interface GitSession extends GitErrorContext, TransportLimits {
  /** `RemoteUrl.url`. */
  url: string;
  /** Aborts every request, and makes the operation fail with its reason. */
  signal: AbortSignal;
  onProgress: ((progress: GitProgress) => void) | undefined;
  /**
   * Where operations still running after their caller gave up on them are
   * kept, for a caller that must not touch the directory until they stop.
   */
  pending?: Set<Promise<unknown>>;
}

/**
 * Clones `session.url` into the empty or missing `dir`: depth 1, the session's
 * branch or the remote's default one, no tags, no checkout.
 * @throws TownError (see `gitError`).
 */
export async function cloneShallow(
  session: GitSession,
  dir: string,
  cache: object = {},
): Promise<void> {
  await runGit(session, "clone", (http) =>
    git.clone({
      fs,
      http,
      cache,
      dir,
      url: session.url,
      ...(session.branch === undefined ? {} : { ref: session.branch }),
      singleBranch: true,
      noCheckout: true,
      noTags: true,
      depth: 1,
      ...callbacks(session),
    }),
  );
}

/**
 * Fetches the session's branch (the remote's `HEAD` without one) into the
 * clone in `dir`, without a depth: only the commits since the last fetch come.
 * Returns the fetched commit, null when the remote has none.
 * @throws DownloadLimit as it is, as a fresh shallow clone may still fit; a
 *   TownError otherwise.
 */
export async function fetchBranch(
  session: GitSession,
  dir: string,
  localBranch: string,
): Promise<string | null> {
  const shallowFile = join(dir, ".git", "shallow");
  // isomorphic-git records the new shallow commits before the pack arrives.
  const shallow = await readFile(shallowFile).catch(() => undefined);
  try {
    const fetched = await runGit(session, "fetch", (http) =>
      git.fetch({
        fs,
        http,
        cache: {},
        dir,
        ref: localBranch,
        remoteRef: session.branch === undefined ? "HEAD" : `refs/heads/${session.branch}`,
        singleBranch: true,
        tags: false,
        ...callbacks(session),
      }),
    );
    return fetched.fetchHead;
  } catch (error) {
    if (shallow) await writeFile(shallowFile, shallow).catch(() => undefined);
    throw error;
  }
}

/**
 * The commit the session's branch (the remote's `HEAD` without one) points
 * to, asked of the server without fetching anything; null when it has none.
 * @throws TownError (see `gitError`).
 */
export async function remoteCommit(session: GitSession): Promise<string | null> {
  const ref = session.branch === undefined ? "HEAD" : `refs/heads/${session.branch}`;
  const { onAuth, onAuthFailure } = callbacks(session);
  const refs = await runGit(session, "fetch", (http) =>
    git.listServerRefs({
      http,
      url: session.url,
      prefix: ref,
      symrefs: true,
      onAuth,
      onAuthFailure,
    }),
  );
  return refs.find((found) => found.ref === ref)?.oid ?? null;
}

/** Passes a progress report on; a failing callback does not fail the operation. */
export function reportProgress(
  onProgress: ((progress: GitProgress) => void) | undefined,
  event: GitProgress,
): void {
  if (!onProgress) return;
  const progress: GitProgress = { phase: event.phase, loaded: event.loaded };
  if (typeof event.total === "number" && event.total > 0) progress.total = event.total;
  try {
    onProgress(progress);
  } catch {
    // Progress is advisory.
  }
}

function callbacks(
  session: GitSession,
): Pick<Parameters<typeof git.fetch>[0], "onAuth" | "onAuthFailure" | "onProgress"> {
  const credentials = session.credentials;
  return {
    // Asked only after the server answered 401; a second 401 ends the attempt.
    onAuth: credentials ? () => ({ ...credentials }) : undefined,
    onAuthFailure: () => ({ cancel: true }),
    onProgress: (event) => {
      reportProgress(session.onProgress, event);
    },
  };
}

/**
 * Runs one network operation with a transport bound to the session. The
 * returned promise settles as soon as the signal aborts; the operation itself,
 * whose requests are torn down by then, is kept in `session.pending` until it
 * has actually stopped.
 */
async function runGit<T>(
  session: GitSession,
  operation: GitOperation,
  work: (http: HttpClient) => Promise<T>,
): Promise<T> {
  const limit = new AbortController();
  const signal = AbortSignal.any([session.signal, limit.signal]);
  const http = guardedHttp(signal, session, (error) => {
    limit.abort(error);
  });
  const running = work(http);
  const pending = session.pending;
  if (pending) {
    pending.add(running);
    running.then(
      () => pending.delete(running),
      () => pending.delete(running),
    );
  }
  try {
    // isomorphic-git can swallow a failed request and carry on: the signal remembers.
    return await raceAbort(running, signal);
  } catch (error) {
    // Without a pending set the caller cleans up right away: let git stop writing first.
    if (!pending) await settleWithin([running], ABANDON_GRACE_MS);
    const reason: unknown = signal.aborted ? signal.reason : error;
    if (reason instanceof DownloadLimit && operation === "fetch") throw reason;
    throw gitError(reason, session, operation);
  } finally {
    // Tears down any response a failed operation left unread.
    limit.abort(new Aborted());
  }
}
