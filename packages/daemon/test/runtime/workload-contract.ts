/**
 * The WorkloadRuntime contract (runtime/workload.ts) as tests, run against
 * every implementation: the in-memory fake (runtime/workload-contract.test.ts)
 * and Podman (runtime/podman/runtime.integration.test.ts). What one passes,
 * the other must too, so tests written against the fake hold for Podman.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { HostRuntime, LogLine, Workload } from "../../src/runtime/workload.js";
import { collect, rejection } from "../async.js";

export interface ContractHarness {
  runtime: HostRuntime;
  /** A local image with `sh` and `sleep`. */
  image: string;
  /** Carried by everything the contract makes, so the caller can clean up after it. */
  labels: Readonly<Record<string, string>>;
  /** A workload or network name unique to this run. */
  name(part: string): string;
  /** Makes a running workload write a line to its own output. */
  print(name: string, stream: "stdout" | "stderr", text: string): Promise<void>;
}

/** Defines the contract's tests; `harness` is called once the suite's `before` hooks ran. */
export function workloadContract(title: string, harness: () => ContractHarness): void {
  const sleeper = (
    h: ContractHarness,
    part: string,
    env: Record<string, string> = {},
  ): Workload => ({
    kind: "container",
    name: h.name(part),
    hostname: h.name(part),
    image: h.image,
    command: ["sleep", "600"],
    env,
    labels: { ...h.labels },
    mounts: [],
    ports: [],
    network: null,
    restart: "no",
  });

  // node:test awaits what describe and it return itself.
  void describe(`${title}: the WorkloadRuntime contract`, () => {
    void it("ensure creates a stopped workload, keeps an equal one and replaces a changed one", async () => {
      const h = harness();
      const { runtime } = h;
      const workload = sleeper(h, "ensure");
      assert.equal(await runtime.inspect(workload.name), undefined);
      assert.equal(await runtime.ensure(workload), "created");
      const created = await runtime.inspect(workload.name);
      assert.equal(created?.state.running, false);
      assert.equal(created.state.status, "created");
      assert.equal(created.image, h.image);
      assert.ok(
        (await runtime.list(h.labels)).some(
          (w) => w.name === workload.name && w.state === "created",
        ),
      );
      assert.equal(runtime.fingerprint({ ...workload }), runtime.fingerprint(workload));
      assert.equal(await runtime.ensure({ ...workload }), "unchanged");
      const changed = { ...workload, env: { CHANGED: "1" } };
      assert.notEqual(runtime.fingerprint(changed), runtime.fingerprint(workload));
      assert.equal(await runtime.ensure(changed), "replaced");
      assert.notEqual((await runtime.inspect(workload.name))?.id, created.id);
      assert.equal(await runtime.remove(workload.name), true);
    });

    void it("start and stop say whether they changed anything", async () => {
      const h = harness();
      const { runtime } = h;
      const { name } = sleeper(h, "startstop");
      await runtime.ensure(sleeper(h, "startstop"));
      assert.equal(await runtime.start(name), true);
      assert.equal((await runtime.inspect(name))?.state.running, true);
      assert.equal(await runtime.start(name), false);
      const stats = await runtime.stats(name);
      assert.ok(stats.pids >= 1);
      assert.ok(stats.cpuSeconds >= 0 && Number.isFinite(stats.cpuSeconds));
      assert.equal(await runtime.stop(name, { timeoutSeconds: 0 }), true);
      assert.equal((await runtime.inspect(name))?.state.running, false);
      assert.equal(await runtime.stop(name, { timeoutSeconds: 0 }), false);
      assert.equal(await runtime.remove(name), true);
      assert.equal(await runtime.remove(name), false);
      assert.equal(await runtime.inspect(name), undefined);
    });

    void it("absent is an answer where it is one, and not_found where presence is needed", async () => {
      const h = harness();
      const { runtime } = h;
      const name = h.name("absent");
      assert.equal(await runtime.inspect(name), undefined);
      assert.equal(await runtime.stop(name), false);
      assert.equal(await runtime.remove(name), false);
      assert.equal(
        (await runtime.list(h.labels)).some((w) => w.name === name),
        false,
      );
      assert.equal((await rejection(runtime.start(name))).code, "not_found");
      assert.equal((await rejection(runtime.exec(name, ["true"]))).code, "not_found");
      assert.equal((await rejection(runtime.logs(name))).code, "not_found");
    });

    void it("exec runs in a running workload and is refused in a stopped one", async () => {
      const h = harness();
      const { runtime } = h;
      const workload = sleeper(h, "exec");
      await runtime.ensure(workload);
      assert.equal((await rejection(runtime.exec(workload.name, ["true"]))).code, "conflict");
      await runtime.start(workload.name);
      assert.equal((await runtime.exec(workload.name, ["true"])).exitCode, 0);
      await runtime.remove(workload.name, { timeoutSeconds: 0 });
    });

    void it("logs give what the workload wrote, by stream", async () => {
      const h = harness();
      const { runtime } = h;
      const workload = sleeper(h, "logs");
      await runtime.ensure(workload);
      await runtime.start(workload.name);
      await h.print(workload.name, "stdout", "hello out");
      await h.print(workload.name, "stderr", "hello err");
      let lines: LogLine[] = [];
      for (let tries = 0; tries < 100 && lines.length < 2; tries++) {
        lines = await collect(await runtime.logs(workload.name, { timestamps: true }));
        if (lines.length < 2) await sleep(50);
      }
      assert.deepEqual(
        lines.map(({ stream, text }) => [stream, text]),
        [
          ["stdout", "hello out"],
          ["stderr", "hello err"],
        ],
      );
      assert.ok(lines.every((line) => line.time instanceof Date));
      await runtime.remove(workload.name, { timeoutSeconds: 0 });
    });

    void it("events report what happens to workloads with the asked labels, until aborted", async () => {
      const h = harness();
      const { runtime } = h;
      const workload = sleeper(h, "events");
      const controller = new AbortController();
      const events = await runtime.events({ labels: h.labels, signal: controller.signal });
      await runtime.ensure(workload);
      await runtime.start(workload.name);
      const seen: string[] = [];
      for await (const event of events) {
        if (event.name !== workload.name) continue;
        seen.push(event.action);
        assert.equal(event.attributes["name"], workload.name);
        if (event.action === "start") controller.abort();
      }
      assert.deepEqual(seen.slice(-1), ["start"]);
      assert.ok(seen.includes("create"));
      await runtime.remove(workload.name, { timeoutSeconds: 0 });
    });

    void it("networks: ensure is idempotent, absent is an answer", async () => {
      const h = harness();
      const { runtime } = h;
      const name = h.name("net");
      assert.equal(await runtime.inspectNetwork(name), undefined);
      const made = await runtime.ensureNetwork({ name, labels: h.labels });
      assert.equal(made.name, name);
      assert.equal((await runtime.ensureNetwork({ name, labels: h.labels })).name, name);
      assert.deepEqual((await runtime.inspectNetwork(name))?.labels, { ...h.labels });
      assert.ok((await runtime.listNetworks(h.labels)).some((n) => n.name === name));
      assert.equal(await runtime.removeNetwork(name), true);
      assert.equal(await runtime.removeNetwork(name), false);
      assert.equal(await runtime.inspectNetwork(name), undefined);
    });

    void it("a running workload has an IPv4 address on its network, none when stopped", async () => {
      const h = harness();
      const { runtime } = h;
      const network = h.name("addrnet");
      await runtime.ensureNetwork({ name: network, labels: h.labels });
      const workload = { ...sleeper(h, "addr"), network: { name: network, aliases: [] } };
      try {
        await runtime.ensure(workload);
        assert.deepEqual((await runtime.inspect(workload.name))?.addresses, {});
        await runtime.start(workload.name);
        const address = (await runtime.inspect(workload.name))?.addresses[network] ?? "";
        assert.match(address, /^\d{1,3}(\.\d{1,3}){3}$/);
        await runtime.stop(workload.name, { timeoutSeconds: 0 });
        assert.deepEqual((await runtime.inspect(workload.name))?.addresses, {});
      } finally {
        await runtime.remove(workload.name, { timeoutSeconds: 0 });
        await runtime.removeNetwork(network);
      }
    });

    void it("images: present and absent ones", async () => {
      const { runtime, image } = harness();
      assert.equal(await runtime.imageExists(image), true);
      assert.equal(await runtime.imageExists("localhost/town/no-such-image:never"), false);
    });
  });
}
