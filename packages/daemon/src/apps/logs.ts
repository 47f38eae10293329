/**
 * App logs: paged history and a live follow over all containers of an app
 * (or one instance of its tree), read from Podman on every call; nothing is
 * stored by Town OS.
 *
 * Podman 4.3 gives log timestamps in whole seconds only, so lines are
 * ordered by (second, container in plan order, line within that second of
 * that container). That position never changes as containers write more, so
 * it makes a stable paging cursor (`<second>.<container>.<line>`).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { MAX_LOG_PAGE, type LogEntry, type LogEvent, type LogPage } from "@townos/api";
import { TownError, type CompiledPackage } from "@townos/format";
import type { LogLine, WorkloadInfo, WorkloadRuntime } from "../runtime/workload.js";
import { flattenPlan } from "./names.js";

/** What the logs read from the runtime: log streams, and inspection for start times. */
export type LogRuntime = Pick<WorkloadRuntime, "logs" | "inspect">;

/** One container of an app, in plan order (dependencies first). */
export interface AppContainer {
  /** Container name (the plan's hostname). */
  name: string;
  /** The package instance it runs (`gitea`, `gitea-db`). */
  instance: string;
  /** Position in the app's whole tree; part of the cursor. */
  index: number;
}

export interface LogQuery {
  /** Only older lines than this cursor; absent: the newest. */
  before?: string;
  limit: number;
  /** Case-insensitive substring. */
  search?: string;
}

export interface LogLimits {
  /** Characters kept of one line. */
  maxLineLength: number;
  /** Bytes of log text one page may read before it stops (and says `partial`). */
  maxScanBytes: number;
}

export const DEFAULT_LOG_LIMITS: LogLimits = { maxLineLength: 8192, maxScanBytes: 16 << 20 };
/** The first history window; each further one is four times wider. */
const FIRST_WINDOW_SECONDS = 60;

/** The app's containers (all, or those of one instance). @throws `not_found` */
export function appContainers(plan: CompiledPackage | null, instance?: string): AppContainer[] {
  const all = (plan ? flattenPlan(plan) : []).map(({ plan: node }, index) => ({
    name: node.hostname,
    instance: node.instance,
    index,
  }));
  if (instance === undefined) return all;
  const chosen = all.filter((container) => container.instance === instance);
  if (chosen.length === 0) {
    throw new TownError(
      "not_found",
      `the app has no instance "${instance}"; it has ${all.map((c) => c.instance).join(", ")}`,
    );
  }
  return chosen;
}

interface Position {
  second: number;
  container: number;
  line: number;
}

export function encodeCursor(position: Position): string {
  return `${position.second}.${position.container}.${position.line}`;
}

/** @throws `invalid_argument` */
export function decodeCursor(cursor: string): Position {
  const match = /^([0-9]{1,12})\.([0-9]{1,4})\.([0-9]{1,9})$/.exec(cursor);
  if (!match) throw new TownError("invalid_argument", `"${cursor}" is not a log cursor`);
  return { second: Number(match[1]), container: Number(match[2]), line: Number(match[3]) };
}

function compare(a: Position, b: Position): number {
  return a.second - b.second || a.container - b.container || a.line - b.line;
}

/** Where a container's log stood when last read: the last second seen and how many lines it had. */
export interface LogTip {
  second: number;
  count: number;
}

interface Positioned {
  position: Position;
  entry: LogEntry;
}

interface WindowScan {
  /** Matching lines, oldest first, at most `keep` per container. */
  lines: Positioned[];
  bytes: number;
  /** The byte budget ran out before the window was read. */
  cut: boolean;
  tips: Map<string, LogTip>;
}

/**
 * One page of history, newest last. Reads Podman in windows going back in
 * time (60 s, then 4× wider each) until the page is full, the oldest
 * container was created, or `maxScanBytes` were read.
 */
