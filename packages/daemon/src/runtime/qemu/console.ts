/**
 * A VM's serial console as its log stream.
 *
 * QEMU keeps the console in a ring buffer of its own (`-chardev ringbuf`,
 * CONSOLE_RING_BYTES): the guest never blocks on it, its output is kept while
 * the daemon is down (the newest megabyte of it), and a guest spamming its
 * console costs neither disk nor the daemon's memory. While the daemon runs,
 * a ConsoleRecorder drains that buffer over QMP a few times a second and
 * appends complete lines with the time they were read to `console.log`
 * (`<ISO time> <text>`, one a line), rotated to `console.log.1` at a size
 * cap. Lines are cut at MAX_CONSOLE_LINE_BYTES; control characters other
 * than tab (and terminal escape sequences) are dropped, so every line is
 * one printable line.
 */
import { EventEmitter } from "node:events";
import { constants } from "node:fs";
import { open, rename, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { systemClock, type Clock } from "../../clock.js";
import { NO_FOLLOW } from "../../system/proc.js";
import type { LogLine, LogOptions } from "../workload.js";

export const MAX_CONSOLE_LINE_BYTES = 16 * 1024;
/** Each of console.log and console.log.1. */
export const MAX_CONSOLE_FILE_BYTES = 8 * 1024 * 1024;
const CONSOLE_FILE = "console.log";
const ROTATED_FILE = "console.log.1";
const ISO_LENGTH = 24;
const READ_CHUNK_BYTES = 64 * 1024;
const FOLLOW_POLL_MS = 500;
const DRAIN_CHUNK_BYTES = 16 * 1024;
/** One drain reads at most the ring buffer's size (CONSOLE_RING_BYTES). */
const DRAIN_CHUNKS = 64;

/** One line as kept: when it was read, and its cleaned text. */
export interface ConsoleEntry {
  time: number;
  text: string;
}

/**
 * Splits console output into lines: complete ones as they come, a line
 * longer than the bound cut into pieces, the unfinished rest on `flush`.
 */
export class ConsoleLines {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxLineBytes = MAX_CONSOLE_LINE_BYTES) {}

  /** Bytes of an unfinished line held. */
  get held(): number {
    return this.pendingBytes;
  }

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(10, start);
      const end = newline === -1 ? chunk.length : newline;
      let piece = chunk.subarray(start, end);
      // A line over the bound is cut where it reaches it.
      while (this.pendingBytes + piece.length >= this.maxLineBytes) {
        const room = this.maxLineBytes - this.pendingBytes;
        this.pending.push(piece.subarray(0, room));
        lines.push(this.take());
        piece = piece.subarray(room);
      }
      this.pending.push(piece);
      this.pendingBytes += piece.length;
      if (newline === -1) break;
      lines.push(this.take());
      start = newline + 1;
    }
    return lines;
  }

  /** The unfinished line, if any (a prompt waiting for input, say). */
  flush(): string[] {
    return this.pendingBytes === 0 ? [] : [this.take()];
  }

  private take(): string {
    const text = cleanConsoleText(Buffer.concat(this.pending));
    this.pending = [];
    this.pendingBytes = 0;
    return text;
  }
}

/**
 * Console bytes as printable text: UTF-8 (invalid bytes become U+FFFD),
 * without terminal escape sequences or control characters other than tab.
 */
export function cleanConsoleText(bytes: Buffer): string {
  const text = new StringDecoder("utf8").end(bytes);
  return (
    text
      // eslint-disable-next-line no-control-regex -- CSI and OSC sequences are what this removes
      .replace(/\u001b(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|[@-_])/g, "")
      // eslint-disable-next-line no-control-regex -- control characters are what this removes
      .replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, "")
  );
}

/** `<ISO time> <text>`: how an entry is kept in the file. */
export function formatEntry(entry: ConsoleEntry): string {
  return `${new Date(entry.time).toISOString()} ${entry.text}\n`;
}

/** An entry read back; undefined for a line that is not one. */
export function parseEntry(line: string): ConsoleEntry | undefined {
  if (line.length < ISO_LENGTH + 1 || line[ISO_LENGTH] !== " ") return undefined;
  const time = Date.parse(line.slice(0, ISO_LENGTH));
  return Number.isNaN(time) ? undefined : { time, text: line.slice(ISO_LENGTH + 1) };
}

/**
 * The console log files of one VM: appends (one writer, the recorder) and
 * reads by LogOptions. Emits `append` after each append.
 */
export class ConsoleLog extends EventEmitter<{ append: [] }> {
  private size: number | undefined;

  constructor(
    readonly dir: string,
    private readonly maxFileBytes = MAX_CONSOLE_FILE_BYTES,
  ) {
    super();
    this.setMaxListeners(0);
  }

