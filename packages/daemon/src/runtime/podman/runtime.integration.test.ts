/**
 * Podman as a WorkloadRuntime: the contract every runtime holds to, against
 * a Podman service of this test's own. Everything it makes carries a
 * `town.test-run` label and is removed afterwards.
 */
import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { podmanMissing, preparePodmanHost, TEST_IMAGE } from "../../../test/runtime/podman-host.js";
import { workloadContract } from "../../../test/runtime/workload-contract.js";
import { Podman } from "./client.js";
import { PodmanRuntime } from "./runtime.js";
import type { ServiceState } from "./service.js";

const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const labels = { "town.test-run": run };

describe("Podman runtime", { skip: podmanMissing }, () => {
  const work = mkdtempSync(join(os.tmpdir(), "town-runtime-"));
  const podman = new Podman({ socketPath: join(work, "podman.sock") });
  const runtime = new PodmanRuntime(podman);
  let service: ServiceState = { started: false, pid: null };

  before(async () => {
    await preparePodmanHost();
    service = await podman.ensureService();
  });

  after(async () => {
    try {
      for (const workload of await runtime.list(labels)) {
        await runtime.remove(workload.name, { timeoutSeconds: 0 });
      }
      for (const network of await runtime.listNetworks(labels)) {
        await runtime.removeNetwork(network.name);
      }
    } finally {
      podman.close();
      if (service.pid !== null) process.kill(service.pid);
      await rm(work, { recursive: true, force: true });
    }
  });

  workloadContract("podman", () => ({
    runtime,
    image: TEST_IMAGE,
    labels,
    name: (part) => `town-it-${run}-${part}`,
    // Writes to the output of the workload's first process, which is what its log holds.
    print: async (name, stream, text) => {
      const fd = stream === "stdout" ? 1 : 2;
      const result = await runtime.exec(name, [
        "sh",
        "-c",
        `echo "$1" > /proc/1/fd/${fd}`,
        "sh",
        text,
      ]);
      if (result.exitCode !== 0) throw new Error(`print into ${name}: ${result.stderr}`);
    },
  }));
});
