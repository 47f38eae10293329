import type { Io } from "./io.js";
import { formatBytes } from "./text.js";

/** How often upload progress is redrawn on a terminal. */
const PROGRESS_MS = 250;

/** The file's chunks, reporting the bytes read so far. */
export async function* counted(
  source: AsyncIterable<Buffer>,
  report: ((sent: number) => void) | undefined,
): AsyncGenerator<Uint8Array> {
  let sent = 0;
  for await (const chunk of source) {
    sent += chunk.length;
    report?.(sent);
    yield chunk;
  }
}

/** Redraws "sent / total" on one line of stderr, at most every PROGRESS_MS. */
export function progressLine(io: Io, total: number): (sent: number, last?: boolean) => void {
  let drawn = 0;
  return (sent, last = false) => {
    const now = Date.now();
    if (!last && now - drawn < PROGRESS_MS) return;
    drawn = now;
    const percent = total > 0 ? Math.floor((sent / total) * 100) : 100;
    io.stderr(`\r${formatBytes(sent)} / ${formatBytes(total)} (${percent}%)${last ? "\n" : ""}`);
  };
}