  /** Appends entries, moving a full file to console.log.1 whenever the next would not fit. */
  async append(entries: readonly ConsoleEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const path = join(this.dir, CONSOLE_FILE);
    let size = (this.size ??= await fileSize(path));
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const write = async (): Promise<void> => {
      if (batchBytes === 0) return;
      const file = await open(
        path,
        constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | NO_FOLLOW,
        0o600,
      );
      try {
        await file.write(Buffer.concat(batch));
      } finally {
        await file.close();
      }
      size += batchBytes;
      this.size = size;
      batch = [];
      batchBytes = 0;
    };
    for (const entry of entries) {
      const line = Buffer.from(formatEntry(entry));
      if (size + batchBytes > 0 && size + batchBytes + line.length > this.maxFileBytes) {
        await write();
        await rename(path, join(this.dir, ROTATED_FILE));
        size = this.size = 0;
      }
      batch.push(line);
      batchBytes += line.length;
    }
    await write();
    this.emit("append");
  }

  /**
   * The lines by `options`; with `follow`, new ones as they are appended
   * until `running()` turns false (and all is read) or the signal aborts.
   */
  async *read(options: LogOptions, running: () => Promise<boolean>): AsyncGenerator<LogLine> {
    const since = options.since?.getTime() ?? -Infinity;
    const until = options.until?.getTime() ?? Infinity;
    const wanted = (entry: ConsoleEntry): boolean => entry.time >= since && entry.time <= until;
    const toLine = (entry: ConsoleEntry): LogLine => ({
      stream: "stdout",
      time: options.timestamps === true ? new Date(entry.time) : null,
      text: entry.text,
    });
    if (options.stdout === false) return;
    const { signal } = options;
    const current = new LogReader(join(this.dir, CONSOLE_FILE));
    try {
      // Opened first: a rotation while the old file is read moves nothing past us.
      await current.open();
      // Without a tail, lines go out as they are read; with one, only the newest are held.
      const tail = options.tail;
      const history: ConsoleEntry[] = [];
      const rotated = new LogReader(join(this.dir, ROTATED_FILE));
      try {
        // Rotated after `current` was opened, the older file is `current` itself.
        const older = (await rotated.open()) && rotated.inode !== current.inode;
        const readers = older ? [rotated, current] : [current];
        reading: for (const reader of readers) {
          for await (const chunk of reader.chunks()) {
            for (const entry of chunk) {
              // Appended in time order: nothing after this one is wanted.
              if (entry.time > until) break reading;
              if (!wanted(entry)) continue;
              if (tail === undefined) {
                if (signal?.aborted === true) return;
                yield toLine(entry);
                continue;
              }
              history.push(entry);
              if (history.length > 2 * tail + 1024) history.splice(0, history.length - tail);
            }
          }
        }
      } finally {
        await rotated.close();
      }
      for (const entry of history.slice(Math.max(0, history.length - (tail ?? 0)))) {
        if (signal?.aborted === true) return;
        yield toLine(entry);
      }
      if (options.follow !== true) return;
      while (signal?.aborted !== true) {
        const more = await current.readMore();
        for (const entry of more) {
          if (entry.time > until) return;
          if (wanted(entry)) yield toLine(entry);
        }
        if (more.length > 0) continue;
        if (!(await running()) || Date.now() > until) {
          // What was appended just before it stopped.
          for (const entry of await current.readMore()) if (wanted(entry)) yield toLine(entry);
          return;
        }
        await this.nextAppend(signal);
      }
    } finally {
      await current.close();
    }
  }

  private nextAppend(signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.off("append", done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, FOLLOW_POLL_MS);
      this.on("append", done);
      signal?.addEventListener("abort", done);
    });
  }
}

/** Reads one log file by entries, from where it stopped; follows it across a rotation. */
class LogReader {
  private file: FileHandle | undefined;
  inode = 0;
  private offset = 0;
  private rest = Buffer.alloc(0);

  constructor(private readonly path: string) {}

  /** False when there is no such file (yet). */
  async open(): Promise<boolean> {
    try {
      this.file = await open(this.path, constants.O_RDONLY | NO_FOLLOW);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw error;
    }
    const info = await this.file.stat();
    this.inode = info.ino;
    this.offset = 0;
    this.rest = Buffer.alloc(0);
    return info.isFile();
  }

  /** The entries from where it stopped to the end, a chunk at a time. */
  async *chunks(): AsyncGenerator<ConsoleEntry[]> {
    for (let more = await this.readChunk(); more.length > 0; more = await this.readChunk())
      yield more;
  }

  async readAll(): Promise<ConsoleEntry[]> {
    const entries: ConsoleEntry[] = [];
    for await (const chunk of this.chunks()) entries.push(...chunk);
    return entries;
  }

