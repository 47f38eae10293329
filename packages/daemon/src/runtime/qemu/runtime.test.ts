/**
 * QemuRuntime's bookkeeping without QEMU: VMs that are made, listed,
 * inspected, replaced and removed but never started (the disk is a qcow2
 * header written here, so no qemu-img runs either). Running VMs are in
 * qemu.integration.test.ts.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { rejection } from "../../../test/async.js";
import { LABEL_SPEC_HASH, type Workload, type WorkloadEvent } from "../workload.js";
import { QemuRuntime } from "./runtime.js";

const MIB = 1024 * 1024;

function qcow2Header(virtualBytes: number): Buffer {
  const bytes = Buffer.alloc(104);
  bytes.writeUInt32BE(0x514649fb, 0);
  bytes.writeUInt32BE(3, 4);
  bytes.writeBigUInt64BE(BigInt(virtualBytes), 24);
  return bytes;
}

describe("QemuRuntime without running QEMU", () => {
  let dir = "";
  let qemu: QemuRuntime;
  let workload: Workload;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "town-qemu-rt-"));
    await mkdir(join(dir, "images"));
    await mkdir(join(dir, "volume"));
    await writeFile(join(dir, "images", "base.qcow2"), qcow2Header(MIB));
    await writeFile(join(dir, "volume", "disk.qcow2"), qcow2Header(8 * MIB));
    qemu = new QemuRuntime({
      stateDir: join(dir, "vms"),
      images: { path: (name) => join(dir, "images", `${name}.qcow2`) },
      accelerator: () => Promise.resolve("tcg"),
      qemuBinary: "/nonexistent/qemu-system-x86_64",
      log: { info: () => undefined, warn: () => undefined },
    });
    workload = {
      kind: "vm",
      name: "town-default--vm",
      hostname: "town-default--vm",
      image: "base",
      env: { A: "1" },
      labels: { "town.repo": "default" },
      mounts: [],
      ports: [{ hostAddress: "0.0.0.0", hostPort: 8080, port: 80, protocol: "tcp" }],
      network: null,
      restart: "unless-stopped",
      machine: { memoryBytes: 100 * MIB + 1, cpus: 2, disk: join(dir, "volume", "disk.qcow2") },
    };
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a state directory too long for QMP's socket", () => {
    assert.throws(
      () =>
        new QemuRuntime({
          stateDir: `/${"x".repeat(90)}`,
          images: { path: () => "/x" },
          log: { info: () => undefined, warn: () => undefined },
        }),
      /short enough for a unix socket/,
    );
  });

  it("makes, keeps, replaces and removes a VM, with events filtered by label and action", async () => {
    const controller = new AbortController();
    const events = await qemu.events({
      labels: { "town.repo": "default" },
      actions: ["create", "remove"],
      signal: controller.signal,
    });
    assert.equal(await qemu.ensure(workload), "created");
    assert.equal(await qemu.ensure({ ...workload, labels: { ...workload.labels } }), "unchanged");
    const first = await qemu.inspect(workload.name);
    assert.equal(first?.state.status, "created");
    assert.equal(first.labels[LABEL_SPEC_HASH], qemu.fingerprint(workload));
    assert.deepEqual(first.machine, {
      accelerator: "tcg",
      memoryBytes: 101 * MIB,
      cpus: 2,
      diskVirtualBytes: 8 * MIB,
      diskAllocatedBytes: first.machine?.diskAllocatedBytes,
      qmpStatus: null,
    });
    assert.deepEqual(first.healthcheck?.test, [
      "qemu running",
      "qmp status running",
      "guest port 80 answers",
    ]);
    assert.equal((await qemu.inspect(first.id))?.name, workload.name, "by id");

    assert.equal(await qemu.ensure({ ...workload, env: { A: "2" } }), "replaced");
    const second = await qemu.inspect(workload.name);
    assert.notEqual(second?.id, first.id);
    assert.equal(await qemu.stop(workload.name), false, "it does not run");
    assert.deepEqual(
      (await qemu.list({ "town.repo": "default" })).map((w) => [w.name, w.state]),
      [[workload.name, "created"]],
    );
    assert.equal(await qemu.remove(workload.name), true);
    assert.equal(await qemu.remove(workload.name), false);
    assert.equal(await qemu.inspect(workload.name), undefined);
    assert.deepEqual(
      await readFile(workload.machine?.disk ?? ""),
      qcow2Header(8 * MIB),
      "disk kept",
    );

    const seen: WorkloadEvent[] = [];
    for await (const event of events) {
      seen.push(event);
      if (seen.length === 4) controller.abort();
    }
    assert.deepEqual(
      seen.map((e) => [e.action, e.id]),
      [
        ["create", first.id],
        ["remove", first.id],
        ["create", second?.id],
        ["remove", second?.id],
      ],
    );
    assert.equal(seen[0]?.attributes["name"], workload.name);
    const replay = await qemu.events({
      since: new Date(0),
      actions: ["remove"],
      until: new Date(),
    });
    const replayed: string[] = [];
    for await (const event of replay) replayed.push(event.action);
    assert.deepEqual(replayed, ["remove", "remove"]);
  });

  it("answers not_found for what is absent and refuses what a VM cannot do", async () => {
    assert.equal((await rejection(qemu.start("absent"))).code, "not_found");
    assert.equal((await rejection(qemu.logs("absent"))).code, "not_found");
    await qemu.ensure(workload);
    assert.match((await rejection(qemu.exec(workload.name, ["ls"]))).message, /no exec/);
    assert.equal((await rejection(qemu.copyFrom(workload.name, "/"))).code, "invalid_argument");
    assert.equal((await rejection(qemu.stats(workload.name))).code, "conflict");
    assert.equal((await rejection(qemu.runHealthcheck(workload.name))).code, "conflict");
    // No QEMU to run: the start fails and says why, and the VM is left stopped.
    const failed = await rejection(qemu.start(workload.name));
    assert.match(failed.message, /could not be started/);
    assert.equal((await qemu.inspect(workload.name))?.state.error, failed.message);
    assert.equal(await qemu.remove(workload.name), true);
  });

  it("refuses a workload it cannot run before touching anything", async () => {
    const cases: [Workload, RegExp][] = [
      [{ ...workload, kind: "container" }, /not a VM/],
      [{ ...workload, machine: { memoryBytes: MIB, cpus: 1, disk: "/d.qcow2" } }, /memory/],
      [
        {
          ...workload,
          machine: {
            ...(workload.machine ?? { memoryBytes: 0, cpus: 0 }),
            disk: join(dir, "vms", "d.qcow2"),
          },
        },
        /runtime's own directory/,
      ],
    ];
    for (const [bad, pattern] of cases) {
      const error = await rejection(qemu.ensure(bad));
      assert.equal(error.code, "invalid_argument");
      assert.match(error.message, pattern);
    }
    assert.deepEqual(await qemu.list(), []);
  });
});