export async function readLogPage(
  runtime: LogRuntime,
  containers: readonly AppContainer[],
  query: LogQuery,
  now: number,
  limits: LogLimits = DEFAULT_LOG_LIMITS,
): Promise<LogPage> {
  return (await scanHistory(runtime, containers, query, now, limits)).page;
}

async function scanHistory(
  runtime: LogRuntime,
  containers: readonly AppContainer[],
  query: LogQuery,
  now: number,
  limits: LogLimits,
): Promise<{ page: LogPage; tips: Map<string, LogTip> }> {
  const limit = Math.max(0, Math.min(query.limit, MAX_LOG_PAGE));
  const upper: Position =
    query.before === undefined
      ? { second: Math.floor(now / 1000) + 1, container: 0, line: 0 }
      : decodeCursor(query.before);
  const search = query.search?.toLowerCase() ?? "";
  const infos = await Promise.all(containers.map((c) => runtime.inspect(c.name)));
  const present = containers.filter((_, i) => infos[i] !== undefined);
  const created = infos.flatMap((info) => (info?.created ? [info.created.getTime()] : []));
  const earliest = created.length > 0 ? Math.floor(Math.min(...created) / 1000) : upper.second;
  let tips = new Map<string, LogTip>();
  let kept: Positioned[] = [];
  let scannedBytes = 0;
  // A cursor at the start of a second excludes all of it.
  let high = upper.container === 0 && upper.line === 0 ? upper.second - 1 : upper.second;
  let width = FIRST_WINDOW_SECONDS;
  let retried = false;
  for (let first = true; ; first = false) {
    let low = Math.max(high - width + 1, earliest);
    const window = { high, upper, search, keep: limit, limits };
    let scan = await scanWindow(runtime, present, {
      ...window,
      low,
      budget: limits.maxScanBytes - scannedBytes,
    });
    scannedBytes += scan.bytes;
    if (scan.cut && !retried) {
      // Too busy for what is left of the budget: its newest second alone, on a budget of its
      // own. Once a page, so that every page gets at least one second further.
      retried = true;
      low = high;
      scan = await scanWindow(runtime, present, { ...window, low, budget: limits.maxScanBytes });
      scannedBytes += scan.bytes;
      if (scan.cut) {
        // One second held more than the budget: what was read of it is shown, the rest skipped.
        kept = newest([...scan.lines, ...kept], limit);
        if (first) tips = scan.tips;
        return { page: page(kept, { second: high, container: 0, line: 0 }, true), tips };
      }
    }
    if (first) tips = scan.tips;
    if (scan.cut) {
      // A window read in part would leave a hole: drop it; the next page starts after it.
      return { page: page(kept, { second: high + 1, container: 0, line: 0 }, true), tips };
    }
    kept = newest([...scan.lines, ...kept], limit);
    if (kept.length >= limit || low <= earliest) {
      const oldest = kept[0]?.position ?? { second: low, container: 0, line: 0 };
      return {
        page: page(kept, low <= earliest && kept.length < limit ? null : oldest, false),
        tips,
      };
    }
    high = low - 1;
    width *= 4;
  }

  function page(lines: Positioned[], before: Position | null, partial: boolean): LogPage {
    return {
      items: lines.map((line) => line.entry),
      before: before === null ? null : encodeCursor(before),
      partial,
      scannedBytes,
    };
  }
}

