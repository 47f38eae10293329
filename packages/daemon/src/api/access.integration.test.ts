/**
 * Plays a hostile LAN against a real daemon over HTTP: every route of the API
 * document, under every spelling of its path that a parser might read
 * differently, sent anonymously and as an ordinary user; forged cross-origin
 * changes; malformed cookies and query values.
 */
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { FetchedRepository, RepositoryFetcher } from "../catalog/catalog.js";
import { startDaemon, type RunningDaemon } from "../daemon.js";
import { compileAllSchemas } from "./server.js";
import { testDaemonConfig } from "../../test/daemon.js";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends `target` exactly as written (no URL normalisation by the client). */
function send(
  url: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Answer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    // A declared length: DELETE is not chunked by default, and an unframed body would be read as a request.
    const length = body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) };
    const request = httpRequest(
      { host: hostname, port, method, path: target, headers: { ...headers, ...length } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString(),
          });
        });
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

interface Operation {
  method: string;
  path: string;
  access: string;
}

/** Each way of writing `path` that must reach nothing more than `path` itself does. */
function spellings(path: string, origin: string): string[] {
  const segments = path.split("/");
  const last = segments.length - 1;
  const encodeFirst = (segment: string, upper: boolean): string => {
    const hex = segment.charCodeAt(0).toString(16);
    return `%${upper ? hex.toUpperCase() : hex}${segment.slice(1)}`;
  };
  const withSegment = (index: number, segment: string): string =>
    segments.map((s, i) => (i === index ? segment : s)).join("/");
  const rest = path.slice("/api/v1/".length);
  return [
    withSegment(1, encodeFirst("api", false)),
    withSegment(last, encodeFirst(segments[last] ?? "", true)),
    `${origin}${path}`,
    `http://evil.example${path}`,
    `/${path}`,
    `/api//v1/${rest}`,
    `${path}//`,
    `/api/./v1/${rest}`,
    `/api/v1/../v1/${rest}`,
    `/x/..${path}`,
    `/api/v1/%2e%2e/v1/${rest}`,
    `/api/v1/.%2E/v1/${rest}`,
    `/api%2fv1/${rest}`,
    `/api%2Fv1%2F${rest}`,
    `/api\\v1/${rest}`,
    path.toUpperCase(),
    `/Api/v1/${rest}`,
    `/api/V1/${rest}`,
    `${path}/`,
    `${path};x`,
    `${path}?admin=true`,
  ];
}

const offline: RepositoryFetcher = {
  sync: () => Promise.reject(new Error("offline")),
  readLocal: () => Promise.resolve(undefined as unknown as FetchedRepository),
  remove: () => Promise.resolve(),
};

