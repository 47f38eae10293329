/**
 * Caddy's admin API (2.6) over node:http, on a unix socket or a loopback
 * port, and the driver that loads compiled ingress configs through it:
 * only when the config's hash differs from what Caddy runs, keeping the
 * error of a config Caddy refused (Caddy then keeps the previous one).
 */
import { readFile } from "node:fs/promises";
import http from "node:http";
import { join } from "node:path";
import { TownError } from "@townos/format";
import { configHash, HOST_PORT, type CompiledIngress } from "./config.js";

const DEFAULT_TIMEOUT_MS = 10_000;
/** A full config with thousands of routes stays far below this. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

export interface AdminAnswer {
  status: number;
  text: string;
}

/** One admin endpoint: `unix//path/to.sock` or a loopback `HOST:PORT`. */
export class CaddyAdmin {
  private readonly target: { socketPath: string } | { host: string; port: number };
  /**
   * Caddy checks the Host header against the listen address; on a unix
   * socket it accepts only an empty one (which node sends only with setHost off).
   */
  private readonly hostHeader: string;

  constructor(
    readonly address: string,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {
    if (address.startsWith("unix/")) {
      this.target = { socketPath: address.slice("unix/".length) };
      this.hostHeader = "";
    } else {
      const match = HOST_PORT.exec(address);
      if (!match)
        throw new TownError("invalid_argument", `caddy: "${address}" is not an admin address`);
      this.target = { host: (match[1] ?? "").replace(/^\[(.*)\]$/, "$1"), port: Number(match[2]) };
      this.hostHeader = address;
    }
  }

  /** The config Caddy runs (`null` when it has none). */
  async config(): Promise<unknown> {
    const answer = await this.call("GET", "/config/", undefined, "read config");
    return parseJson(answer.text, "read config");
  }

  /** Replaces the whole config; Caddy keeps the old one when it refuses the new. */
  async load(config: unknown): Promise<void> {
    await this.call("POST", "/load", JSON.stringify(config), "load config");
  }

  /** The local CA's root certificate (PEM), from `GET /pki/ca/local`. */
  async localRoot(): Promise<string> {
    const answer = await this.call("GET", "/pki/ca/local", undefined, "read the local CA");
    const body = parseJson(answer.text, "read the local CA");
    const pem =
      body !== null && typeof body === "object"
        ? (body as Record<string, unknown>)["root_certificate"]
        : undefined;
    if (typeof pem !== "string" || !pem.includes("BEGIN CERTIFICATE"))
      throw new TownError("io", "caddy: read the local CA: the answer holds no root certificate");
    return pem;
  }

  /** Asks Caddy to exit (gracefully). */
  async stop(): Promise<void> {
    await this.call("POST", "/stop", undefined, "stop");
  }

  /** One call; answers of 400 and above become TownErrors carrying Caddy's message. */
  async call(
    method: "GET" | "POST",
    path: string,
    body: string | undefined,
    context: string,
  ): Promise<AdminAnswer> {
    let answer: AdminAnswer;
    try {
      answer = await this.send(method, path, body);
    } catch (error) {
      if (error instanceof TownError) throw error.withContext(`caddy: ${context}`);
      const code = (error as NodeJS.ErrnoException).code;
      const reason =
        code === "ENOENT" || code === "ECONNREFUSED"
          ? `Caddy is not running (nothing answers on ${this.address})`
          : error instanceof Error
            ? error.message
            : String(error);
      throw new TownError("unavailable", `caddy: ${context}: ${reason}`, { cause: error });
    }
    if (answer.status >= 400) {
      // Caddy answers errors as {"error": "..."}.
      const parsed = safeJson(answer.text);
      const message =
        parsed !== null && typeof parsed === "object" && "error" in parsed
          ? String(parsed.error)
          : answer.text.trim() || `HTTP ${answer.status}`;
      throw new TownError(
        answer.status === 400 ? "invalid_argument" : answer.status === 404 ? "not_found" : "io",
        `caddy: ${context}: ${message}`,
      );
    }
    return answer;
  }

  private send(method: string, path: string, body: string | undefined): Promise<AdminAnswer> {
    const headers: http.OutgoingHttpHeaders = { host: this.hostHeader };
    const payload = body === undefined ? undefined : Buffer.from(body);
    if (payload) {
      headers["content-type"] = "application/json";
      headers["content-length"] = payload.length;
    }
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          ...this.target,
          method,
          path,
          headers,
          setHost: false,
          agent: false,
          signal: AbortSignal.timeout(this.timeoutMs),
        },
        (response) => {
          const chunks: Buffer[] = [];
          let total = 0;
          response.on("data", (chunk: Buffer) => {
            total += chunk.length;
            if (total > MAX_ANSWER_BYTES) {
              response.destroy(
                new TownError(
                  "payload_too_large",
                  `the answer is larger than ${MAX_ANSWER_BYTES} bytes`,
                ),
              );
              return;
            }
            chunks.push(chunk);
          });
          response.once("error", reject);
          response.once("end", () => {
            resolve({
              status: response.statusCode ?? 0,
              text: Buffer.concat(chunks).toString("utf8"),
            });
          });
        },
      );
      request.once("error", (error) => {
        reject(
          error.name === "AbortError" || error.name === "TimeoutError"
            ? new TownError("unavailable", `no answer within ${this.timeoutMs} ms`, {
                cause: error,
              })
            : error,
        );
      });
      request.end(payload);
    });
  }
}