async function scanWindow(
  runtime: LogRuntime,
  containers: readonly AppContainer[],
  window: {
    low: number;
    high: number;
    upper: Position;
    search: string;
    keep: number;
    budget: number;
    limits: LogLimits;
  },
): Promise<WindowScan> {
  const abort = new AbortController();
  let bytes = 0;
  let cut = false;
  const tips = new Map<string, LogTip>();
  const perContainer = await Promise.all(
    containers.map(async (container) => {
      const kept: Positioned[] = [];
      let tip: LogTip = { second: window.low, count: 0 };
      let lines: AsyncGenerator<LogLine>;
      try {
        // Until is inclusive and exact to the nanosecond: one second more, trimmed below.
        lines = await runtime.logs(container.name, {
          timestamps: true,
          since: new Date(window.low * 1000),
          until: new Date((window.high + 1) * 1000),
          signal: abort.signal,
        });
      } catch (error) {
        // Removed since it was inspected: it has no logs any more.
        if (error instanceof TownError && error.code === "not_found") return kept;
        throw error;
      }
      for await (const line of lines) {
        const second = Math.floor((line.time?.getTime() ?? 0) / 1000);
        if (second < window.low || second > window.high) continue;
        bytes += Buffer.byteLength(line.text) + 1;
        if (bytes > window.budget) {
          cut = true;
          abort.abort();
          break;
        }
        tip = second === tip.second ? { second, count: tip.count + 1 } : { second, count: 1 };
        const position = { second, container: container.index, line: tip.count - 1 };
        if (compare(position, window.upper) >= 0) continue;
        if (window.search !== "" && !line.text.toLowerCase().includes(window.search)) continue;
        if (window.keep === 0) continue;
        kept.push({ position, entry: entry(container, line, second, window.limits) });
        // Trimmed in batches: only the newest `keep` can make the page.
        if (kept.length >= 2 * window.keep) kept.splice(0, kept.length - window.keep);
      }
      tips.set(container.name, tip);
      return kept;
    }),
  );
  const lines = perContainer.flat().sort((a, b) => compare(a.position, b.position));
  return { lines: newest(lines, window.keep), bytes, cut, tips };
}

/** The last `count` items (none for 0). */
function newest<T>(items: T[], count: number): T[] {
  return items.slice(Math.max(0, items.length - count));
}

function entry(
  container: AppContainer,
  line: LogLine,
  second: number,
  limits: LogLimits,
): LogEntry {
  const truncated = line.text.length > limits.maxLineLength;
  return {
    container: container.name,
    instance: container.instance,
    stream: line.stream,
    time: second * 1000,
    text: truncated ? line.text.slice(0, limits.maxLineLength) : line.text,
    truncated,
  };
}

export interface FollowOptions {
  /** Lines of history first (with `search` applied). */
  tail: number;
  search?: string;
  /** Ends the follow; every Podman stream is closed before the generator returns. */
  signal: AbortSignal;
  /** How often a stopped or missing container is looked at again; default 1 s. */
  pollMs?: number;
  limits?: LogLimits;
  now: () => number;
}

/** Events waiting for a slow reader before the followers pause. */
const FOLLOW_BUFFER = 256;

/**
 * Follows the app's containers: first the last `tail` lines, then new lines
 * as they come, merged in arrival order. A container that stops is followed
 * again when it runs again, and a recreated one from its first line. Ends
 * (quietly) when `signal` aborts.
 */
export async function* followLogs(
  runtime: LogRuntime,
  containers: readonly AppContainer[],
  options: FollowOptions,
): AsyncGenerator<LogEvent> {
  const limits = options.limits ?? DEFAULT_LOG_LIMITS;
  const search = options.search?.toLowerCase() ?? "";
  const history = await scanHistory(
    runtime,
    containers,
    { limit: options.tail, ...(options.search ? { search: options.search } : {}) },
    options.now(),
    limits,
  );
  for (const item of history.page.items) yield { type: "line", ...item };
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  const queue = new EventQueue<LogEvent>(FOLLOW_BUFFER, signal);
  const followers = containers.map((container) =>
    followContainer(runtime, container, {
      tip: history.tips.get(container.name),
      search,
      limits,
      pollMs: options.pollMs ?? 1000,
      signal,
      emit: (event) => queue.push(event),
    }).catch((error: unknown) => {
      queue.fail(error);
    }),
  );
  try {
    for (;;) {
      const event = await queue.next();
      if (event === undefined) return;
      yield event;
    }
  } finally {
    stop.abort();
    await Promise.all(followers);
  }
}

