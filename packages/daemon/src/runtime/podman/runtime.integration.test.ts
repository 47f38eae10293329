/**
 * Podman as a WorkloadRuntime: the contract every runtime holds to, against
 * a Podman service of this test's own. Everything it makes carries a
 * `town.test-run` label and is removed afterwards.
 */
import { describe } from "node:test";
import { podmanForSuite, podmanMissing, TEST_IMAGE } from "../../../test/runtime/podman-host.js";
import { workloadContract } from "../../../test/runtime/workload-contract.js";
import { PodmanRuntime } from "./runtime.js";

const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const labels = { "town.test-run": run };

describe("Podman runtime", { skip: podmanMissing }, () => {
  const runtime = new PodmanRuntime(podmanForSuite("town-runtime-", labels).podman);

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
