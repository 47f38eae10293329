import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { busyPercent, cpuTimes, UsageSampler } from "./usage.js";

describe("system usage", () => {
  it("adds every core's times and measures the busy share between samples", () => {
    const core = (user: number, idle: number) => ({
      model: "x",
      speed: 1,
      times: { user, nice: 0, sys: 0, irq: 0, idle },
    });
    const before = cpuTimes([core(100, 900), core(0, 1000)]);
    assert.deepEqual(before, { idle: 1900, total: 2000 });
    const after = cpuTimes([core(400, 1100), core(100, 1400)]);
    assert.equal(busyPercent(before, after), 40);
    assert.equal(busyPercent(after, after), 0);
  });

  it("samples real figures, and CPU no more often than asked", () => {
    let now = 0;
    const sampler = new UsageSampler(() => now, 1000);
    const first = sampler.sample();
    assert.ok(first.cpu.cores >= 1);
    assert.ok(first.cpu.busyPercent >= 0 && first.cpu.busyPercent <= 100);
    assert.ok(first.memory.availableBytes > 0);
    assert.ok(first.memory.availableBytes <= first.memory.totalBytes);
    assert.ok(first.uptimeSeconds > 0);
    now = 500;
    assert.equal(sampler.sample().cpu.busyPercent, first.cpu.busyPercent);
  });
});
