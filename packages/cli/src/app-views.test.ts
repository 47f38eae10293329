import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AppView, VmFacts } from "@townos/client";
import { appLines, vmLine } from "./app-views.js";

const MiB = 1024 * 1024;

const RUNNING: VmFacts = {
  instance: "router",
  image: "tiny",
  accelerator: "tcg",
  memoryBytes: 128 * MiB,
  cpus: 1,
  diskVirtualBytes: 16 * MiB,
  diskAllocatedBytes: 1_258_291,
  qmpStatus: "running",
  ports: [{ hostAddress: "127.0.0.1", hostPort: 8080, guestPort: 80 }],
};

describe("VM facts as `town app info` prints them", () => {
  it("gives accelerator, memory, CPUs, disk, QMP state, forwarded ports and image on one line", () => {
    assert.equal(
      vmLine(RUNNING),
      "runtime: vm (tcg), memory 128.0 MiB, 1 CPU, disk 16.0 MiB (1.2 MiB used), QMP running, ports 127.0.0.1:8080 → 80, image tiny",
    );
  });

  it("leaves out what a VM that does not exist cannot tell, and counts CPUs and ports", () => {
    assert.equal(
      vmLine({
        ...RUNNING,
        accelerator: null,
        cpus: 2,
        diskVirtualBytes: null,
        diskAllocatedBytes: null,
        qmpStatus: null,
        ports: [
          { hostAddress: "0.0.0.0", hostPort: 2222, guestPort: 22 },
          { hostAddress: "127.0.0.1", hostPort: 41000, guestPort: 80 },
        ],
      }),
      "runtime: vm (not running), memory 128.0 MiB, 2 CPUs, ports 0.0.0.0:2222 → 22, 127.0.0.1:41000 → 80, image tiny",
    );
  });

  it("is the second line of a VM app's info, and absent for a container app", () => {
    const app: AppView = {
      repo: "default",
      name: "router",
      version: "1.0",
      enabled: true,
      running: true,
      held: false,
      postUpdatePending: false,
      urls: [],
      dnsPublished: true,
      installedAt: 0,
      ports: [],
      volumes: [],
      notes: [],
      containers: [{ name: "town-default--router", state: "running" }],
      lastError: null,
      vm: RUNNING,
    };
    assert.equal(appLines(app)[1], `  ${vmLine(RUNNING)}`);
    assert.ok(!appLines({ ...app, vm: null }).some((line) => line.includes("runtime:")));
  });
});
