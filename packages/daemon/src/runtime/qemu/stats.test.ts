import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { blockBytes, parseProc, procStats } from "./stats.js";

describe("VM stats", () => {
  it("reads CPU time, RSS and threads from /proc, a command name with spaces and parentheses too", () => {
    const stat =
      "4242 (qemu (x) 1) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 3 0 100 1000000 5000";
    const status = "Name:\tqemu\nVmRSS:\t  204800 kB\nThreads:\t3\n";
    assert.deepEqual(parseProc(stat, status), { cpuMs: 3000, rssBytes: 204800 * 1024, threads: 3 });
  });

  it("sums the block devices' bytes from QMP's answer", () => {
    const answer = [
      { device: "", stats: { rd_bytes: 512, wr_bytes: 1024 } },
      { device: "", stats: { rd_bytes: 100, wr_bytes: 0 } },
      { nonsense: true },
    ];
    assert.deepEqual(blockBytes(answer), { readBytes: 612, writtenBytes: 1024 });
    assert.deepEqual(blockBytes("not a list"), { readBytes: 0, writtenBytes: 0 });
  });

  it("samples a live process: this one", async () => {
    const stats = await procStats(process.pid, { readBytes: 1, writtenBytes: 2 });
    assert.ok(stats.memoryBytes > 1024 * 1024);
    assert.ok(stats.cpuPercent >= 0);
    assert.ok(stats.cpuSeconds > 0, "this process has used CPU time");
    assert.ok(stats.pids >= 1);
    assert.equal(stats.blockOutputBytes, 2);
  });
});
