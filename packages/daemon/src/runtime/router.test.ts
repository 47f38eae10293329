import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { collect } from "../../test/async.js";
import { FakeRuntime } from "../../test/runtime/fake-runtime.js";
import { WorkloadRouter } from "./router.js";
import type { Workload, WorkloadEvent } from "./workload.js";

function workload(name: string, kind: Workload["kind"]): Workload {
  return {
    kind,
    name,
    hostname: name,
    image: kind === "vm" ? "debian-12" : "localhost/town/busybox:latest",
    env: {},
    labels: { "town.name": name },
    mounts: [],
    ports: [],
    network: null,
    restart: "unless-stopped",
    ...(kind === "vm" ? { machine: { memoryBytes: 2 ** 27, cpus: 1, disk: "/v/disk.qcow2" } } : {}),
  };
}

function setup(): { router: WorkloadRouter; podman: FakeRuntime; qemu: FakeRuntime } {
  const podman = new FakeRuntime();
  const qemu = new FakeRuntime();
  return { router: new WorkloadRouter(podman, qemu), podman, qemu };
}

describe("the workload router", () => {
  it("ensures each kind in its own runtime, and sends calls by name to the one holding it", async () => {
    const { router, podman, qemu } = setup();
    assert.equal(await router.ensure(workload("web", "container")), "created");
    assert.equal(await router.ensure(workload("router", "vm")), "created");
    assert.equal(await router.start("router"), true);
    assert.equal(await router.start("web"), true);
    assert.deepEqual(qemu.calls, ["create router", "start router"]);
    assert.deepEqual(podman.calls, ["create web", "start web"]);

    assert.deepEqual((await router.list()).map((summary) => summary.name).sort(), [
      "router",
      "web",
    ]);
    assert.equal((await router.inspect("router"))?.name, "router");
    assert.equal((await router.inspect("web"))?.name, "web");
    assert.equal(await router.inspect("nothing"), undefined);
    assert.equal(await router.remove("router"), true);
    assert.equal(await router.remove("router"), false, "absent is an answer");
    assert.deepEqual(qemu.calls.at(-1), "remove router");
  });

  it("fingerprints by kind, and keeps networks and container images in the host runtime", async () => {
    const { router, podman } = setup();
    const vm = workload("router", "vm");
    assert.equal(router.fingerprint(vm), new FakeRuntime().fingerprint(vm));
    await router.ensureNetwork({ name: "town-app" });
    assert.ok(podman.networks.has("town-app"));
    assert.equal(await router.imageExists("localhost/town/busybox:latest"), true);
  });

  it("merges the event streams of both until the signal ends them", async () => {
    const { router } = setup();
    const abort = new AbortController();
    const events = await router.events({ signal: abort.signal });
    const seen = collect(events);
    await router.ensure(workload("web", "container"));
    await router.ensure(workload("router", "vm"));
    await new Promise((resolve) => setTimeout(resolve, 20));
    abort.abort();
    const names = (await seen).map((event: WorkloadEvent) => `${event.action} ${event.name}`);
    assert.deepEqual(names.sort(), ["create router", "create web"]);
  });
});
