/**
 * How busy the box is, for the dashboard's home page: CPU since the last
 * look, memory, and uptime. Figures come from the kernel through Node's os
 * module; nothing is stored.
 */
import { cpus, freemem, loadavg, totalmem, uptime } from "node:os";

export interface CpuTimes {
  idle: number;
  total: number;
}

export interface SystemUsage {
  cpu: {
    cores: number;
    /** Share of CPU time spent working since the previous sample (or since boot, the first time). */
    busyPercent: number;
    /** 1, 5 and 15 minute load averages. */
    load: [number, number, number];
  };
  memory: { totalBytes: number; availableBytes: number };
  uptimeSeconds: number;
}

/** CPU time of all cores together, in milliseconds. */
export function cpuTimes(cores = cpus()): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const core of cores) {
    const { user, nice, sys, irq, idle: rest } = core.times;
    idle += rest;
    total += user + nice + sys + irq + rest;
  }
  return { idle, total };
}

/** Busy share between two samples, 0–100 with one decimal; 0 when no time passed. */
export function busyPercent(before: CpuTimes, after: CpuTimes): number {
  const total = after.total - before.total;
  if (total <= 0) return 0;
  const busy = total - (after.idle - before.idle);
  return Math.round((busy / total) * 1000) / 10;
}

/** Samples usage; CPU is measured against the previous sample, at least `minIntervalMs` old. */
export class UsageSampler {
  private previous: { times: CpuTimes; busy: number } = {
    times: { idle: 0, total: 0 },
    busy: 0,
  };
  private previousAt = 0;

  constructor(
    private readonly clock: () => number = Date.now,
    private readonly minIntervalMs = 1000,
  ) {}

  sample(): SystemUsage {
    const now = this.clock();
    if (now - this.previousAt >= this.minIntervalMs) {
      const times = cpuTimes();
      this.previous = { times, busy: busyPercent(this.previous.times, times) };
      this.previousAt = now;
    }
    const [one = 0, five = 0, fifteen = 0] = loadavg();
    return {
      cpu: { cores: cpus().length, busyPercent: this.previous.busy, load: [one, five, fifteen] },
      memory: { totalBytes: totalmem(), availableBytes: freemem() },
      uptimeSeconds: Math.round(uptime()),
    };
  }
}
