/**
 * The one HTTP transport isomorphic-git gets: its Node client, made to obey
 * an abort signal at every await (a server that stops sending cannot hold a
 * clone past its deadline), with a byte budget over all responses of one
 * operation, and with every object of a fetched pack checked to inflate to at
 * most a bound before git reads it (isomorphic-git inflates each object
 * whole, so a pack of zeros would otherwise become gigabytes in memory).
 *
 * Redirects are isomorphic-git's: at most 10, and credentials are sent only
 * to the origin they were given for.
 */
import nodeHttp from "isomorphic-git/http/node";
import type { GitHttpRequest, GitHttpResponse, HttpClient } from "isomorphic-git/http/node";
import { TownError } from "@townos/format";
import { Aborted, DownloadLimit, ObjectTooLarge, Timeout } from "./errors.js";
import { oversizedObject } from "./pack-check.js";

/** The longest delay `setTimeout` honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A signal that aborts with `Timeout` after `timeoutMs`, or with `Aborted`
 * when the caller's signal does; `stop` clears the timer and the listener.
 * @throws TownError `invalid_argument` for a time out of range.
 */
export function deadline(
  timeoutMs: number,
  callerSignal?: AbortSignal,
): { signal: AbortSignal; stop: () => void } {
  checkTimeout(timeoutMs);
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(new Timeout(timeoutMs));
  }, timeoutMs);
  const onCallerAbort = () => {
    controller.abort(new Aborted());
  };
  callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
  if (callerSignal?.aborted) onCallerAbort();
  return {
    signal: controller.signal,
    stop: () => {
      clearTimeout(timer);
      callerSignal?.removeEventListener("abort", onCallerAbort);
    },
  };
}

/** @throws TownError `invalid_argument` unless `timeoutMs` is a whole number of ms a timer can wait. */
export function checkTimeout(timeoutMs: number): number {
  if (!(Number.isSafeInteger(timeoutMs) && timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
    throw new TownError("invalid_argument", `git: timeout ${String(timeoutMs)} ms is out of range`);
  }
  return timeoutMs;
}

export interface TransportLimits {
  /** Most bytes of all responses together. */
  maxDownloadBytes: number;
  /** Largest an object of a fetched pack may inflate to. */
  maxObjectBytes: number;
}

/**
 * An HTTP client bound to `signal` and `limits`. Past a limit it calls
 * `onLimit` (which should abort `signal`: isomorphic-git rewraps what a body
 * throws, and may carry on after a failed request) and then throws.
 */
export function guardedHttp(
  signal: AbortSignal,
  limits: TransportLimits,
  onLimit: (error: DownloadLimit | ObjectTooLarge) => void,
): HttpClient {
  let received = 0;
  const count = (bytes: number) => {
    received += bytes;
    if (received > limits.maxDownloadBytes) {
      const error = new DownloadLimit(limits.maxDownloadBytes);
      onLimit(error);
      throw error;
    }
  };
  return {
    async request(request: GitHttpRequest): Promise<GitHttpResponse> {
      signal.throwIfAborted();
      const response = await raceAbort(nodeHttp.request({ ...request, signal }), signal);
      const body = response.body;
      if (!body) return response;
      const guarded = guardedBody(body, signal, count);
      const pack = request.url.endsWith("/git-upload-pack");
      return {
        ...response,
        body: pack ? checkedPack(guarded, limits.maxObjectBytes, onLimit) : guarded,
      };
    },
  };
}

/** Settles like `promise`, or rejects with the signal's reason as soon as it aborts. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolvePromise, reject) => {
    const onAbort = () => {
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolvePromise(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** How long to wait for git work that ignored an abort before leaving it be. */
export const ABANDON_GRACE_MS = 10_000;

/** Waits until the promises have settled, or `ms` have passed. */
export async function settleWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  if (promises.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(promises),
    new Promise((resolveWait) => {
      timer = setTimeout(resolveWait, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** Holds an upload-pack response until all of it (bounded by the download budget) is checked. */
async function* checkedPack(
  body: AsyncIterable<Uint8Array>,
  maxObjectBytes: number,
  onLimit: (error: ObjectTooLarge) => void,
): AsyncGenerator<Uint8Array, void, undefined> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const all = Buffer.concat(chunks);
  chunks.length = 0;
  const problem = oversizedObject(all, maxObjectBytes);
  if (problem !== undefined) {
    const error = new ObjectTooLarge(problem);
    onLimit(error);
    throw error;
  }
  yield all;
}

async function* guardedBody(
  body: AsyncIterableIterator<Uint8Array>,
  signal: AbortSignal,
  count: (bytes: number) => void,
): AsyncGenerator<Uint8Array, void, undefined> {
  try {
    for (;;) {
      const next = await raceAbort(body.next(), signal);
      if (next.done) return;
      count(next.value.byteLength);
      yield next.value;
    }
  } finally {
    await body.return?.();
  }
}
