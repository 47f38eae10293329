import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CompiledPackage } from "@townos/format";
import { installOf } from "../../test/apps/fakes.js";
import { asVm, compileExample } from "../../test/runtime/examples.js";
import { FakeRuntime } from "../../test/runtime/fake-runtime.js";
import type { MachineInfo } from "../runtime/workload.js";
import { openDatabase } from "../store/database.js";
import { Installs } from "../store/installs.js";
import { appLabels } from "./labels.js";
import { AppViews } from "./views.js";

const MiB = 1024 * 1024;
const BOX = "box-1";

/** The hello example as a VM package: its http port through the ingress, and a plain port 2222 → 22. */
function vmPlan(): CompiledPackage {
  const plan = compileExample("hello", "1.0");
  return {
    ...asVm(plan, "tiny"),
    ports: [
      ...plan.ports,
      { name: null, host: 2222, container: 22, exposure: "internal" as const },
    ],
  };
}

function setUp(plan: CompiledPackage, extra: Parameters<typeof installOf>[1] = {}) {
  const installs = new Installs(openDatabase(":memory:"), () => 1000);
  const install = installs.put(installOf(plan, extra));
  const views = new AppViews({ installs, tld: () => "home", box: BOX, held: () => false });
  return { install, views, runtime: new FakeRuntime(() => 1000) };
}

const RUNNING: MachineInfo = {
  accelerator: "tcg",
  memoryBytes: 64 * MiB,
  cpus: 1,
  diskVirtualBytes: 16 * MiB,
  diskAllocatedBytes: 1_258_291,
  qmpStatus: "running",
};

describe("the app view", () => {
  it("has no VM facts for a container app", async () => {
    const { install, views, runtime } = setUp(compileExample("hello", "1.0"));
    assert.equal((await views.view(runtime, install)).vm, null);
    assert.equal((await views.list(runtime))[0]?.vm, null);
  });

  it("shows what the runtime says of a VM, with its forwarded ports as the controller publishes them", async () => {
    const plan = vmPlan();
    const { install, views, runtime } = setUp(plan, {
      ingressPorts: { hello: 41000 },
      exposures: { "2222": "local" },
    });
    await runtime.ensure({
      kind: "vm",
      name: plan.hostname,
      hostname: plan.hostname,
      image: "tiny",
      env: {},
      labels: appLabels(BOX, plan.repo, plan.name),
      mounts: [],
      ports: [],
      network: null,
      restart: "unless-stopped",
      machine: { memoryBytes: 64 * MiB, cpus: 1, disk: "/v/disk.qcow2" },
    });
    const workload = runtime.containers.get(plan.hostname);
    assert.ok(workload);
    workload.info = { machine: RUNNING };

    const view = await views.view(runtime, install);
    assert.deepEqual(view.vm, {
      instance: "hello",
      image: "tiny",
      accelerator: "tcg",
      memoryBytes: 64 * MiB,
      cpus: 1,
      diskVirtualBytes: 16 * MiB,
      diskAllocatedBytes: 1_258_291,
      qmpStatus: "running",
      ports: [
        // The ingress reaches the guest's http port on loopback; 2222 was set to local.
        { hostAddress: "127.0.0.1", hostPort: 41000, guestPort: 8080 },
        { hostAddress: "127.0.0.1", hostPort: 2222, guestPort: 22 },
      ],
    });
  });

  it("gives the plan's memory and CPUs, and nulls for the rest, while the VM does not exist or in a listing", async () => {
    const { install, views, runtime } = setUp(vmPlan(), { exposures: { "2222": "lan" } });
    const expected = {
      instance: "hello",
      image: "tiny",
      accelerator: null,
      memoryBytes: 64 * MiB,
      cpus: 1,
      diskVirtualBytes: null,
      diskAllocatedBytes: null,
      qmpStatus: null,
      ports: [{ hostAddress: "0.0.0.0", hostPort: 2222, guestPort: 22 }],
    };
    assert.deepEqual((await views.view(runtime, install)).vm, expected);
    assert.deepEqual((await views.list(runtime))[0]?.vm, expected);
  });
});
