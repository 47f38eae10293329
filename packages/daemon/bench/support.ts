/**
 * What the benchmarks share: an in-process daemon's first administrator
 * with a repository, waiting for a port or a call, running a program, a median.
 */
import { execFile } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { TownClient } from "@townos/client";
import type { RunningDaemon } from "../src/daemon.js";
import type { Workload } from "../src/runtime/workload.js";
import { TEST_IMAGE } from "../test/runtime/podman-host.js";

/** Sets the booted daemon up with its first administrator, signed in. */
export async function benchAccount(daemon: RunningDaemon): Promise<TownClient> {
  await daemon.booted;
  const client = new TownClient({ baseUrl: daemon.url });
  client.token = (
    await client.setup({
      username: "bench",
      password: "bench-password",
      setupCode: daemon.setupCode,
    })
  ).token;
  return client;
}

/** `benchAccount`, with `repository` added, once apps run. */
export async function benchAdmin(
  daemon: RunningDaemon,
  repository: { name: string; url: string },
): Promise<TownClient> {
  const client = await benchAccount(daemon);
  await client.addRepository(repository);
  await waitFor(() => client.apps());
  return client;
}

/** Waits until `http://127.0.0.1:<port>/` answers 2xx, polling every 10 ms, for at most `ms`. */
export async function answers(port: number, ms = 6_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/`)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(10);
  }
  throw new Error(`nothing answered on port ${port}`);
}

/** Retries `call` every 100 ms until it succeeds, for at most 20 s. */
export async function waitFor(call: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      await call();
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error("the apps runtime did not come up");
}

export function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(" ")}: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** A container that only sleeps, labelled as an app's: what the monitoring benches count as an app. */
export function sleepingApp(name: string, labels: Readonly<Record<string, string>>): Workload {
  return {
    kind: "container",
    name,
    hostname: name,
    image: TEST_IMAGE,
    command: ["sleep", "3600"],
    env: {},
    labels,
    mounts: [],
    ports: [],
    network: null,
    restart: "no",
  };
}