async function followContainer(
  runtime: LogRuntime,
  container: AppContainer,
  options: {
    tip: LogTip | undefined;
    search: string;
    limits: LogLimits;
    pollMs: number;
    signal: AbortSignal;
    emit: (event: LogEvent) => Promise<void>;
  },
): Promise<void> {
  const { signal } = options;
  // A function, so that the compiler does not take the loop condition's answer for granted.
  const stopped = (): boolean => signal.aborted;
  const state = (value: "attached" | "detached" | "missing"): Promise<void> =>
    options.emit({
      type: "container",
      container: container.name,
      instance: container.instance,
      state: value,
    });
  let tip = options.tip;
  let id: string | undefined;
  /** The run (container id and start time) whose output was read to its end. */
  let drained: string | undefined;
  let missing = false;
  while (!stopped()) {
    let info: WorkloadInfo | undefined;
    try {
      info = await runtime.inspect(container.name);
    } catch {
      // Podman restarting or busy: look again shortly.
      await pause(options.pollMs, signal);
      continue;
    }
    if (!info) {
      if (!missing) await state("missing");
      missing = true;
      await pause(options.pollMs, signal);
      continue;
    }
    missing = false;
    // A recreated container has a log of its own: all of it is new.
    if (id !== undefined && info.id !== id) tip = undefined;
    id = info.id;
    const run = `${info.id}@${String(info.state.startedAt?.getTime())}`;
    if (!info.state.running && drained === run) {
      await pause(options.pollMs, signal);
      continue;
    }
    try {
      const lines = await runtime.logs(container.name, {
        follow: true,
        timestamps: true,
        ...(tip ? { since: new Date(tip.second * 1000) } : {}),
        signal,
      });
      await state("attached");
      // Lines of the tip's second that were seen already come first again: skip them.
      let skip = tip ? { second: tip.second, left: tip.count } : undefined;
      for await (const line of lines) {
        const second = Math.floor((line.time?.getTime() ?? 0) / 1000);
        if (skip && second === skip.second && skip.left > 0) {
          skip.left -= 1;
          continue;
        }
        skip = undefined;
        tip = tip?.second === second ? { second, count: tip.count + 1 } : { second, count: 1 };
        if (options.search !== "" && !line.text.toLowerCase().includes(options.search)) continue;
        await options.emit({ type: "line", ...entry(container, line, second, options.limits) });
      }
    } catch (error) {
      if (stopped()) return;
      // Removed meanwhile, or Podman restarting: look again shortly; anything else ends the follow.
      if (!(error instanceof TownError && ["not_found", "unavailable"].includes(error.code))) {
        throw error;
      }
      await pause(options.pollMs, signal);
      continue;
    }
    if (stopped()) return;
    drained = run;
    await state("detached");
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal }).catch(() => undefined);
}

/**
 * A bounded hand-over from several producers to one reader: `push` waits
 * while it is full, `next` waits while it is empty; both give up when the
 * signal aborts (`next` then answers undefined). A producer's failure is
 * thrown to the reader.
 */
export class EventQueue<T> {
  private readonly items: T[] = [];
  private wakeReader: (() => void) | undefined;
  private readonly wakeWriters: (() => void)[] = [];
  private failure: { error: unknown } | undefined;

  constructor(
    private readonly capacity: number,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener("abort", () => {
      this.wake();
    });
  }

  async push(item: T): Promise<void> {
    while (this.items.length >= this.capacity && !this.signal.aborted) {
      await new Promise<void>((resolve) => this.wakeWriters.push(resolve));
    }
    if (this.signal.aborted) return;
    this.items.push(item);
    this.wakeReader?.();
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    this.wake();
  }

  async next(): Promise<T | undefined> {
    for (;;) {
      if (this.failure) throw this.failure.error;
      if (this.signal.aborted) return undefined;
      const item = this.items.shift();
      if (item !== undefined) {
        this.wakeWriters.shift()?.();
        return item;
      }
      await new Promise<void>((resolve) => {
        this.wakeReader = resolve;
      });
      this.wakeReader = undefined;
    }
  }

  private wake(): void {
    this.wakeReader?.();
    for (const resolve of this.wakeWriters.splice(0)) resolve();
  }
}
