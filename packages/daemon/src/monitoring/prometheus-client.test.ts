/**
 * PrometheusClient against a small local server answering as Prometheus'
 * HTTP API does (its JSON, its error shapes), plus the bounds: size, time.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import { rejection } from "../../test/async.js";
import { freePort } from "../../test/runtime/podman-host.js";
import { PrometheusClient } from "./prometheus-client.js";

interface Seen {
  method: string;
  url: string;
  body: string;
}

type Handler = (request: Seen, response: http.ServerResponse) => void;

let handler: Handler = (_request, response) => response.end();
let seen: Seen[] = [];
let server: http.Server;
let base = "";

/** The first request the server saw. */
function first(): Seen {
  const request = seen[0];
  assert.ok(request, "no request came");
  return request;
}

/** A loopback URL nothing listens on. */
async function closedPort(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

function json(status: number, body: unknown): Handler {
  return (_request, response) => {
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(body));
  };
}

function success(data: unknown): Handler {
  return json(200, { status: "success", data });
}

before(async () => {
  server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const entry = {
        method: request.method ?? "",
        url: request.url ?? "",
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(entry);
      handler(entry, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  seen = [];
});

describe("PrometheusClient queries", () => {
  it("POSTs an instant query form-encoded and gives a vector as series of one point", async () => {
    handler = success({
      resultType: "vector",
      result: [
        { metric: { __name__: "up", job: "node" }, value: [1700000000.5, "1"] },
        { metric: {}, value: [1700000000.5, "NaN"] },
      ],
    });
    const long = `sum(rate(node_cpu_seconds_total{mode!="idle"}[5m])) ${"+ 0 ".repeat(2000)}`;
    const result = await new PrometheusClient(`${base}/`).query(long, 1700000000.5);
    assert.deepEqual(result, {
      resultType: "vector",
      series: [
        { metric: { __name__: "up", job: "node" }, values: [[1700000000.5, "1"]] },
        { metric: {}, values: [[1700000000.5, "NaN"]] },
      ],
    });
    assert.equal(first().method, "POST");
    assert.equal(first().url, "/api/v1/query");
    const form = new URLSearchParams(first().body);
    assert.equal(form.get("query"), long);
    assert.equal(form.get("time"), "1700000000.5");
  });

  it("leaves the time out when none is given", async () => {
    handler = success({ resultType: "vector", result: [] });
    assert.deepEqual(await new PrometheusClient(base).query("up"), {
      resultType: "vector",
      series: [],
    });
    assert.equal(new URLSearchParams(first().body).get("time"), null);
  });

  it("gives a range query's matrix as it is", async () => {
    const matrix = [
      {
        metric: { job: "node" },
        values: [
          [1, "0.5"],
          [2, "0.75"],
        ],
      },
    ];
    handler = success({ resultType: "matrix", result: matrix });
    const result = await new PrometheusClient(base).queryRange("up", 1, 2, 1);
    assert.deepEqual(result, { resultType: "matrix", series: matrix });
    assert.equal(first().url, "/api/v1/query_range");
    assert.deepEqual(Object.fromEntries(new URLSearchParams(first().body)), {
      query: "up",
      start: "1",
      end: "2",
      step: "1",
    });
  });

  it("gives a scalar and a string as one series without labels", async () => {
    handler = success({ resultType: "scalar", result: [5, "42"] });
    assert.deepEqual(await new PrometheusClient(base).query("42"), {
      resultType: "scalar",
      series: [{ metric: {}, values: [[5, "42"]] }],
    });
    handler = success({ resultType: "string", result: [5, "hello"] });
    assert.deepEqual(await new PrometheusClient(base).query('"hello"'), {
      resultType: "string",
      series: [{ metric: {}, values: [[5, "hello"]] }],
    });
  });

  it("turns Prometheus' refusals into invalid_argument with its message", async () => {
    handler = json(400, {
      status: "error",
      errorType: "bad_data",
      error: 'invalid parameter "query": 1:4: parse error: unexpected end of input',
    });
    const parse = await rejection(new PrometheusClient(base).query("up{"));
    assert.equal(parse.code, "invalid_argument");
    assert.match(parse.message, /parse error: unexpected end of input/);
    handler = json(422, {
      status: "error",
      errorType: "execution",
      error: "found duplicate series for the match group",
    });
    const execution = await rejection(new PrometheusClient(base).query("a * on() b"));
    assert.equal(execution.code, "invalid_argument");
    assert.match(execution.message, /duplicate series/);
    handler = json(503, { status: "error", errorType: "timeout", error: "query timed out" });
    assert.equal((await rejection(new PrometheusClient(base).query("up"))).code, "unavailable");
  });

  it("refuses answers that are not Prometheus' JSON", async () => {
    for (const answer of [
      (_request: Seen, response: http.ServerResponse) => response.end("<html>proxy</html>"),
      success({ resultType: "histogram", result: [] }),
      success({ resultType: "vector", result: [{ metric: {}, value: [1, 2] }] }),
      success({ resultType: "matrix", result: {} }),
    ]) {
      handler = answer;
      assert.equal((await rejection(new PrometheusClient(base).query("up"))).code, "unavailable");
    }
  });

  it("bounds the answer's size, announced or not", async () => {
    const big = {
      resultType: "vector",
      result: [{ metric: { a: "x".repeat(5000) }, value: [1, "1"] }],
    };
    handler = success(big);
    const client = new PrometheusClient(base, { maxBytes: 4096 });
    assert.equal((await rejection(client.query("up"))).code, "payload_too_large");
    handler = (_request, response) => {
      // Chunked: no content-length to go by.
      response.writeHead(200, { "content-type": "application/json" });
      response.write(JSON.stringify({ status: "success", data: big }).slice(0, 3000));
      response.end(" ".repeat(3000));
    };
    assert.equal((await rejection(client.query("up"))).code, "payload_too_large");
    handler = success(big);
    assert.equal((await new PrometheusClient(base).query("up")).series.length, 1);
  });

  it("gives up after the timeout, and says so when nothing listens", async () => {
    const hung: http.ServerResponse[] = [];
    handler = (_request, response) => hung.push(response);
    const started = Date.now();
    const slow = await rejection(new PrometheusClient(base, { timeoutMs: 200 }).query("up"));
    assert.equal(slow.code, "unavailable");
    assert.match(slow.message, /no answer within 200 ms/);
    assert.ok(Date.now() - started < 5_000);
    for (const response of hung) response.destroy();
    const closed = await rejection(new PrometheusClient(await closedPort()).query("up"));
    assert.equal(closed.code, "unavailable");
    assert.match(closed.message, /ECONNREFUSED/);
  });
});

describe("PrometheusClient targets and readiness", () => {
  it("maps the active targets: labels without job, instance and __*, errors, times", async () => {
    handler = success({
      activeTargets: [
        {
          discoveredLabels: { __address__: "10.89.0.7:9000" },
          labels: { app: "wiki", instance: "10.89.0.7:9000", job: "app", repo: "default" },
          scrapePool: "app",
          scrapeUrl: "http://10.89.0.7:9000/metrics",
          lastError: 'Get "http://10.89.0.7:9000/metrics": dial tcp: connection refused',
          lastScrape: "2026-12-03T16:00:00.250Z",
          lastScrapeDuration: 0.0125,
          health: "down",
        },
        {
          labels: { instance: "127.0.0.1:9100", job: "node", __tmp: "x" },
          scrapePool: "node",
          lastError: "",
          lastScrape: "2026-12-03T16:00:01Z",
          lastScrapeDuration: 0.05,
          health: "up",
        },
        {
          labels: { instance: "127.0.0.1:8080", job: "ingress" },
          scrapePool: "ingress",
          lastError: "",
          lastScrape: "0001-01-01T00:00:00Z",
          lastScrapeDuration: 0,
          health: "unknown",
        },
      ],
      droppedTargets: [],
    });
    const targets = await new PrometheusClient(base).targets();
    assert.equal(first().method, "GET");
    assert.equal(first().url, "/api/v1/targets?state=active");
    assert.deepEqual(targets, [
      {
        job: "app",
        instance: "10.89.0.7:9000",
        labels: { app: "wiki", repo: "default" },
        health: "down",
        lastError: 'Get "http://10.89.0.7:9000/metrics": dial tcp: connection refused',
        lastScrape: Date.parse("2026-12-03T16:00:00.250Z"),
        lastScrapeDurationMs: 12.5,
      },
      {
        job: "ingress",
        instance: "127.0.0.1:8080",
        labels: {},
        health: "unknown",
        lastError: null,
        lastScrape: null,
        lastScrapeDurationMs: null,
      },
      {
        job: "node",
        instance: "127.0.0.1:9100",
        labels: {},
        health: "up",
        lastError: null,
        lastScrape: Date.parse("2026-12-03T16:00:01Z"),
        lastScrapeDurationMs: 50,
      },
    ]);
  });

  it("is ready when /-/ready says 200, and not when it says otherwise or nothing answers", async () => {
    handler = (request, response) => {
      response.writeHead(request.url === "/-/ready" ? 200 : 404);
      response.end("Prometheus Server is Ready.\n");
    };
    assert.equal(await new PrometheusClient(base).ready(), true);
    handler = (_request, response) => {
      response.writeHead(503);
      response.end("Service Unavailable");
    };
    assert.equal(await new PrometheusClient(base).ready(), false);
    assert.equal(await new PrometheusClient(await closedPort()).ready(), false);
  });
});
