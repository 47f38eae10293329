/**
 * Test helpers around a real daemon: its configuration for a scratch
 * directory, and polling until something it does in the background is done.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { DaemonConfig } from "../src/daemon.js";

/**
 * A daemon on a free loopback port with its state under `scratch/data`, no
 * default repository and no log output; `overrides` add apps, networking…
 */
export function testDaemonConfig(
  scratch: string,
  overrides: Partial<DaemonConfig> = {},
): DaemonConfig {
  return {
    dataDir: join(scratch, "data"),
    host: "127.0.0.1",
    port: 0,
    defaultRepositoryUrl: "",
    logLevel: "silent",
    extraHosts: [],
    version: "test",
    ...overrides,
  };
}

/**
 * Polls `read` until `check` holds, for at most `ms`; a read that fails
 * counts as not yet (the daemon may still be starting a part).
 */
export async function until<T>(
  what: string,
  ms: number,
  read: () => Promise<T>,
  check: (value: T) => boolean,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const value = await read().catch((error: unknown) => {
      last = error instanceof Error ? error.message : error;
      return undefined;
    });
    if (value !== undefined) {
      if (check(value)) return value;
      last = value;
    }
    // The last thing seen says why it never came: an app's state, an error.
    if (Date.now() > deadline)
      assert.fail(`timed out waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    await sleep(100);
  }
}
