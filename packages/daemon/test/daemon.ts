/**
 * Test helpers around a real daemon: its configuration for a scratch
 * directory, signing in over HTTP, keeping its log lines, and polling until
 * something it does in the background is done.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { TownClient } from "@townos/client";
import {
  startDaemon,
  type AppsConfig,
  type DaemonConfig,
  type RunningDaemon,
} from "../src/daemon.js";
import type { Podman } from "../src/runtime/podman/client.js";

/**
 * A daemon on a free loopback port with its state under `scratch/data`, no
 * default repository, no log output, and answers checked against their
 * response schemas; `overrides` add apps, networking…
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
    // Every answer a test sees holds to its response schema (no field silently dropped).
    checkResponses: true,
    ...overrides,
  };
}

/** `testDaemonConfig` overrides, with app settings added to the test's own Podman. */
export type PodmanDaemonOverrides = Omit<Partial<DaemonConfig>, "apps"> & {
  apps?: Omit<AppsConfig, "podman">;
};

/** Starts a daemon whose apps run on the test's own Podman service, and waits until it has booted. */
export async function startPodmanDaemon(
  scratch: string,
  podman: Podman,
  { apps, ...overrides }: PodmanDaemonOverrides = {},
): Promise<RunningDaemon> {
  const daemon = await startDaemon(
    testDaemonConfig(scratch, {
      ...overrides,
      apps: { podman: { socketPath: podman.socketPath }, ...apps },
    }),
  );
  // A boot that fails still leaves nothing running for the test's clean-up to miss.
  await daemon.booted.catch(async (error: unknown) => {
    await daemon.stop();
    throw error;
  });
  return daemon;
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

/** Where a test reaches a daemon: its URL and, before first-run setup, its setup code. */
export interface DaemonAddress {
  readonly url: string;
  readonly setupCode?: string | undefined;
}

/** Runs first-run setup with the daemon's setup code; a client signed in as that administrator. */
export async function setupAdmin(
  daemon: DaemonAddress,
  password = "admin-password-3f9c",
  username = "admin",
): Promise<TownClient & { token: string }> {
  const { token } = await new TownClient({ baseUrl: daemon.url }).setup({
    username,
    password,
    setupCode: daemon.setupCode,
  });
  return Object.assign(new TownClient({ baseUrl: daemon.url, token }), { token });
}

/** Has `admin` make an account (an ordinary user unless told); a client signed in as it. */
export async function signedInAccount(
  daemon: DaemonAddress,
  admin: TownClient,
  username: string,
  password: string,
  role: "admin" | "user" = "user",
): Promise<TownClient> {
  await admin.createAccount({ username, password, role });
  const { token } = await new TownClient({ baseUrl: daemon.url }).login({ username, password });
  return new TownClient({ baseUrl: daemon.url, token });
}

/** Waits until app calls answer: storage and Podman come up after boot, `unavailable` until then. */
export async function untilAppsAvailable(admin: TownClient, ms = 20_000): Promise<void> {
  await until(
    "apps to be available",
    ms,
    () => admin.apps(),
    () => true,
  );
}

/** A `logStream` handing every chunk the daemon logs to `keep` (to look for leaked secrets). */
export function logInto(keep: (text: string) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      keep(chunk.toString());
      callback();
    },
  });
}