/**
 * Applies compiled ingress configs. Not safe for concurrent `apply` calls:
 * the supervisor serializes them.
 */
export class CaddyDriver {
  /** Hash of the config Caddy runs, as far as we know (undefined: not known yet). */
  appliedHash: string | undefined;
  /** The last config Caddy accepted from us or was seen running. */
  lastAccepted: unknown;
  /** Why the last load failed; cleared by the next successful one. */
  lastError: TownError | undefined;

  constructor(
    readonly admin: CaddyAdmin,
    private readonly storageDir: string,
  ) {}

  /**
   * Reads what Caddy runs and remembers its hash (after adopting an already
   * running Caddy or a restart, and on each watch). Returns the hash.
   */
  async observe(): Promise<string> {
    const running = await this.admin.config();
    this.appliedHash = configHash(running);
    if (running !== null) this.lastAccepted = running;
    return this.appliedHash;
  }

  /**
   * Loads `compiled` unless Caddy already runs it. Idempotent. A refused
   * config throws a TownError with Caddy's message (and is kept in
   * `lastError`); Caddy keeps serving the previous config.
   */
  async apply(compiled: CompiledIngress): Promise<"unchanged" | "loaded"> {
    if (this.appliedHash === compiled.caddyHash) return "unchanged";
    try {
      await this.admin.load(compiled.config);
    } catch (error) {
      const failure =
        error instanceof TownError ? error : new TownError("io", String(error), { cause: error });
      this.lastError = failure;
      throw failure;
    }
    this.appliedHash = compiled.caddyHash;
    this.lastAccepted = compiled.config;
    this.lastError = undefined;
    return "loaded";
  }

  /**
   * The local CA's root certificate (PEM): from the admin API, or, when Caddy
   * is down or has not loaded its PKI app yet, from the CA's file in storage.
   */
  async rootCertificate(): Promise<string> {
    try {
      return await this.admin.localRoot();
    } catch (apiError) {
      try {
        return await readFile(join(this.storageDir, "pki/authorities/local/root.crt"), "utf8");
      } catch {
        throw new TownError(
          "unavailable",
          `caddy: the local CA has no root certificate yet (${apiError instanceof Error ? apiError.message : String(apiError)})`,
          { cause: apiError },
        );
      }
    }
  }
}

function parseJson(text: string, context: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new TownError("io", `caddy: ${context}: the answer is not JSON`, { cause: error });
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
