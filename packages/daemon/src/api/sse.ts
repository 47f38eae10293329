/**
 * Server-sent events: one JSON object per event (`data: {...}`), a comment
 * now and then so proxies and browsers keep an idle stream open, and a
 * failure sent as a last `{"type":"error","problem":{...}}` event (the status
 * line went out long before).
 */
import { asTownError, toProblem } from "./problem.js";

export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  // Tells a proxy in front (nginx, Caddy) not to buffer the stream.
  "x-accel-buffering": "no",
} as const;

export const HEARTBEAT_MS = 15_000;

/** One event. JSON has no raw newlines, so a single `data:` line always holds it. */
export function sseFrame(event: unknown): string {
  return `data: ${JSON.stringify(event)}\n\n`;
}

/**
 * Frames `events` as SSE text, with a heartbeat comment whenever nothing
 * was sent for `heartbeatMs`. Ends when the events end or `signal` aborts;
 * either way the events' iterator is closed before it returns.
 */
export async function* sseStream(
  events: AsyncIterable<unknown>,
  options: { signal: AbortSignal; heartbeatMs?: number },
): AsyncGenerator<string> {
  const { signal } = options;
  const iterator = events[Symbol.asyncIterator]();
  let aborted: () => void = () => undefined;
  const abort = new Promise<"abort">((resolve) => {
    aborted = () => {
      resolve("abort");
    };
    if (signal.aborted) resolve("abort");
    signal.addEventListener("abort", aborted, { once: true });
  });
  // Sent at once, so the client sees the stream open before the first event.
  yield ": connected\n\n";
  let pending = iterator.next();
  let done = false;
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const beat = new Promise<"beat">((resolve) => {
        timer = setTimeout(() => {
          resolve("beat");
        }, options.heartbeatMs ?? HEARTBEAT_MS);
      });
      const next = await Promise.race([pending, beat, abort]).finally(() => {
        clearTimeout(timer);
      });
      if (next === "abort") return;
      if (next === "beat") {
        yield ": heartbeat\n\n";
        continue;
      }
      if (next.done === true) {
        done = true;
        return;
      }
      yield sseFrame(next.value);
      pending = iterator.next();
    }
  } catch (error) {
    done = true;
    if (!signal.aborted) yield sseFrame({ type: "error", problem: toProblem(asTownError(error)) });
  } finally {
    signal.removeEventListener("abort", aborted);
    // The producer ends its own work on the same signal; waiting here means nothing leaks.
    if (!done) await iterator.return?.(undefined);
  }
}
