/**
 * A stand-in for libpod's REST API on a unix socket, for tests of the
 * driver's transport and parsing (the real Podman is for the integration
 * tests). The test answers each request itself; every request is recorded.
 */
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import { join } from "node:path";

export interface FakeRequest {
  method: string;
  /** Below `/v4.0.0/libpod`, still URI-encoded. */
  path: string;
  query: URLSearchParams;
  /** Parsed JSON, or undefined without a body. */
  body: unknown;
}

export type FakeHandler = (
  request: FakeRequest,
  response: http.ServerResponse,
) => void | Promise<void>;

export interface FakeLibpod {
  socketPath: string;
  requests: FakeRequest[];
  close(): Promise<void>;
}

const PREFIX = "/v4.0.0/libpod";

export async function startFakeLibpod(handler: FakeHandler): Promise<FakeLibpod> {
  const dir = await mkdtemp(join(os.tmpdir(), "town-fake-libpod-"));
  const socketPath = join(dir, "podman.sock");
  const requests: FakeRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://podman");
      const text = Buffer.concat(chunks).toString("utf8");
      const request: FakeRequest = {
        method: req.method ?? "",
        path: url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) : url.pathname,
        query: url.searchParams,
        body: text === "" ? undefined : (JSON.parse(text) as unknown),
      };
      requests.push(request);
      Promise.resolve(handler(request, res)).catch((error: unknown) => {
        res.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, resolve);
  });
  return {
    socketPath,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Answers JSON with a status, as libpod does. */
export function sendJson(response: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  response.end(text);
}

/** Libpod's error answer: `{cause, message, response}`. */
export function sendError(
  response: http.ServerResponse,
  status: number,
  cause: string,
  message: string,
): void {
  sendJson(response, status, { cause, message, response: status });
}

/** One frame of a multiplexed stdout (1) / stderr (2) stream. */
export function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}
