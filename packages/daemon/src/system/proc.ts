/**
 * What the supervisor asks of the kernel about a process it did not
 * necessarily start: is it alive, what is its command line, signal it (and
 * its group), read a pid file and a log's tail. Pid and log files may sit in
 * a directory another user can write (Caddy's): they are opened without
 * following links and read with a bound.
 */
import { constants } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { TownError } from "@townos/format";
import { tailLines } from "./supervisor-state.js";

/** Flags that neither follow a link nor block on a FIFO someone could have put there. */
export const NO_FOLLOW = constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A live process's arguments; undefined once it is gone (zombies count as gone). */
export async function commandLine(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The state letter follows the parenthesised command name (which may hold spaces and parentheses).
    if (/\)\s+[ZX]\s/.test(stat.slice(stat.lastIndexOf(")")))) return undefined;
    const raw = await readFile(`/proc/${pid}/cmdline`, "utf8");
    const args = raw.split("\0").filter((arg) => arg !== "");
    return args.length === 0 ? undefined : args;
  } catch {
    return undefined;
  }
}

/**
 * Signals the process's group when it leads one (a detached start does), so
 * that helpers it forked go too; else the process alone.
 * @returns false when there is no such process.
 */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  }
  return false;
}

/** The pid in `path` (a small regular file, links not followed); undefined when there is none. */
export async function readPidFile(path: string): Promise<number | undefined> {
  try {
    const file = await open(path, constants.O_RDONLY | NO_FOLLOW);
    try {
      if (!(await file.stat()).isFile()) return undefined;
      const buffer = Buffer.alloc(32);
      const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
      const pid = Number(buffer.subarray(0, bytesRead).toString("utf8").trim());
      return Number.isSafeInteger(pid) && pid > 1 ? pid : undefined;
    } finally {
      await file.close();
    }
  } catch {
    return undefined;
  }
}

/** The last lines of a log file, reading at most `maxBytes` of its end; [] when there is none. */
export async function readLogTail(
  path: string,
  maxLines: number,
  maxBytes: number,
): Promise<string[]> {
  try {
    const file = await open(path, constants.O_RDONLY | NO_FOLLOW);
    try {
      const info = await file.stat();
      if (!info.isFile()) throw new TownError("io", `${path} is not a regular file`);
      const start = Math.max(0, info.size - maxBytes);
      const buffer = Buffer.alloc(info.size - start);
      const { bytesRead } = await file.read(buffer, 0, buffer.length, start);
      return tailLines(buffer.subarray(0, bytesRead).toString("utf8"), maxLines, start > 0);
    } finally {
      await file.close();
    }
  } catch {
    return [];
  }
}
