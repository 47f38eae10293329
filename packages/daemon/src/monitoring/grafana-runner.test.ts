import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FakeRuntime } from "../../test/runtime/fake-runtime.js";
import { GrafanaRunner } from "./grafana-runner.js";

describe("the Grafana runner", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "town-grafana-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const runner = (runtime: FakeRuntime, image?: string) =>
    new GrafanaRunner({
      runtime,
      dir,
      box: "box1",
      prometheusUrl: "http://127.0.0.1:9090",
      scrapeIntervalSeconds: () => 15,
      url: () => "https://grafana.home/",
      ...(image === undefined ? {} : { image }),
    });

  it("runs Grafana with its provisioning and a password made once, and removes it when turned off", async () => {
    const runtime = new FakeRuntime();
    const grafana = runner(runtime);
    await grafana.reconcile(true);
    assert.deepEqual(grafana.state(), {
      enabled: true,
      state: "running",
      url: "https://grafana.home/",
      error: null,
    });
    const container = runtime.containers.get("town-grafana-box1");
    assert.equal(container?.spec.hostNetwork, true);
    assert.equal(container.state, "running");
    assert.match(
      await readFile(join(dir, "provisioning", "datasources", "town.yml"), "utf8"),
      /http:\/\/127\.0\.0\.1:9090/,
    );
    const password = await readFile(join(dir, "admin-password"), "utf8");
    assert.equal((await stat(join(dir, "admin-password"))).mode & 0o777, 0o640);
    await grafana.reconcile(true);
    assert.equal(await readFile(join(dir, "admin-password"), "utf8"), password, "kept");

    await grafana.reconcile(false);
    assert.equal(grafana.state().state, "off");
    assert.equal(runtime.containers.has("town-grafana-box1"), false);
  });

  it("says why when its image cannot be pulled", async () => {
    const grafana = runner(new FakeRuntime(), "docker.io/grafana/missing:1");
    await grafana.reconcile(true);
    assert.equal(grafana.state().state, "failed");
    assert.match(grafana.state().error ?? "", /no such image/);
  });
});
