import { access } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

const POLL_MS = 100;

/**
 * Resolves once `path` exists (checked every 100 ms), with no time limit:
 * what it waits for (the image's data pool) has nothing to fall back on.
 * Rejects with the signal's reason within 100 ms of its abort.
 */
export async function waitForFile(path: string, signal: AbortSignal): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    try {
      await access(path);
      return;
    } catch {
      await sleep(POLL_MS);
    }
  }
}
