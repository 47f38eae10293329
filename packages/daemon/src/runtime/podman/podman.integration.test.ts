/**
 * The Podman driver against the real Podman: a service of its own on a
 * temporary socket, the local busybox image, real containers and networks.
 * Everything it creates carries a `town.test-run` label and is removed
 * afterwards, whatever the tests did.
 */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { CompiledPackage } from "@townos/format";
import { compileExample } from "../../../test/runtime/examples.js";
import {
  freePort,
  podmanForSuite,
  podmanMissing,
  TEST_IMAGE,
} from "../../../test/runtime/podman-host.js";
import { packageWorkload, type PackageWorkloadInput } from "../package-workload.js";
import { LABEL_SPEC_HASH } from "../workload.js";
import { containerSpec as podmanSpec, specHash, type SpecGenerator } from "./container-spec.js";
import type { PodmanEvent } from "./events.js";
import type { LogLine } from "../workload.js";
import { collect, rejection } from "../../../test/async.js";

type ContainerSpecInput = PackageWorkloadInput;

/** The whole compile: a plan's container as a workload, the workload as Podman's spec. */
function containerSpec(input: ContainerSpecInput): SpecGenerator {
  return podmanSpec(packageWorkload(input));
}

const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const runLabels = { "town.test-run": run };
const nameOf = (part: string): string => `town-it-${run}-${part}`;

/** A bare spec for containers that are not package plans. */
function plainSpec(
  part: string,
  command: string[],
  labels: Record<string, string> = {},
): SpecGenerator {
  return {
    name: nameOf(part),
    hostname: nameOf(part),
    image: TEST_IMAGE,
    command,
    env: {},
    labels: { ...runLabels, ...labels },
    portmappings: [],
    mounts: [],
    netns: { nsmode: "bridge" },
    networks: {},
    // Libpod restarts a container that exits at once and without pause: not here.
    restart_policy: "no",
    privileged: false,
  };
}

