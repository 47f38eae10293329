/** Finding the processes a test started, by what their command line or working directory names. */
import { readdir, readFile, readlink } from "node:fs/promises";

/** Live (non-zombie) processes whose command line or working directory mentions `text`. */
export async function processesMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const command = await readFile(`/proc/${entry}/cmdline`, "utf8");
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      // Caddy names its files through its working directory (/proc/self/cwd/…).
      const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => "");
      if ((command.includes(text) || cwd.includes(text)) && !/\)\s+[ZX]\s/.test(stat))
        pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}
