import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { compilePrometheusConfig, isHostPort, MAX_TARGETS } from "./prometheus-config.js";
import type { PrometheusInputs, ScrapeTarget } from "./types.js";

const testdata = join(import.meta.dirname, "testdata");
/** `TOWN_UPDATE_GOLDENS=1` rewrites the golden files instead of comparing with them. */
const updateGoldens = process.env["TOWN_UPDATE_GOLDENS"] === "1";

const node: ScrapeTarget = { job: "node", address: "127.0.0.1:9100", path: "/metrics", labels: {} };
const town: ScrapeTarget = { job: "town", address: "127.0.0.1:8080", path: "/metrics", labels: {} };
const ingress: ScrapeTarget = {
  job: "ingress",
  address: "127.0.0.1:2019",
  path: "/metrics",
  labels: {},
};
const wiki: ScrapeTarget = {
  job: "app",
  address: "10.89.0.7:9000",
  path: "/prometheus/metrics",
  labels: { repo: "default", app: "wiki", instance_name: "wiki" },
};
const chat: ScrapeTarget = {
  job: "app",
  address: "[fd00::5]:8080",
  path: "/metrics",
  labels: { repo: "community", app: "chat" },
};

function compileError(inputs: PrometheusInputs): TownError {
  try {
    compilePrometheusConfig(inputs);
  } catch (error) {
    assert.ok(error instanceof TownError, String(error));
    return error;
  }
  assert.fail("expected the config to be refused");
}

describe("compilePrometheusConfig: goldens", () => {
  const cases: [string, PrometheusInputs][] = [
    ["empty", { scrapeIntervalSeconds: 15, targets: [] }],
    ["box", { scrapeIntervalSeconds: 5, targets: [node, town, ingress] }],
    ["apps", { scrapeIntervalSeconds: 60, targets: [wiki, node, chat, town, ingress] }],
  ];
  for (const [name, inputs] of cases)
    it(name, async () => {
      const { text } = compilePrometheusConfig(inputs);
      const file = join(testdata, `${name}.yml`);
      if (updateGoldens) await writeFile(file, text);
      assert.equal(text, await readFile(file, "utf8"), `${file} differs (TOWN_UPDATE_GOLDENS=1)`);
    });
});

