import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { VmFacts } from "@townos/client";
import { downloadText, vmFactRows } from "../src/vm.js";

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
  ports: [
    { hostAddress: "127.0.0.1", hostPort: 8080, guestPort: 80 },
    { hostAddress: "0.0.0.0", hostPort: 2222, guestPort: 22 },
  ],
};

describe("the VM facts card", () => {
  it("lists accelerator, memory, CPUs, disk, QEMU state, forwarded ports and image", () => {
    assert.deepEqual(vmFactRows(RUNNING), [
      ["Runs on", "TCG (emulation: slower)"],
      ["Memory", "128 MB"],
      ["CPUs", "1"],
      ["Disk", "16 MB (1.2 MB used on the box)"],
      ["QEMU state", "running"],
      ["Forwarded ports", "127.0.0.1:8080 → guest port 80, 0.0.0.0:2222 → guest port 22"],
      ["Image", "tiny"],
    ]);
  });

  it("says a VM that does not exist is not running, and leaves out its disk, state and ports", () => {
    assert.deepEqual(
      vmFactRows({
        ...RUNNING,
        accelerator: null,
        diskVirtualBytes: null,
        diskAllocatedBytes: null,
        qmpStatus: null,
        ports: [],
      }),
      [
        ["Runs on", "Not running"],
        ["Memory", "128 MB"],
        ["CPUs", "1"],
        ["Image", "tiny"],
      ],
    );
    assert.equal(
      vmFactRows({ ...RUNNING, accelerator: "kvm" })[0]?.[1],
      "KVM (hardware virtualization)",
    );
  });
});

describe("a VM image download's progress line", () => {
  const download = {
    name: "tiny",
    url: "http://127.0.0.1/tiny.qcow2",
    phase: "download" as const,
    receivedBytes: 3 * MiB,
    totalBytes: 12 * MiB,
    error: null,
  };

  it("gives the percent of a known size, and what came so far of an unknown one", () => {
    assert.equal(downloadText(download), "Downloading: 3 MB of 12 MB (25%)");
    assert.equal(downloadText({ ...download, totalBytes: null }), "Downloading: 3 MB so far");
  });

  it("names the phases after the download", () => {
    assert.equal(downloadText({ ...download, phase: "check" }), "Checking the image…");
    assert.equal(downloadText({ ...download, phase: "convert" }), "Converting the image…");
  });
});
