/**
 * Helpers for tests against the real Podman: whether it can run here,
 * preparing the host (configuration and the local busybox test image) with
 * `scripts/setup-podman.sh`, which is idempotent and quick once done, a
 * Podman service of the test's own, and removing what a test's apps left.
 */
import { execFile, execFileSync } from "node:child_process";
import { randomInt } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { promisify } from "node:util";
import { LABEL_APP } from "../../src/apps/labels.js";
import { Podman } from "../../src/runtime/podman/client.js";
import type { ServiceState } from "../../src/runtime/podman/service.js";

const run = promisify(execFile);
const repoRoot = join(import.meta.dirname, "../../../..");

/** The image setup-podman.sh builds: busybox-static with applet links, CMD /bin/sh. */
export const TEST_IMAGE = "localhost/town/busybox:latest";

/** False when Podman tests can run here, else why not (for `skip`). */
export const podmanMissing: string | false = whyNoPodman();

function whyNoPodman(): string | false {
  if (process.getuid?.() !== 0) return "the Podman tests run rootful containers and need root";
  try {
    execFileSync("podman", ["--version"], { stdio: "ignore" });
  } catch {
    return "podman is not installed (scripts/setup-podman.sh installs it)";
  }
  return false;
}

/** Runs scripts/setup-podman.sh; fails with its output when it does. */
export async function preparePodmanHost(): Promise<void> {
  try {
    await run("bash", [join(repoRoot, "scripts/setup-podman.sh")], { timeout: 300_000 });
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
    throw new Error(`scripts/setup-podman.sh failed:\n${stdout}${stderr}`, { cause: error });
  }
}

/** The lowest port the kernel hands out by itself (to `listen(0)` and outgoing connections). */
const ephemeralLow = Number(
  readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0],
);
/** Where test ports come from: high enough to be no well-known service's. */
const TEST_PORT_MIN = 20_000;

/**
 * A TCP port free on every address a moment ago, below the kernel's
 * ephemeral range: the kernel never gives such a port to another test's
 * `listen(0)` or outgoing connection, so a port a container lets go of while
 * it restarts is still free when it comes back (a port from the ephemeral range
 * can be taken by any program in that gap, and held as long as it likes).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = TEST_PORT_MIN + randomInt(Math.max(1, ephemeralLow - TEST_PORT_MIN));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free TCP port from ${TEST_PORT_MIN} to ${ephemeralLow - 1}`);
}

function bindable(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once("error", () => {
      resolve(false);
    });
    server.listen(port, "0.0.0.0", () => {
      server.close(() => {
        resolve(true);
      });
    });
  });
}

/** Who listens on TCP `port`, as `ss` tells it: for a failing test's message. */
export async function portListeners(port: number): Promise<string> {
  const { stdout } = await run("ss", ["-Htlnp", `sport = :${port}`]).catch((error: unknown) => ({
    stdout: String(error),
  }));
  return stdout.trim() || "nobody";
}

/** `count` different free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** A Podman client and the service of the test's own it started on `scratch/podman.sock`. */
export interface TestPodman {
  podman: Podman;
  service: ServiceState;
}

/** Starts a Podman service of the test's own, which a daemon finds answering on the socket. */
export async function startTestPodman(scratch: string): Promise<TestPodman> {
  const podman = new Podman({ socketPath: join(scratch, "podman.sock") });
  return { podman, service: await podman.ensureService() };
}

/** Closes the client and ends the service `startTestPodman` started (if it started one). */
export function stopTestPodman({ podman, service }: TestPodman): void {
  podman.close();
  if (service.pid !== null) process.kill(service.pid);
}

/** A describe block's own Podman: `service` is what its `before` started. */
export interface SuitePodman extends TestPodman {
  /** A scratch directory of the block's own; the socket is in it. */
  work: string;
}

/**
 * For a describe block: a scratch directory and a Podman client on a socket
 * in it, whose service starts (after preparing the host) before the block's
 * tests. Afterwards whatever carries `labels` is removed, the service ended
 * and the directory deleted, whatever the tests did. A service of its own
 * because one already running may predate the host's configuration.
 */
export function podmanForSuite(
  prefix: string,
  labels: Readonly<Record<string, string>>,
): SuitePodman {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const suite: SuitePodman = {
    work,
    podman: new Podman({ socketPath: join(work, "podman.sock") }),
    service: { started: false, pid: null },
  };
  before(async () => {
    await preparePodmanHost();
    suite.service = await suite.podman.ensureService();
  });
  after(async () => {
    try {
      if (suite.service.started) await removeLabelled(suite.podman, labels);
    } finally {
      stopTestPodman(suite);
      await rm(work, { recursive: true, force: true });
    }
  });
  return suite;
}

/** Removes the containers and networks of the apps ("repo/name") a failed test left. */
export async function removeAppLeftovers(podman: Podman, apps: readonly string[]): Promise<void> {
  for (const app of apps) await removeLabelled(podman, { [LABEL_APP]: app });
}

async function removeLabelled(
  podman: Podman,
  labels: Readonly<Record<string, string>>,
): Promise<void> {
  for (const container of await podman.listContainers(labels)) {
    await podman.removeContainer(container.id, { timeoutSeconds: 0 });
  }
  for (const network of await podman.listNetworks(labels)) {
    await podman.removeNetwork(network.name);
  }
}