describe("compilePrometheusConfig", () => {
  it("gives the same text and hash for the same targets in any order, with labels in any order", () => {
    const a = compilePrometheusConfig({
      scrapeIntervalSeconds: 15,
      targets: [node, wiki, chat, town],
    });
    const b = compilePrometheusConfig({
      scrapeIntervalSeconds: 15,
      targets: [
        chat,
        town,
        { ...wiki, labels: { instance_name: "wiki", app: "wiki", repo: "default" } },
        node,
      ],
    });
    assert.equal(a.text, b.text);
    assert.equal(a.hash, b.hash);
    assert.match(a.hash, /^[0-9a-f]{64}$/);
  });

  it("changes the hash when anything changes", () => {
    const base = compilePrometheusConfig({ scrapeIntervalSeconds: 15, targets: [node] }).hash;
    for (const inputs of [
      { scrapeIntervalSeconds: 16, targets: [node] },
      { scrapeIntervalSeconds: 15, targets: [{ ...node, path: "/other" }] },
      { scrapeIntervalSeconds: 15, targets: [{ ...node, labels: { a: "b" } }] },
      { scrapeIntervalSeconds: 15, targets: [node, town] },
    ])
      assert.notEqual(compilePrometheusConfig(inputs).hash, base);
  });

  it("keeps each target's labels and path in its own static config; drops exact duplicates", () => {
    const other = { ...wiki, address: "10.89.0.8:9000", labels: { repo: "default", app: "blog" } };
    const config = JSON.parse(
      compilePrometheusConfig({ scrapeIntervalSeconds: 15, targets: [wiki, other, wiki, chat] })
        .text,
    ) as { scrape_configs: { job_name: string; static_configs: unknown[] }[] };
    assert.deepEqual(
      config.scrape_configs.map((job) => job.job_name),
      ["app"],
    );
    assert.deepEqual(config.scrape_configs[0]?.static_configs, [
      {
        targets: ["10.89.0.7:9000"],
        labels: {
          __metrics_path__: "/prometheus/metrics",
          app: "wiki",
          instance_name: "wiki",
          repo: "default",
        },
      },
      {
        targets: ["10.89.0.8:9000"],
        labels: { __metrics_path__: "/prometheus/metrics", app: "blog", repo: "default" },
      },
      { targets: ["[fd00::5]:8080"], labels: { app: "chat", repo: "community" } },
    ]);
  });

  it("keeps the scrape timeout below the interval", () => {
    const global = (interval: number): unknown =>
      (
        JSON.parse(
          compilePrometheusConfig({ scrapeIntervalSeconds: interval, targets: [] }).text,
        ) as { global: unknown }
      ).global;
    assert.deepEqual(global(5), {
      scrape_interval: "5s",
      scrape_timeout: "4s",
      evaluation_interval: "5s",
    });
    assert.deepEqual(global(3600), {
      scrape_interval: "3600s",
      scrape_timeout: "10s",
      evaluation_interval: "3600s",
    });
  });

  it("accepts IPv4, bracketed IPv6 and DNS names with a port", () => {
    for (const ok of [
      "127.0.0.1:9090",
      "[::1]:9100",
      "[fd00::5]:80",
      "grafana.internal:3000",
      "localhost:1",
      "a-b.c:65535",
    ])
      assert.ok(isHostPort(ok), ok);
    for (const bad of [
      "127.0.0.1",
      "127.0.0.1:0",
      "127.0.0.1:65536",
      "256.0.0.1:80",
      "::1:80",
      "[zz::1]:80",
      "a b:80",
      "-a.b:80",
      "a..b:80",
      ":80",
      "host:08",
      "x:80/metrics",
      "http://x:80",
      7,
    ])
      assert.ok(!isHostPort(bad), String(bad));
  });

  it("refuses what Prometheus should not be given, with every issue", () => {
    const error = compileError({
      scrapeIntervalSeconds: 4,
      targets: [
        { ...node, address: "nowhere" },
        { ...town, path: "metrics" },
        { ...town, path: "/a b" },
        { ...town, path: "/a?b=1" },
        { ...wiki, labels: { __name__: "x", job: "y", "1a": "z", "a-b": "w", ok: "line\nbreak" } },
        { ...node, job: "other" as "node" },
      ],
    });
    assert.equal(error.code, "invalid_argument");
    assert.deepEqual(
      error.issues.map((issue) => issue.field),
      [
        "scrapeIntervalSeconds",
        "targets[0].address",
        "targets[1].path",
        "targets[2].path",
        "targets[3].path",
        "targets[4].labels.__name__",
        "targets[4].labels.job",
        "targets[4].labels.1a",
        "targets[4].labels.a-b",
        "targets[4].labels.ok",
        "targets[5].job",
      ],
    );
    assert.match(error.message, /scrape interval.*\(and 10 more\)/);
  });

  it("bounds the interval and the number of targets", () => {
    for (const interval of [3601, 7.5, Number.NaN])
      assert.equal(
        compileError({ scrapeIntervalSeconds: interval, targets: [] }).issues[0]?.field,
        "scrapeIntervalSeconds",
      );
    const many = Array.from({ length: MAX_TARGETS + 1 }, (_, i) => ({
      ...node,
      address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}:9100`,
    }));
    assert.deepEqual(
      compileError({ scrapeIntervalSeconds: 15, targets: many }).issues.map((issue) => issue.field),
      ["targets"],
    );
    assert.doesNotThrow(() =>
      compilePrometheusConfig({ scrapeIntervalSeconds: 15, targets: many.slice(1) }),
    );
  });

  it("bounds labels: their number and their values' length", () => {
    const labels = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`l${i}`, "v"]));
    assert.equal(
      compileError({ scrapeIntervalSeconds: 15, targets: [{ ...node, labels }] }).issues[0]?.field,
      "targets[0].labels",
    );
    assert.equal(
      compileError({
        scrapeIntervalSeconds: 15,
        targets: [{ ...node, labels: { a: "x".repeat(1025) } }],
      }).issues[0]?.field,
      "targets[0].labels.a",
    );
  });
});