/** GETs a URL until it answers (httpd takes a moment to listen), for at most 10 s. */
async function fetchText(url: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      return await response.text();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

describe("podman driver against real Podman", { skip: podmanMissing }, () => {
  const suite = podmanForSuite("town-podman-", runLabels);
  const { podman, work } = suite;

  it("starts a service of its own on a fresh socket and talks to it", async () => {
    assert.equal(suite.service.started, true);
    assert.ok(suite.service.pid);
    assert.deepEqual(await podman.ensureService(), { started: false, pid: null });
    assert.equal(await podman.ping(), true);
    const version = await podman.version();
    assert.match(version.version, /^[4-9]\./);
    assert.ok(version.ociRuntime, "the OCI runtime is named");
  });

  it("finds the local image and says clearly that no registry is reachable", async () => {
    assert.equal(await podman.imageExists(TEST_IMAGE), true);
    assert.equal(await podman.imageExists("localhost/town/absent:latest"), false);
    const image = await podman.inspectImage(TEST_IMAGE);
    assert.deepEqual(image?.command, ["/bin/sh"]);
    assert.ok(image.names.includes(TEST_IMAGE));
    assert.equal(await podman.inspectImage("localhost/town/absent:latest"), undefined);

    const progress: string[] = [];
    const error = await rejection(
      podman.pullImage("registry.invalid/town/absent:latest", {
        onProgress: (line) => progress.push(line),
      }),
    );
    assert.equal(error.code, "unavailable");
    assert.match(
      error.message,
      /^podman: pull image registry\.invalid\/town\/absent:latest: the registry cannot be reached: /,
    );
    assert.match(progress.join("\n"), /Trying to pull/);
  });

  it("creates a network once, finds it by label and removes it idempotently", async () => {
    const spec = { name: nameOf("spare"), labels: { ...runLabels, "town.role": "spare" } };
    const created = await podman.createNetwork(spec);
    assert.equal((await podman.createNetwork(spec)).id, created.id);
    assert.equal(created.dnsEnabled, true);
    assert.equal(created.internal, false);
    assert.equal(created.labels["town.role"], "spare");
    const listed = await podman.listNetworks({ ...runLabels, "town.role": "spare" });
    assert.deepEqual(
      listed.map((n) => n.name),
      [spec.name],
    );
    assert.equal(await podman.removeNetwork(spec.name), true);
    assert.equal(await podman.removeNetwork(spec.name), false);
    assert.equal(await podman.inspectNetwork(spec.name), undefined);
  });

  describe("an app and its dependency on their network", () => {
    const network = nameOf("net");
    let port = 0;
    let webInput: ContainerSpecInput;
    let web: SpecGenerator;
    let db: SpecGenerator;

    before(async () => {
      await podman.createNetwork({ name: network, labels: runLabels });
      port = await freePort();
      const hello = compileExample("hello", "1.0");
      // Published on a free port: the example's http port belongs to the ingress.
      const webPlan: CompiledPackage = {
        ...hello,
        hostname: nameOf("web"),
        ports: [{ name: null, host: port, container: 8080, exposure: "internal" }],
      };
      const dbPlan: CompiledPackage = { ...hello, instance: "hello-db", hostname: nameOf("db") };
      const volumes = { web: join(work, "web-www"), db: join(work, "db-www") };
      await mkdir(volumes.web);
      await mkdir(volumes.db);
      // What the installer does with the plan's files: write them into the volumes.
      for (const file of hello.files) await writeFile(join(volumes.web, file.path), file.content);
      await writeFile(join(volumes.db, "index.html"), "the db answers\n");
      webInput = {
        plan: webPlan,
        network,
        volumePaths: { www: volumes.web },
        hostAddress: { external: "127.0.0.1", internal: "127.0.0.1" },
        labels: runLabels,
      };
      web = containerSpec(webInput);
      db = containerSpec({
        plan: dbPlan,
        network,
        alias: "db",
        volumePaths: { www: volumes.db },
        hostAddress: { external: "127.0.0.1", internal: "127.0.0.1" },
        labels: runLabels,
      });
      await podman.createContainer(db);
      await podman.createContainer(web);
      assert.equal(await podman.startContainer(db.name), true);
      assert.equal(await podman.startContainer(web.name), true);
    });

    it("serves the bind-mounted page on the published port", async () => {
      const page = await fetchText(`http://127.0.0.1:${port}/`);
      assert.match(page, /<h1>Hello from Town OS<\/h1>/);
      assert.equal(await podman.startContainer(web.name), false, "already running");
    });

    it("refuses a second container of the same name as a conflict", async () => {
      const error = await rejection(podman.createContainer(web));
      assert.equal(error.code, "conflict");
      assert.match(error.message, new RegExp(`^podman: create container ${web.name}: .*in use`));
    });

    it("reaches the dependency by its alias", async () => {
      const result = await podman.exec(web.name, ["wget", "-qO-", "http://db:8080/"]);
      assert.deepEqual(result, {
        exitCode: 0,
        stdout: "the db answers\n",
        stderr: "",
        truncated: false,
      });
    });

    it("runs commands with their output and exit code, bounded", async () => {
      const result = await podman.exec(
        web.name,
        ["sh", "-c", 'echo "$GREETING"; echo oops >&2; exit 3'],
        { env: { GREETING: "hi there" } },
      );
      assert.deepEqual(result, {
        exitCode: 3,
        stdout: "hi there\n",
        stderr: "oops\n",
        truncated: false,
      });
      const big = await podman.exec(web.name, ["sh", "-c", "seq 1 5000"], { maxOutputBytes: 100 });
      assert.equal(big.truncated, true);
      assert.equal(big.stdout.length, 100);
      assert.ok(big.stdout.startsWith("1\n2\n3\n"));
      const missing = await podman.exec(web.name, ["/no/such/program"]);
      assert.equal(missing.exitCode, 127, "not found, as a shell says");
    });

    it("labels the containers with the spec hash and finds them by label", async () => {
      const info = await podman.inspectContainer(web.name);
      assert.ok(info);
      assert.equal(info.state.running, true);
      assert.equal(info.health, null);
      assert.equal(info.image, TEST_IMAGE);
      assert.equal(info.labels[LABEL_SPEC_HASH], web.labels[LABEL_SPEC_HASH]);
      assert.equal(info.labels[LABEL_SPEC_HASH], specHash(containerSpec(webInput)));
      assert.equal(info.labels["town.instance"], "hello");
      const both = await podman.listContainers(runLabels);
      for (const name of [web.name, db.name]) {
        assert.ok(
          both.some((c) => c.name === name && c.state === "running"),
          name,
        );
      }
      const dbOnly = await podman.listContainers({ ...runLabels, "town.instance": "hello-db" });
      assert.deepEqual(
        dbOnly.map((c) => c.name),
        [db.name],
      );
    });

    it("samples resource use", async () => {
      const stats = await podman.stats(web.name);
      assert.ok(stats.memoryBytes > 0);
      assert.ok(stats.pids >= 1);
    });
  });

  it("reads logs with timestamps, and follows them until aborted", async () => {
    const spec = plainSpec("logger", [
      "sh",
      "-c",
      "echo first; echo oops >&2; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done",
    ]);
    await podman.createContainer(spec);
    await podman.startContainer(spec.name);
    const begin = Date.now();
    await sleep(300);

    const lines = await collect(await podman.logs(spec.name, { timestamps: true }));
    // Each stream keeps its order; between the two, conmon gives none.
    assert.equal(lines.find((l) => l.stream === "stdout")?.text, "first");
    assert.deepEqual(
      lines.filter((l) => l.stream === "stderr").map((l) => l.text),
      ["oops"],
    );
    assert.ok(lines.length > 2);
    const time = lines[0]?.time?.getTime() ?? 0;
    assert.ok(Math.abs(time - begin) < 60_000, `a timestamp near now, not ${String(time)}`);
    const last = await collect(await podman.logs(spec.name, { tail: 1, stderr: false }));
    // Podman reads on to the end of the log after taking its tail: a tick written meanwhile comes too.
    assert.ok(last.length === 1 || last.length === 2, `${String(last.length)} lines for tail 1`);
    for (const line of last) assert.match(line.text, /^tick \d+$/);
    const future = new Date(Date.now() + 60_000);
    assert.deepEqual(await collect(await podman.logs(spec.name, { since: future })), []);
    const past = new Date(begin - 60_000);
    assert.deepEqual(await collect(await podman.logs(spec.name, { until: past })), []);
    const window = await collect(
      await podman.logs(spec.name, { since: past, until: future, stderr: false }),
    );
    assert.equal(window[0]?.text, "first");

    const abort = new AbortController();
    const followed: LogLine[] = [];
    const stream = await podman.logs(spec.name, { follow: true, tail: 0, signal: abort.signal });
    for await (const line of stream) {
      followed.push(line);
      if (followed.length === 3) abort.abort();
    }
    assert.equal(followed.length, 3, "no line after the abort");
    assert.ok(followed.every((l) => /^tick \d+$/.test(l.text)));
    assert.equal(await podman.removeContainer(spec.name, { timeoutSeconds: 0 }), true);

    const error = await rejection(podman.logs(spec.name));
    assert.equal(error.code, "not_found");
    assert.match(error.message, new RegExp(`^podman: logs of container ${spec.name}: `));
  });

  it("streams the events of labelled containers only", async () => {
    const labels = { ...runLabels, "town.instance": "evented" };
    const abort = new AbortController();
    const timeout = setTimeout(() => {
      abort.abort();
    }, 15_000);
    const events = await podman.events({ labels, types: ["container"], signal: abort.signal });
    // Not labelled as watched: its events must not show up.
    const other = plainSpec("unwatched", ["sleep", "30"]);
    await podman.createContainer(other);
    await podman.startContainer(other.name);
    const spec = plainSpec("evented", ["sleep", "30"], { "town.instance": "evented" });
    await podman.createContainer(spec);
    await podman.startContainer(spec.name);
    await podman.stopContainer(spec.name, { timeoutSeconds: 0 });
    const seen: PodmanEvent[] = [];
    for await (const event of events) {
      seen.push(event);
      if (event.action === "died") abort.abort();
    }
    clearTimeout(timeout);
    const actions = seen.map((e) => e.action);
    assert.ok(actions.includes("start"), actions.join(","));
    assert.ok(actions.includes("died"), actions.join(","));
    assert.ok(
      seen.every((e) => e.name === spec.name && e.attributes["town.instance"] === "evented"),
    );
    assert.equal(seen.find((e) => e.action === "died")?.exitCode, 137);
    await podman.removeContainer(other.name, { timeoutSeconds: 0 });
  });

  it("runs a container on the host's network: it reaches the host's loopback, read-only mounts stay so", async () => {
    const server = createServer((_request, response) => response.end("host loopback"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const dir = join(work, "host-net");
    await mkdir(dir, { recursive: true });
    const spec = podmanSpec({
      kind: "container",
      name: nameOf("hostnet"),
      hostname: nameOf("hostnet"),
      image: TEST_IMAGE,
      command: ["sleep", "30"],
      env: {},
      labels: { ...runLabels },
      mounts: [{ source: dir, target: "/ro", readOnly: true }],
      ports: [],
      network: null,
      hostNetwork: true,
      restart: "no",
    });
    try {
      await podman.createContainer(spec);
      await podman.startContainer(spec.name);
      const fetched = await podman.exec(spec.name, ["wget", "-qO-", `http://127.0.0.1:${port}/`]);
      assert.equal(fetched.stdout, "host loopback", fetched.stderr);
      const write = await podman.exec(spec.name, ["touch", "/ro/x"]);
      assert.notEqual(write.exitCode, 0);
      assert.match(write.stderr, /Read-only file system/);
    } finally {
      await podman.removeContainer(spec.name, { timeoutSeconds: 0 });
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("waits for a container and reports its exit code", async () => {
    const spec = plainSpec("exits", ["sh", "-c", "exit 5"]);
    await podman.createContainer(spec);
    await podman.startContainer(spec.name);
    assert.equal(await podman.waitContainer(spec.name), 5);
    const info = await podman.inspectContainer(spec.name);
    assert.equal(info?.state.running, false);
    assert.equal(info.state.exitCode, 5);
    assert.ok(info.state.finishedAt);
  });

  it("stops, kills and removes idempotently", async () => {
    const spec = plainSpec("sleeper", ["sleep", "30"]);
    await podman.createContainer(spec);
    await podman.startContainer(spec.name);
    assert.equal(await podman.killContainer(spec.name), true);
    assert.equal(await podman.waitContainer(spec.name), 137);
    assert.equal(await podman.killContainer(spec.name), false, "not running");
    assert.equal(await podman.stopContainer(spec.name), false, "already stopped");
    await podman.startContainer(spec.name);
    assert.equal(await podman.stopContainer(spec.name, { timeoutSeconds: 0 }), true);
    assert.equal(await podman.stopContainer(spec.name, { timeoutSeconds: 0 }), false);
    assert.equal(await podman.removeContainer(spec.name), true);
    assert.equal(await podman.removeContainer(spec.name), false, "absent is not an error");
    assert.equal(await podman.stopContainer(spec.name), false);
    assert.equal(await podman.killContainer(spec.name), false);
    assert.equal(await podman.inspectContainer(spec.name), undefined);
    const error = await rejection(podman.startContainer(spec.name));
    assert.equal(error.code, "not_found");
  });

  it("runs a healthcheck on demand (no systemd timers run them here)", async () => {
    const spec = {
      ...plainSpec("checked", ["sleep", "30"]),
      healthconfig: {
        Test: ["CMD-SHELL", "test -d /bin"],
        Interval: 60e9,
        Retries: 3,
        Timeout: 5e9,
      },
    };
    await podman.createContainer(spec);
    await podman.startContainer(spec.name);
    assert.equal((await podman.inspectContainer(spec.name))?.health?.status, "starting");
    const health = await podman.runHealthcheck(spec.name);
    assert.equal(health.status, "healthy");
    assert.equal((await podman.inspectContainer(spec.name))?.health?.log[0]?.exitCode, 0);
    const unchecked = plainSpec("unchecked", ["sleep", "30"]);
    await podman.createContainer(unchecked);
    await podman.startContainer(unchecked.name);
    const error = await rejection(podman.runHealthcheck(unchecked.name));
    assert.equal(error.code, "conflict");
    assert.match(error.message, /no defined healthcheck/);
  });
});
