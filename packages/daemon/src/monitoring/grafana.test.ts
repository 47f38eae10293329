import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { CHART_QUERIES, withWindow } from "@townos/api";
import { TownError } from "@townos/format";
import { containerSpec, specHash } from "../runtime/podman/container-spec.js";
import { LABEL_SPEC_HASH } from "../runtime/workload.js";
import {
  GRAFANA_DATASOURCE_UID,
  GRAFANA_IMAGE,
  grafanaProvisioning,
  grafanaWorkload,
} from "./grafana.js";

const testdata = join(import.meta.dirname, "testdata", "grafana");
/** `TOWN_UPDATE_GOLDENS=1` rewrites the golden files instead of comparing with them. */
const updateGoldens = process.env["TOWN_UPDATE_GOLDENS"] === "1";

async function golden(file: string, actual: string): Promise<void> {
  const path = join(testdata, file);
  if (updateGoldens) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, actual);
  }
  assert.equal(actual, await readFile(path, "utf8"), `${path} differs (TOWN_UPDATE_GOLDENS=1)`);
}

const provisioning = (): Map<string, string> =>
  grafanaProvisioning({ prometheusUrl: "http://127.0.0.1:9090", scrapeIntervalSeconds: 15 });

const workloadOptions = {
  box: "0123456789ab",
  image: GRAFANA_IMAGE,
  provisioningDir: "/var/lib/town/monitoring/grafana/provisioning",
  dataDir: "/var/lib/town/monitoring/grafana/data",
  port: 3000,
  rootUrl: "https://town.home/grafana/",
  adminPasswordFile: "/var/lib/town/monitoring/grafana/admin-password",
};

interface Panel {
  type: string;
  datasource: { uid: string };
  fieldConfig: { defaults: { unit: string } };
  targets: { expr: string; datasource: { uid: string } }[];
}

function panelsOf(files: Map<string, string>, file: string): Panel[] {
  return (JSON.parse(files.get(file) ?? "{}") as { panels: Panel[] }).panels;
}

describe("grafanaProvisioning", () => {
  it("makes the datasource, the dashboard provider and two dashboards, as in the goldens", async () => {
    const files = provisioning();
    assert.deepEqual(
      [...files.keys()],
      [
        "datasources/town.yml",
        "dashboards/town.yml",
        "dashboards/json/box.json",
        "dashboards/json/apps.json",
      ],
    );
    for (const [file, content] of files) await golden(join("provisioning", file), content);
  });

  it("gives the same bytes for the same options", () => {
    assert.deepEqual([...provisioning()], [...provisioning()]);
  });

  it("draws every chart of the built-in screen, each expression one of CHART_QUERIES'", () => {
    const files = provisioning();
    const box = panelsOf(files, "dashboards/json/box.json");
    const apps = panelsOf(files, "dashboards/json/apps.json");
    const grafanaForm = new Map(
      CHART_QUERIES.map((chart) => [withWindow(chart.expr, "$__rate_interval"), chart]),
    );
    for (const panel of [...box, ...apps]) {
      assert.equal(panel.type, "timeseries");
      assert.equal(panel.datasource.uid, GRAFANA_DATASOURCE_UID);
      for (const target of panel.targets) {
        assert.ok(grafanaForm.has(target.expr), `not one of CHART_QUERIES: ${target.expr}`);
        assert.equal(target.datasource.uid, GRAFANA_DATASOURCE_UID);
        assert.doesNotMatch(target.expr, /\$window/);
      }
    }
    const scopes = (panels: Panel[]): string[] =>
      panels.map((panel) => grafanaForm.get(panel.targets[0]?.expr ?? "")?.scope ?? "");
    assert.deepEqual(new Set(scopes(box)), new Set(["box"]));
    assert.deepEqual(new Set(scopes(apps)), new Set(["apps", "volumes"]));
    assert.equal(box.length + apps.length, CHART_QUERIES.length);
  });

  it("maps the charts' units to Grafana's", () => {
    const files = provisioning();
    const units = [
      ...panelsOf(files, "dashboards/json/box.json"),
      ...panelsOf(files, "dashboards/json/apps.json"),
    ].map((panel) => panel.fieldConfig.defaults.unit);
    const expected = { ratio: "percentunit", bytes: "bytes", "bytes/s": "Bps", cores: "short" };
    assert.deepEqual(units.sort(), CHART_QUERIES.map((chart) => expected[chart.unit]).sort());
  });

  it("refuses a URL that is not http(s) and an interval that is not whole seconds", () => {
    for (const prometheusUrl of ["127.0.0.1:9090", "file:///etc/passwd", "http://u:p@host/"])
      assert.throws(
        () => grafanaProvisioning({ prometheusUrl, scrapeIntervalSeconds: 15 }),
        TownError,
        prometheusUrl,
      );
    assert.throws(
      () =>
        grafanaProvisioning({ prometheusUrl: "http://127.0.0.1:9090", scrapeIntervalSeconds: 0.5 }),
      TownError,
    );
  });
});

describe("grafanaWorkload", () => {
  it("compiles to the libpod spec in the golden: host network, loopback, read-only provisioning", async () => {
    const spec = containerSpec(grafanaWorkload(workloadOptions));
    await golden("container-spec.json", `${JSON.stringify(spec, null, 2)}\n`);
    assert.equal(spec.labels[LABEL_SPEC_HASH], specHash(spec));
    assert.deepEqual(spec.netns, { nsmode: "host" });
    assert.deepEqual(spec.networks, {});
    assert.deepEqual(spec.portmappings, []);
    assert.equal(spec.env["GF_SERVER_HTTP_ADDR"], "127.0.0.1");
    assert.equal(spec.env["GF_AUTH_ANONYMOUS_ENABLED"], "false");
  });

  it("serves from a sub-path only when the root URL has one", () => {
    const root = grafanaWorkload({ ...workloadOptions, rootUrl: "https://grafana.town.home/" });
    assert.equal(root.env["GF_SERVER_SERVE_FROM_SUB_PATH"], "false");
    assert.equal(grafanaWorkload(workloadOptions).env["GF_SERVER_SERVE_FROM_SUB_PATH"], "true");
  });

  it("refuses a bad box id, port, root URL or path", () => {
    for (const change of [
      { box: "a b" },
      { box: "x--y" },
      { port: 0 },
      { port: 70000 },
      { rootUrl: "town.home/grafana" },
      { dataDir: "relative/data" },
      { provisioningDir: "/var/lib/../etc" },
      { adminPasswordFile: "/var/lib/town/pw\n" },
    ])
      assert.throws(
        () => grafanaWorkload({ ...workloadOptions, ...change }),
        TownError,
        JSON.stringify(change),
      );
  });
});

describe("containerSpec: host network", () => {
  it("refuses a host-network container that also joins a network or publishes ports", () => {
    const workload = grafanaWorkload(workloadOptions);
    assert.throws(
      () => containerSpec({ ...workload, network: { name: "n", aliases: [] } }),
      /host's network/,
    );
    assert.throws(
      () =>
        containerSpec({
          ...workload,
          ports: [{ hostAddress: "127.0.0.1", hostPort: 3000, port: 3000, protocol: "tcp" }],
        }),
      /host's network/,
    );
  });
});
