/**
 * The build log of a page's last deploy: what fetching, building and
 * publishing said. Bounded (a build may print without end), kept in a file
 * beside the database so it outlives a restart, and followed live.
 */
import { readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { PageLog, PageLogEvent, PageLogLine, PageState } from "@townos/api";
import type { Clock } from "../clock.js";
import { errnoCode } from "../storage/safe-fs.js";

/** Most lines kept; older ones are dropped from the front. */
export const MAX_LOG_LINES = 5000;
/** Longest line kept; a longer one is cut. */
export const MAX_LINE_LENGTH = 2000;

type Listener = (event: PageLogEvent) => void;

export class DeployLogBook {
  private readonly logs = new Map<string, PageLog>();
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(
    private readonly dir: string,
    private readonly clock: Clock,
  ) {}

  /** Starts a new log for a deploy of `page`: the last one is dropped. */
  begin(page: string): void {
    this.logs.set(page, { items: [], truncated: false });
  }

  append(page: string, stream: PageLogLine["stream"], text: string): void {
    const log = this.logs.get(page) ?? { items: [], truncated: false };
    this.logs.set(page, log);
    const line: PageLogLine = {
      time: this.clock(),
      stream,
      text: text.length > MAX_LINE_LENGTH ? `${text.slice(0, MAX_LINE_LENGTH)}…` : text,
    };
    log.items.push(line);
    if (log.items.length > MAX_LOG_LINES) {
      log.items.splice(0, log.items.length - MAX_LOG_LINES);
      log.truncated = true;
    }
    this.emit(page, { type: "line", ...line });
  }

  /** The deploy ended: followers learn how, and the log is written to disk. */
  async end(page: string, state: PageState, error: string | null): Promise<void> {
    this.emit(page, { type: "end", state, error });
    const log = this.logs.get(page);
    if (log === undefined) return;
    const file = this.file(page);
    await writeFile(`${file}.new`, JSON.stringify(log), { mode: 0o600 });
    await rename(`${file}.new`, file);
  }

  /** The log in memory (a deploy under way, or one since the daemon started). */
  held(page: string): PageLog | undefined {
    const log = this.logs.get(page);
    return log === undefined ? undefined : { items: [...log.items], truncated: log.truncated };
  }

  /** The last deploy's log: from memory, or from disk after a restart. */
  async read(page: string): Promise<PageLog> {
    const held = this.logs.get(page);
    if (held !== undefined) return { items: [...held.items], truncated: held.truncated };
    try {
      const log = JSON.parse(await readFile(this.file(page), "utf8")) as PageLog;
      this.logs.set(page, log);
      return { items: [...log.items], truncated: log.truncated };
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return { items: [], truncated: false };
      throw error;
    }
  }

  /** Calls `listener` with every new event of `page` until the returned function is called. */
  subscribe(page: string, listener: Listener): () => void {
    const set = this.listeners.get(page) ?? new Set<Listener>();
    this.listeners.set(page, set);
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(page);
    };
  }

  async remove(page: string): Promise<void> {
    this.logs.delete(page);
    try {
      await unlink(this.file(page));
    } catch (error) {
      if (errnoCode(error) !== "ENOENT") throw error;
    }
  }

  private emit(page: string, event: PageLogEvent): void {
    for (const listener of this.listeners.get(page) ?? []) listener(event);
  }

  private file(page: string): string {
    return join(this.dir, `${page}.log.json`);
  }
}
