/** The shared in-memory fake runtime holds to the WorkloadRuntime contract (Podman: see runtime/podman/runtime.integration.test.ts). */
import { FakeRuntime } from "../../test/runtime/fake-runtime.js";
import { workloadContract } from "../../test/runtime/workload-contract.js";

const runtime = new FakeRuntime();
workloadContract("fake runtime", () => ({
  runtime,
  image: "localhost/town/busybox:latest",
  labels: { "town.test-run": "fake" },
  name: (part) => `town-fake-${part}`,
  print: (name, stream, text) => {
    runtime.write(name, text, stream);
    return Promise.resolve();
  },
}));
