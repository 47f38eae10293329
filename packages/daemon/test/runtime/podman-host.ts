/**
 * Helpers for tests against the real Podman: whether it can run here,
 * preparing the host (configuration and the local busybox test image) with
 * `scripts/setup-podman.sh`, which is idempotent and quick once done, a
 * Podman service of the test's own, and removing what a test's apps left.
 */
import { execFile, execFileSync } from "node:child_process";
import net from "node:net";
import { join } from "node:path";
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

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return address.port;
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

/** Removes the containers and networks of the apps ("repo/name") a failed test left. */
export async function removeAppLeftovers(podman: Podman, apps: readonly string[]): Promise<void> {
  for (const app of apps) {
    for (const container of await podman.listContainers({ [LABEL_APP]: app })) {
      await podman.removeContainer(container.id, { timeoutSeconds: 0 });
    }
    for (const network of await podman.listNetworks({ [LABEL_APP]: app })) {
      await podman.removeNetwork(network.name);
    }
  }
}
