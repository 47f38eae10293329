/**
 * A running VM's resource use, from its QEMU process as the kernel counts it
 * (/proc/<pid>): CPU time over a short sampling window, resident memory,
 * threads; disk I/O from QMP's block statistics. User-mode networking is
 * QEMU's own socket traffic, not told apart from the rest: 0.
 */
import { readFile } from "node:fs/promises";
import { totalmem } from "node:os";
import { TownError } from "@townos/format";
import type { WorkloadStats } from "../workload.js";

/** Linux's USER_HZ, the unit of /proc/<pid>/stat's CPU times (fixed by its ABI). */
const TICKS_PER_SECOND = 100;
export const SAMPLE_MS = 250;

export interface ProcSample {
  /** CPU time (user + system), ms. */
  cpuMs: number;
  rssBytes: number;
  threads: number;
}

/** Parses /proc/<pid>/stat and /proc/<pid>/status. */
export function parseProc(stat: string, status: string): ProcSample {
  // Fields after the parenthesised command name (which may hold spaces); utime is field 14.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const rssKiB = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);
  const threads = Number(/^Threads:\s+(\d+)$/m.exec(status)?.[1] ?? 1);
  if (!Number.isFinite(utime) || !Number.isFinite(stime))
    throw new TownError("io", "cannot read the process's CPU time");
  return { cpuMs: ((utime + stime) * 1000) / TICKS_PER_SECOND, rssBytes: rssKiB * 1024, threads };
}

export async function sampleProc(pid: number): Promise<ProcSample> {
  try {
    const [stat, status] = await Promise.all([
      readFile(`/proc/${pid}/stat`, "utf8"),
      readFile(`/proc/${pid}/status`, "utf8"),
    ]);
    return parseProc(stat, status);
  } catch (error) {
    if (error instanceof TownError) throw error;
    throw new TownError("conflict", `the VM's process ${pid} is gone`);
  }
}

/** Two samples `SAMPLE_MS` apart: CPU percent of one core over that window. */
export async function procStats(
  pid: number,
  block: { readBytes: number; writtenBytes: number },
): Promise<WorkloadStats> {
  const first = await sampleProc(pid);
  const begin = performance.now();
  await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
  const second = await sampleProc(pid);
  const elapsed = performance.now() - begin;
  return {
    cpuPercent: elapsed > 0 ? Math.max(0, ((second.cpuMs - first.cpuMs) / elapsed) * 100) : 0,
    cpuSeconds: second.cpuMs / 1000,
    memoryBytes: second.rssBytes,
    memoryLimitBytes: totalmem(),
    netInputBytes: 0,
    netOutputBytes: 0,
    blockInputBytes: block.readBytes,
    blockOutputBytes: block.writtenBytes,
    pids: second.threads,
  };
}

/** Bytes read and written by the guest's disk, from QMP's `query-blockstats`. */
export function blockBytes(answer: unknown): { readBytes: number; writtenBytes: number } {
  let readBytes = 0;
  let writtenBytes = 0;
  for (const device of Array.isArray(answer) ? (answer as unknown[]) : []) {
    const stats = (device as { stats?: { rd_bytes?: unknown; wr_bytes?: unknown } } | null)?.stats;
    if (typeof stats?.rd_bytes === "number") readBytes += stats.rd_bytes;
    if (typeof stats?.wr_bytes === "number") writtenBytes += stats.wr_bytes;
  }
  return { readBytes, writtenBytes };
}