  /** What was appended since the last read; moves to the new file after a rotation. */
  async readMore(): Promise<ConsoleEntry[]> {
    if (this.file === undefined) {
      return (await this.open()) ? this.readAll() : [];
    }
    const entries = await this.readAll();
    if (entries.length > 0) return entries;
    const now = await stat(this.path).catch(() => undefined);
    if (now !== undefined && now.ino !== this.inode) {
      await this.close();
      if (await this.open()) return this.readAll();
    }
    return [];
  }

  async close(): Promise<void> {
    await this.file?.close();
    this.file = undefined;
  }

  private async readChunk(): Promise<ConsoleEntry[]> {
    if (this.file === undefined) return [];
    const buffer = Buffer.alloc(READ_CHUNK_BYTES);
    const { bytesRead } = await this.file.read(buffer, 0, buffer.length, this.offset);
    if (bytesRead === 0) return [];
    this.offset += bytesRead;
    const data = Buffer.concat([this.rest, buffer.subarray(0, bytesRead)]);
    const end = data.lastIndexOf(10);
    // Only whole lines: the rest waits for its newline (the writer appends whole lines).
    this.rest = end === -1 ? data : data.subarray(end + 1);
    if (end === -1) {
      // No newline in far more than a line may hold: a damaged file, dropped rather than kept growing.
      if (this.rest.length > 4 * MAX_CONSOLE_LINE_BYTES) this.rest = Buffer.alloc(0);
      return [];
    }
    const entries: ConsoleEntry[] = [];
    for (const line of data.subarray(0, end).toString("utf8").split("\n")) {
      const entry = parseEntry(line);
      if (entry !== undefined) entries.push(entry);
    }
    return entries.length > 0 ? entries : this.readChunk();
  }

  /** A "line" far longer than any the writer makes: not ours, dropped. */
}

export interface ConsoleRecorderOptions {
  log: ConsoleLog;
  /** Takes up to `maxBytes` of what the guest wrote since the last call (QMP ringbuf-read). */
  read: (maxBytes: number) => Promise<Buffer>;
  clock?: Clock;
  /** How often the console is drained; default 250 ms. */
  intervalMs?: number;
  /** An unfinished line is written as it is after this long without its newline; default 1 s. */
  flushAfterMs?: number;
}

/**
 * Drains a running VM's console into its ConsoleLog, one drain at a time.
 * A failed read (QEMU gone) ends nothing: the owner stops the recorder.
 */
export class ConsoleRecorder {
  private readonly lines = new ConsoleLines();
  private readonly clock: Clock;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private partialSince: number | undefined;
  private stopped = false;

  constructor(private readonly options: ConsoleRecorderOptions) {
    this.clock = options.clock ?? systemClock;
  }

  start(): void {
    this.stopped = false;
    const tick = (): void => {
      void this.drain().finally(() => {
        if (this.stopped) return;
        this.timer = setTimeout(tick, this.options.intervalMs ?? 250);
        this.timer.unref();
      });
    };
    tick();
  }

  /** Reads what the guest wrote so far into the log (serialized with the timer's drains). */
  drain(): Promise<void> {
    this.running = this.running.then(() => this.drainNow()).catch(() => undefined);
    return this.running;
  }

  /** Stops draining; a last drain keeps what is in the buffer, and the unfinished line too. */
  async stop(options: { lastDrain?: boolean } = {}): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (options.lastDrain !== false) await this.drain();
    await this.running;
    const rest = this.lines.flush();
    this.partialSince = undefined;
    await this.options.log
      .append(rest.map((text) => ({ time: this.clock(), text })))
      .catch(() => undefined);
  }

  /** At most one ring buffer's worth, a chunk at a time: a chunk of newlines is many entries. */
  private async drainNow(): Promise<void> {
    let got = 0;
    for (let chunks = 0; chunks < DRAIN_CHUNKS; chunks++) {
      const chunk = await this.options.read(DRAIN_CHUNK_BYTES);
      if (chunk.length === 0) break;
      got += chunk.length;
      const time = this.clock();
      await this.options.log.append(this.lines.push(chunk).map((text) => ({ time, text })));
      if (chunk.length < DRAIN_CHUNK_BYTES) break;
    }
    const entries: ConsoleEntry[] = [];
    const now = this.clock();
    if (this.lines.held === 0) this.partialSince = undefined;
    else if (got > 0 || this.partialSince === undefined) this.partialSince = now;
    if (
      this.partialSince !== undefined &&
      now - this.partialSince >= (this.options.flushAfterMs ?? 1_000)
    ) {
      for (const text of this.lines.flush()) entries.push({ time: now, text });
      this.partialSince = undefined;
    }
    await this.options.log.append(entries);
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}
