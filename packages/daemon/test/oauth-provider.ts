/**
 * A local OAuth provider for tests, shaped like Plex's PIN API: an https
 * server on 127.0.0.1 whose certificate comes from a CA the test makes (the
 * daemon trusts that CA through its configuration, verification stays on).
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { until } from "./daemon.js";

const run = promisify(execFile);

export interface Certificates {
  /** The CA's PEM file, to trust. */
  caFile: string;
  key: string;
  cert: string;
}

/** A CA and a certificate it signed for 127.0.0.1 and localhost, made with openssl in `dir`. */
export async function makeCertificates(dir: string): Promise<Certificates> {
  const file = (name: string): string => join(dir, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run("openssl", [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    file("ca.key"),
    "-out",
    file("ca.crt"),
    "-days",
    "2",
    "-subj",
    "/CN=Town OS test OAuth CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign",
  ]);
  await run("openssl", [
    "req",
    ...ec,
    "-keyout",
    file("server.key"),
    "-out",
    file("server.csr"),
    "-subj",
    "/CN=127.0.0.1",
  ]);
  await writeFile(file("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    file("server.csr"),
    "-CA",
    file("ca.crt"),
    "-CAkey",
    file("ca.key"),
    "-CAcreateserial",
    "-out",
    file("server.crt"),
    "-days",
    "2",
    "-extfile",
    file("server.ext"),
  ]);
  return {
    caFile: file("ca.crt"),
    key: await readFile(file("server.key"), "utf8"),
    cert: await readFile(file("server.crt"), "utf8"),
  };
}

export interface ProviderRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
}

export interface MockProvider {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly requests: ProviderRequest[];
  /** The PIN the next polls report as approved, with this token. */
  approve(pinId: number, token: string): void;
  /** The id of the PIN made last. */
  lastPin(): number;
  close(): Promise<void>;
}

export const PROVIDER_TOKEN = "plex-token-7c1e9a";

const PLEX_FIXTURE = join(
  import.meta.dirname,
  "../../format/test/fixtures/oauth/packages/plex/3.0.yaml",
);

/** The plex-shaped fixture with its provider (plex.tv, app.plex.tv) moved to `providerUrl`. */
export async function plexFixtureAt(providerUrl: string): Promise<string> {
  return (await readFile(PLEX_FIXTURE, "utf8"))
    .replaceAll("https://app.plex.tv/", `${providerUrl}/app/`)
    .replaceAll("https://plex.tv/", `${providerUrl}/`);
}

/**
 * Runs `action` (which starts a flow, and may wait for it), approves the PIN
 * its start request made with `token`, and returns what `action` returns.
 */
export async function approvingNextStart<T>(
  provider: MockProvider,
  token: string,
  action: () => Promise<T>,
): Promise<T> {
  const starts = (): number => provider.requests.filter((r) => r.method === "POST").length;
  const before = starts();
  const running = action();
  // Awaited below; a failure before the start request must not count as unhandled meanwhile.
  running.catch(() => undefined);
  await until(
    "the start request",
    10_000,
    () => Promise.resolve(starts()),
    (count) => count > before,
  );
  provider.approve(provider.lastPin(), token);
  return running;
}

/**
 * Plex's PIN API in small: `POST /api/v2/pins` makes a PIN for the
 * `X-Plex-Client-Identifier`, `GET /api/v2/pins/:id` reports its
 * `authToken` (null until approved; only to the same client). Odd answers
 * for the failure tests: `/redirect` sends elsewhere, `/big` is 100 KiB.
 */
export async function startMockProvider(certificates: Certificates): Promise<MockProvider> {
  const requests: ProviderRequest[] = [];
  const pins = new Map<number, { code: string; client: string; token: string | null }>();
  let nextPin = 1000;
  const json = (response: ServerResponse, status: number, body: unknown): void => {
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(body));
  };
  const server: Server = createServer(certificates, (request, response) => {
    const path = request.url ?? "/";
    requests.push({ method: request.method ?? "", path, headers: request.headers });
    const client = request.headers["x-plex-client-identifier"];
    if (path.startsWith("/redirect")) {
      response.writeHead(302, { location: "https://elsewhere.example/api/v2/pins" });
      response.end();
    } else if (path.startsWith("/big")) {
      json(response, 201, { id: 1, code: "BIG", padding: "x".repeat(100 * 1024) });
    } else if (request.method === "POST" && path.startsWith("/api/v2/pins")) {
      if (typeof client !== "string" || client === "") {
        json(response, 400, { error: "X-Plex-Client-Identifier is required" });
        return;
      }
      const id = nextPin++;
      pins.set(id, { code: `CODE${id}`, client, token: null });
      json(response, 201, { id, code: `CODE${id}`, authToken: null });
    } else if (request.method === "GET" && /^\/api\/v2\/pins\/[0-9]+$/.test(path)) {
      const id = Number(path.split("/").pop());
      const pin = pins.get(id);
      if (!pin || pin.client !== client) {
        json(response, 404, { error: "no such PIN" });
        return;
      }
      json(response, 200, { id, code: pin.code, authToken: pin.token });
    } else {
      json(response, 404, { error: "not found" });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `https://127.0.0.1:${port}`,
    requests,
    lastPin: () => nextPin - 1,
    approve(pinId, token) {
      const pin = pins.get(pinId);
      if (!pin) throw new Error(`no PIN ${pinId}`);
      pin.token = token;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
