/**
 * HTTP transport to libpod's REST API (v4) on its unix socket, with
 * node:http. Every call names what it does (`create container x`), has a
 * time limit and a bound on the bytes it reads, and fails with a TownError
 * whose message starts with `podman: <what>: ` followed by libpod's message.
 */
import http from "node:http";
import { TownError, type ErrorCode } from "@townos/format";
import { TimeLimit } from "./time-limit.js";

export const DEFAULT_SOCKET_PATH = "/run/podman/podman.sock";
/** Libpod serves every v4 release under this prefix; 4.0.0 is the oldest we speak to. */
const API_PREFIX = "/v4.0.0/libpod";
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_BYTES = 8 * 1024 * 1024;
/** Error bodies are short JSON; a longer one is cut, not read to the end. */
const MAX_ERROR_BYTES = 64 * 1024;

export type QueryValue = string | number | boolean | readonly string[] | undefined;

export interface LibpodRequest {
  method: "GET" | "POST" | "DELETE";
  /** Path below `/libpod`, with every parameter already URI-encoded. */
  path: string;
  query?: Readonly<Record<string, QueryValue>>;
  /** Sent as JSON. */
  body?: unknown;
  /** What the call does, for errors: `create container town-default--gitea`. */
  context: string;
  /** For the whole call (`request`), or until the response starts (`stream`). */
  timeoutMs?: number;
  /** Response body limit (`request` only). */
  maxBytes?: number;
  /** Statuses at or above 400 that are answers rather than errors (404 for "absent"). */
  accept?: readonly number[];
  signal?: AbortSignal;
}

export interface LibpodResponse {
  status: number;
  /** Parsed JSON; the text when the body is not JSON; undefined when empty. */
  body: unknown;
}

export class LibpodClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

  constructor(readonly socketPath: string = DEFAULT_SOCKET_PATH) {}

  /** One request, its whole (bounded) body read and parsed. */
  async request(options: LibpodRequest): Promise<LibpodResponse> {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    const limit = new TimeLimit(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, options.signal);
    try {
      const response = await this.send(options, limit.signal);
      const failed = (response.statusCode ?? 0) >= 400;
      const bytes = failed
        ? await readBody(response, MAX_ERROR_BYTES, options.context, "truncate")
        : await readBody(response, maxBytes, options.context, "throw");
      return this.answer(options, response, bytes);
    } catch (error) {
      throw this.transportError(error, options, limit);
    } finally {
      limit.clear();
    }
  }

  /**
   * Starts a streaming request (logs, events, pull, exec) and resolves with
   * the response once its status says success; the caller reads the body and
   * must consume or destroy it. Abort `signal` to end the stream.
   */
  async stream(options: LibpodRequest): Promise<http.IncomingMessage> {
    const limit = new TimeLimit(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, options.signal);
    let response: http.IncomingMessage;
    try {
      response = await this.send(options, limit.signal);
    } catch (error) {
      throw this.transportError(error, options, limit);
    } finally {
      limit.clear();
    }
    const status = response.statusCode ?? 0;
    // The caller's signal stays attached to the request: aborting it ends the stream.
    if (status < 400) return response;
    const bytes = await readBody(response, MAX_ERROR_BYTES, options.context, "truncate");
    throw libpodError(status, parseBody(bytes), options.context);
  }

  /** Closes idle connections; streams still open keep theirs. */
  close(): void {
    this.agent.destroy();
  }

  private send(options: LibpodRequest, signal: AbortSignal): Promise<http.IncomingMessage> {
    const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers: http.OutgoingHttpHeaders = { Host: "podman" };
    if (body) {
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = body.length;
    }
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          socketPath: this.socketPath,
          agent: this.agent,
          method: options.method,
          path: `${API_PREFIX}${options.path}${queryString(options.query)}`,
          headers,
          signal,
        },
        resolve,
      );
      request.once("error", reject);
      request.end(body);
    });
  }

  private answer(
    options: LibpodRequest,
    response: http.IncomingMessage,
    bytes: Buffer,
  ): LibpodResponse {
    const status = response.statusCode ?? 0;
    const body = parseBody(bytes);
    if (status >= 400 && !(options.accept ?? []).includes(status)) {
      throw libpodError(status, body, options.context);
    }
    return { status, body };
  }

  private transportError(error: unknown, options: LibpodRequest, limit: TimeLimit): TownError {
    if (error instanceof TownError) return error;
    const prefix = `podman: ${options.context}`;
    if (limit.expired) {
      return new TownError("unavailable", `${prefix}: no answer within ${limit.ms} ms`, {
        cause: error,
      });
    }
    if (options.signal?.aborted) {
      return new TownError("unavailable", `${prefix}: cancelled`, { cause: error });
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ECONNREFUSED") {
      return new TownError(
        "unavailable",
        `${prefix}: the Podman service is not running (nothing answers on ${this.socketPath})`,
        { cause: error },
      );
    }
    const message = error instanceof Error ? error.message : String(error);
    return new TownError("unavailable", `${prefix}: ${message}`, { cause: error });
  }
}

/** Maps a libpod error answer (`{cause, message, response}`) to a TownError. */
export function libpodError(status: number, body: unknown, context: string): TownError {
  let message = `HTTP ${status}`;
  let cause = "";
  if (typeof body === "string" && body.trim() !== "") message = body.trim();
  if (body !== null && typeof body === "object") {
    const fields = body as Record<string, unknown>;
    if (typeof fields["message"] === "string" && fields["message"] !== "")
      message = fields["message"];
    if (typeof fields["cause"] === "string") cause = fields["cause"];
  }
  return new TownError(errorCode(status, cause, message), `podman: ${context}: ${message}`);
}

/**
 * Libpod 4.3 answers many conflicts and absences with 500, so its `cause`
 * (the Go sentinel error's text) decides as much as the status.
 */
function errorCode(status: number, cause: string, message: string): ErrorCode {
  if (status === 404 || /^no such |not known$|^no container|^no pod|not found/.test(cause)) {
    return "not_found";
  }
  // A host port still held (by a removed container's conmon on its way out, or
  // another program) frees up: retried, where a conflict would wait for a new change.
  if (/address already in use/.test(`${cause} ${message}`)) return "unavailable";
  if (
    status === 409 ||
    /already in use|already exists|already used|state improper|being used/.test(cause)
  ) {
    return "conflict";
  }
  if (status === 400) return "invalid_argument";
  return "io";
}

function queryString(query: LibpodRequest["query"]): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    if (typeof value === "object") {
      for (const item of value) params.append(key, item);
    } else params.append(key, String(value));
  }
  const text = params.toString();
  return text === "" ? "" : `?${text}`;
}

/** Reads a body of at most `maxBytes`: beyond that, fails or keeps only the start. */
async function readBody(
  response: http.IncomingMessage,
  maxBytes: number,
  context: string,
  overflow: "throw" | "truncate",
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      response.destroy();
      if (overflow === "truncate") {
        chunks.push(chunk.subarray(0, chunk.length - (total - maxBytes)));
        break;
      }
      throw new TownError(
        "payload_too_large",
        `podman: ${context}: the answer is larger than ${maxBytes} bytes`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** JSON when the body parses as JSON (libpod leaves out Content-Type on some answers), else text. */
function parseBody(bytes: Buffer): unknown {
  if (bytes.length === 0) return undefined;
  const text = bytes.toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
