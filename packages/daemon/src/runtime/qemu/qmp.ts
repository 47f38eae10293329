/**
 * A small client of QEMU's machine protocol (QMP) over its unix socket:
 * JSON messages, one a line. After QEMU's greeting, `qmp_capabilities`
 * leaves negotiation mode; then commands carry an `id` their answer
 * repeats, and events come in between. QEMU serves one client at a time on
 * a socket, so a VM has one connection that everything shares.
 *
 * Answers are bounded (a line longer than `MAX_LINE_BYTES` closes the
 * connection) and every command has a time limit.
 */
import { EventEmitter } from "node:events";
import { createConnection, type Socket } from "node:net";
import { TownError } from "@townos/format";

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  /** From QEMU's timestamp. */
  time: Date;
}

export interface QmpConnectOptions {
  /** For the connection and the greeting; default 5 s. */
  timeoutMs?: number;
}

/** The longest message accepted (the console's ring-buffer reads are the largest). */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 5_000;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * One QMP connection. Emits `event` (QmpEvent) and `close` (once, when the
 * connection ends for any reason; pending commands fail `unavailable`).
 */
export class QmpClient extends EventEmitter<{ event: [QmpEvent]; close: [] }> {
  private readonly pending = new Map<string, Pending>();
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private nextId = 1;
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly context: string,
  ) {
    super();
  }

  /**
   * Connects, reads the greeting and negotiates capabilities.
   * @throws TownError unavailable when the socket does not answer as QMP in time
   */
  static async connect(path: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const context = `qmp ${path}`;
    const socket = createConnection(path);
    const client = new QmpClient(socket, context);
    const greeting = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new TownError("unavailable", `${context}: no greeting within ${timeoutMs} ms`));
      }, timeoutMs);
      client.onGreeting = () => {
        clearTimeout(timer);
        resolve();
      };
      socket.once("error", (error) => {
        clearTimeout(timer);
        reject(new TownError("unavailable", `${context}: ${error.message}`, { cause: error }));
      });
      socket.once("close", () => {
        clearTimeout(timer);
        reject(new TownError("unavailable", `${context}: closed before its greeting`));
      });
    });
    socket.on("data", (chunk: Buffer) => {
      client.receive(chunk);
    });
    socket.on("error", () => {
      // "close" follows and fails what is pending.
    });
    socket.on("close", () => {
      client.closeWith(new TownError("unavailable", `${context}: the connection closed`));
    });
    try {
      await greeting;
      await client.execute("qmp_capabilities", undefined, timeoutMs);
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  /** Set by `connect` until the greeting came. */
  private onGreeting: (() => void) | undefined;

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Runs a command; its `return` value.
   * @throws TownError unavailable (closed, out of time), invalid_argument (QEMU's error answer)
   */
  execute(
    command: string,
    args?: Record<string, unknown>,
    timeoutMs = DEFAULT_TIMEOUT_MS,
  ): Promise<unknown> {
    if (this.closed)
      return Promise.reject(new TownError("unavailable", `${this.context}: the connection closed`));
    const id = `town-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new TownError(
            "unavailable",
            `${this.context}: ${command} got no answer in ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const message = { execute: command, ...(args === undefined ? {} : { arguments: args }), id };
      this.socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
    this.closeWith(new TownError("unavailable", `${this.context}: the connection closed`));
  }

  private closeWith(error: TownError): void {
    if (this.closed) return;
    this.closed = true;
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(error);
    }
    this.pending.clear();
    this.emit("close");
  }

  private receive(chunk: Buffer): void {
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
      const line = Buffer.concat([...this.buffered, chunk.subarray(start, newline)]);
      this.buffered = [];
      this.bufferedBytes = 0;
      start = newline + 1;
      if (line.length > MAX_LINE_BYTES) {
        this.tooLong();
        return;
      }
      this.message(line.toString("utf8"));
      if (this.closed) return;
    }
    const rest = chunk.subarray(start);
    this.bufferedBytes += rest.length;
    if (this.bufferedBytes > MAX_LINE_BYTES) {
      this.tooLong();
      return;
    }
    if (rest.length > 0) this.buffered.push(rest);
  }

  private tooLong(): void {
    this.socket.destroy();
    this.closeWith(
      new TownError("io", `${this.context}: a message longer than ${MAX_LINE_BYTES} bytes`),
    );
  }

  private message(text: string): void {
    if (text.trim() === "") return;
    let message: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return;
      message = parsed as Record<string, unknown>;
    } catch {
      this.socket.destroy();
      this.closeWith(new TownError("io", `${this.context}: an answer that is not JSON`));
      return;
    }
    if ("QMP" in message) {
      this.onGreeting?.();
      this.onGreeting = undefined;
      return;
    }
    if (typeof message["event"] === "string") {
      this.emit("event", {
        event: message["event"],
        data: record(message["data"]),
        time: eventTime(message["timestamp"]),
      });
      return;
    }
    const id = message["id"];
    const pending = typeof id === "string" ? this.pending.get(id) : undefined;
    if (pending === undefined || typeof id !== "string") return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if ("return" in message) {
      pending.resolve(message["return"]);
      return;
    }
    const error = record(message["error"]);
    const desc = typeof error["desc"] === "string" ? error["desc"] : "failed";
    const kind = typeof error["class"] === "string" ? error["class"] : "GenericError";
    pending.reject(new TownError("invalid_argument", `${this.context}: ${kind}: ${desc}`));
  }
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function eventTime(value: unknown): Date {
  const { seconds, microseconds } = record(value);
  return typeof seconds === "number" && typeof microseconds === "number"
    ? new Date(seconds * 1000 + Math.floor(microseconds / 1000))
    : new Date();
}
