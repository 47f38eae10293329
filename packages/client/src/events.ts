import type { Problem } from "@townos/api";
import { ApiError } from "./errors.js";

/**
 * The events of a server-sent-event response, one JSON object per event,
 * until the stream ends or `signal` aborts (then quietly). An error event
 * (`{"type":"error","problem":…}`) is thrown as ApiError.
 */
export async function* readEvents<T>(response: Response, signal?: AbortSignal): AsyncGenerator<T> {
  const reader = response.body?.getReader();
  if (!reader) return;
  // Cancelling the body closes the connection: the daemon then stops its side.
  const cancel = (): void => {
    void reader.cancel().catch(() => undefined);
  };
  signal?.addEventListener("abort", cancel, { once: true });
  if (signal?.aborted) cancel();
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for (;;) {
      const chunk = await reader.read().catch((error: unknown) => {
        if (signal?.aborted) return { done: true as const, value: undefined };
        throw error;
      });
      if (chunk.done || signal?.aborted) return;
      buffered += decoder.decode(chunk.value, { stream: true });
      for (let end = buffered.indexOf("\n\n"); end !== -1; end = buffered.indexOf("\n\n")) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        // Comment lines (`: heartbeat`) keep the stream open and carry nothing.
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).trimStart())
          .join("\n");
        if (data === "") continue;
        const event = JSON.parse(data) as T | { type: "error"; problem: Problem };
        if (isErrorEvent(event)) throw new ApiError(event.problem);
        yield event;
      }
    }
  } finally {
    signal?.removeEventListener("abort", cancel);
    cancel();
  }
}

function isErrorEvent(event: unknown): event is { type: "error"; problem: Problem } {
  return (
    typeof event === "object" &&
    event !== null &&
    (event as { type?: unknown }).type === "error" &&
    "problem" in event
  );
}