describe("access is decided by the matched route, whatever the request looks like", () => {
  let scratch: string;
  let daemon: RunningDaemon;
  let adminToken: string;
  let userToken: string;
  let operations: Operation[];

  const json = (token?: string): Record<string, string> => ({
    "content-type": "application/json",
    ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
  });

  async function signIn(username: string, password: string): Promise<string> {
    const answer = await send(
      daemon.url,
      "POST",
      "/api/v1/auth/login",
      json(),
      JSON.stringify({ username, password }),
    );
    assert.equal(answer.status, 200, answer.body);
    return (JSON.parse(answer.body) as { token: string }).token;
  }

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-access-"));
    const web = join(scratch, "web");
    await mkdir(join(web, "assets"), { recursive: true });
    await writeFile(join(web, "index.html"), "<!doctype html><title>Town OS</title>");
    daemon = await startDaemon(
      testDaemonConfig(scratch, { fetcher: offline, apps: false, webRoot: web }),
    );
    await daemon.booted;
    const setup = await send(
      daemon.url,
      "POST",
      "/api/v1/setup",
      json(),
      JSON.stringify({
        username: "root",
        password: "admin-password-1",
        setupCode: daemon.boot.services?.setupCode.current,
      }),
    );
    assert.equal(setup.status, 201, setup.body);
    adminToken = (JSON.parse(setup.body) as { token: string }).token;
    const created = await send(
      daemon.url,
      "POST",
      "/api/v1/accounts",
      json(adminToken),
      JSON.stringify({ username: "bob", password: "user-password-1", role: "user" }),
    );
    assert.equal(created.status, 201, created.body);
    userToken = await signIn("bob", "user-password-1");

    const document = JSON.parse((await send(daemon.url, "GET", "/api/v1/openapi.json")).body) as {
      paths: Record<string, Record<string, { "x-town-access"?: string }>>;
    };
    operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({
        method: method.toUpperCase(),
        // Parameters get a harmless value: access is checked before any handler reads them.
        path: path.replace(/\{[^}]+\}/g, "x"),
        access: operation["x-town-access"] ?? "undeclared",
      })),
    );
  });

  after(async () => {
    await daemon.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  // The daemon compiles a route's schemas at its first call: none may be broken.
  it("compiles every route's schemas", () => {
    compileAllSchemas(daemon.app);
  });

  it("declares who may call each route in the API document, admin where nothing is said", () => {
    const undeclared = operations.filter((o) => !["public", "user", "admin"].includes(o.access));
    assert.deepEqual(undeclared, []);
    const byKey = new Map(operations.map((o) => [`${o.method} ${o.path}`, o.access]));
    assert.equal(byKey.get("POST /api/v1/accounts"), "admin");
    assert.equal(byKey.get("GET /api/v1/apps"), "user");
    assert.equal(byKey.get("GET /api/v1/status"), "public");
    assert.ok(operations.filter((o) => o.access === "admin").length >= 20, "admin routes listed");
  });

  it("refuses every admin and user route to the wrong caller under every spelling of its path", async () => {
    const wrong: string[] = [];
    const body = JSON.stringify({ username: "mallory", password: "mallory-pw-1", role: "admin" });
    for (const operation of operations.filter((o) => o.access !== "public")) {
      const methods = operation.method === "GET" ? ["GET", "HEAD"] : [operation.method];
      const callers =
        operation.access === "admin"
          ? [
              { who: "anonymous", token: undefined, canonical: 401 },
              { who: "user", token: userToken, canonical: 403 },
            ]
          : [{ who: "anonymous", token: undefined, canonical: 401 }];
      for (const method of methods) {
        for (const caller of callers) {
          const headers = json(caller.token);
          const withBody = method === "GET" || method === "HEAD" ? undefined : body;
          // The plain path proves the route exists and its check runs.
          const plain = await send(daemon.url, method, operation.path, headers, withBody);
          if (plain.status !== caller.canonical) {
            wrong.push(`${caller.who} ${method} ${operation.path} → ${plain.status}`);
          }
          for (const target of spellings(operation.path, daemon.url)) {
            const answer = await send(daemon.url, method, target, headers, withBody);
            if (![400, 401, 403, 404].includes(answer.status)) {
              wrong.push(`${caller.who} ${method} ${target} → ${answer.status}`);
            }
          }
        }
      }
    }
    assert.deepEqual(wrong, []);
    const accounts = await send(daemon.url, "GET", "/api/v1/accounts", json(adminToken));
    const names = (JSON.parse(accounts.body) as { items: { username: string }[] }).items.map(
      (a) => a.username,
    );
    assert.deepEqual(names.sort(), ["bob", "root"]);
  });

  it("answers odd request targets with a problem, before any route", async () => {
    for (const target of ["/%61pi/v1/../v1/accounts", "http://x/api/v1/accounts", "//api/v1/x"]) {
      const answer = await send(daemon.url, "GET", target, json(adminToken));
      assert.equal(answer.status, 400, target);
      assert.equal(answer.headers["content-type"], "application/problem+json");
      assert.equal((JSON.parse(answer.body) as { code: string }).code, "invalid_argument");
    }
    // A harmless encoding is read as the path it spells, with that path's access rules.
    const encoded = await send(daemon.url, "GET", "/%61pi/v1/accounts", json(userToken));
    assert.equal(encoded.status, 403);
    const asAdmin = await send(daemon.url, "GET", "/%61pi/v1/accounts", json(adminToken));
    assert.equal(asAdmin.status, 200);
  });

  it("refuses cookie-authenticated changes from another origin, even one on the same host", async () => {
    const cookie = { cookie: `town_session=${adminToken}`, "content-type": "application/json" };
    const host = new URL(daemon.url).host;
    const create = (name: string, extra: Record<string, string>): Promise<Answer> =>
      send(
        daemon.url,
        "POST",
        "/api/v1/accounts",
        { ...cookie, ...extra },
        JSON.stringify({ username: name, password: "forged-pw-1", role: "admin" }),
      );
    const forged = [
      {},
      { origin: `http://${new URL(daemon.url).hostname}:8080` },
      { origin: "http://evil.example" },
      { origin: "null" },
      { "sec-fetch-site": "same-site" },
      { "sec-fetch-site": "cross-site", origin: `https://${host}x` },
    ];
    for (const [index, headers] of forged.entries()) {
      const answer = await create(`forged${index}`, headers);
      assert.equal(answer.status, 403, JSON.stringify(headers));
    }
    assert.equal((await create("fromdashboard", { origin: daemon.url })).status, 201);
    assert.equal((await create("fromfetch", { "sec-fetch-site": "same-origin" })).status, 201);
    // Reading needs no origin: a link or a reload sends none.
    const read = await send(daemon.url, "GET", "/api/v1/accounts", cookie);
    assert.equal(read.status, 200);
    // Bearer tokens are not sent by browsers on their own: no origin needed.
    const scripted = await send(
      daemon.url,
      "POST",
      "/api/v1/accounts",
      json(adminToken),
      JSON.stringify({ username: "fromcli", password: "cli-password-1" }),
    );
    assert.equal(scripted.status, 201);
  });

  it("answers malformed cookies and prototype names in queries as client errors", async () => {
    for (const cookie of ["town_session=%E0%A4%A", "town_session", "=;;=", "town_session=\u00ff"]) {
      const answer = await send(daemon.url, "GET", "/api/v1/apps", { cookie });
      assert.equal(answer.status, 401, cookie);
    }
    for (const sort of ["valueOf", "constructor", "-toString", "__proto__"]) {
      const answer = await send(
        daemon.url,
        "GET",
        `/api/v1/accounts?sort=${sort}`,
        json(adminToken),
      );
      assert.equal(answer.status, 400, sort);
    }
  });

  it("sends the dashboard with headers that forbid framing, sniffing and foreign scripts", async () => {
    const page = await send(daemon.url, "GET", "/", { accept: "text/html" });
    assert.equal(page.status, 200);
    const policy = String(page.headers["content-security-policy"]);
    for (const directive of ["frame-ancestors 'none'", "script-src 'self'", "object-src 'none'"]) {
      assert.ok(policy.includes(directive), policy);
    }
    assert.equal(page.headers["x-content-type-options"], "nosniff");
    assert.equal(page.headers["x-frame-options"], "DENY");
    assert.equal(page.headers["referrer-policy"], "no-referrer");
    // HTTPS is not pinned: a device that does not trust the box's CA yet must still get in.
    assert.equal(page.headers["strict-transport-security"], undefined);
  });
});
