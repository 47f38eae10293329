/**
 * The driver's transport, error mapping and parsing against a fake libpod
 * (answers copied from Podman 4.3's); podman.integration.test.ts covers the
 * real one.
 */
import assert from "node:assert/strict";
import type http from "node:http";
import { after, describe, it } from "node:test";
import {
  frame,
  sendError,
  sendJson,
  startFakeLibpod,
  type FakeHandler,
  type FakeLibpod,
} from "../../../test/runtime/fake-libpod.js";
import type { SpecGenerator } from "./container-spec.js";
import { Podman } from "./client.js";
import { rejection } from "../../../test/async.js";

const fakes: FakeLibpod[] = [];
after(async () => {
  for (const fake of fakes) await fake.close();
});

/** A driver talking to a fake answering with `handler`. */
async function fakePodman(handler: FakeHandler): Promise<{ podman: Podman; fake: FakeLibpod }> {
  const fake = await startFakeLibpod(handler);
  fakes.push(fake);
  const podman = new Podman({ socketPath: fake.socketPath });
  after(() => {
    podman.close();
  });
  return { podman, fake };
}

function stream(response: http.ServerResponse, parts: (string | Buffer)[]): void {
  response.writeHead(200);
  for (const part of parts) response.write(part);
  response.end();
}

const spec: SpecGenerator = {
  name: "town-default-gitea",
  hostname: "town-default-gitea",
  image: "docker.io/gitea/gitea:latest",
  env: {},
  labels: {},
  portmappings: [],
  mounts: [],
  netns: { nsmode: "bridge" },
  networks: { "town-default-gitea": {} },
  restart_policy: "unless-stopped",
  privileged: false,
};

describe("podman driver: errors", () => {
  it("maps libpod's answers to TownError codes, with context", async () => {
    const answers: [number, string, string][] = [
      [
        500,
        "that name is already in use",
        'the container name "town-default-gitea" is already in use',
      ],
      [500, "image not known", "docker.io/gitea/gitea:latest: image not known"],
      [500, "OCI runtime error", "runc: runc create failed: wrong rlimit value"],
      [400, "bad parameter", "decode(): json: cannot unmarshal"],
      [409, "", "conflict"],
      [500, "network is being used", '"n" has associated containers with it'],
      [
        500,
        "address already in use",
        "cannot listen on the TCP port: listen tcp4 :35435: bind: address already in use",
      ],
    ];
    let next = 0;
    const { podman } = await fakePodman((_request, response) => {
      const [status, cause, message] = answers[next++] ?? [500, "", ""];
      sendError(response, status, cause, message);
    });
    const codes: string[] = [];
    for (const [, , message] of answers) {
      const error = await rejection(podman.createContainer(spec));
      assert.equal(error.message, `podman: create container town-default-gitea: ${message}`);
      codes.push(error.code);
    }
    assert.deepEqual(codes, [
      "conflict",
      "not_found",
      "io",
      "invalid_argument",
      "conflict",
      "conflict",
      "unavailable",
    ]);
  });

  it("reads absence as an answer where it is one", async () => {
    const { podman } = await fakePodman((_request, response) => {
      sendError(response, 404, "no such container", 'no container with name or ID "x" found');
    });
    assert.equal(await podman.inspectContainer("x"), undefined);
    assert.equal(await podman.inspectNetwork("x"), undefined);
    assert.equal(await podman.inspectImage("x"), undefined);
    assert.equal(await podman.imageExists("x"), false);
    assert.equal(await podman.stopContainer("x"), false);
    assert.equal(await podman.killContainer("x"), false);
    assert.equal(await podman.removeContainer("x"), false);
    assert.equal(await podman.removeNetwork("x"), false);
    const error = await rejection(podman.startContainer("x"));
    assert.equal(error.code, "not_found");
    assert.equal(
      error.message,
      'podman: start container x: no container with name or ID "x" found',
    );
  });

  it("treats killing a container that does not run as done", async () => {
    const { podman } = await fakePodman((_request, response) => {
      sendError(response, 500, "container state improper", "can only kill running containers");
    });
    assert.equal(await podman.killContainer("x"), false);
  });

  it("refuses names and references that are not libpod's before sending anything", async () => {
    const { podman, fake } = await fakePodman((_request, response) => {
      sendJson(response, 200, {});
    });
    for (const call of [
      podman.startContainer("../../images/x"),
      podman.inspectContainer("a b"),
      podman.createContainer({ ...spec, name: "-flag" }),
      podman.pullImage("docker.io/x?y=1"),
      podman.killContainer("x", "KILL; rm"),
      podman.stopContainer("x", { timeoutSeconds: -1 }),
      podman.exec("x", []),
    ]) {
      assert.equal((await rejection(call)).code, "invalid_argument");
    }
    assert.equal(fake.requests.length, 0);
  });

  it("bounds answers and waiting, and says when nothing listens", async () => {
    const { podman } = await fakePodman((request, response) => {
      if (request.path.endsWith("/wait")) return; // never answers
      sendJson(response, 200, { Id: "x".repeat(9 * 1024 * 1024) });
    });
    const big = await rejection(podman.inspectContainer("x"));
    assert.equal(big.code, "payload_too_large");
    assert.match(big.message, /^podman: inspect container x: the answer is larger than/);
    const slow = await rejection(podman.waitContainer("x", { timeoutMs: 100 }));
    assert.equal(slow.code, "unavailable");
    assert.equal(slow.message, "podman: wait for container x: no answer within 100 ms");

    const nobody = new Podman({ socketPath: "/nonexistent/town/podman.sock" });
    assert.equal(await nobody.ping(), false);
    const down = await rejection(nobody.version());
    assert.equal(down.code, "unavailable");
    assert.match(down.message, /the Podman service is not running/);
    nobody.close();
  });

  it("calls an answer of the wrong shape unexpected", async () => {
    const { podman } = await fakePodman((_request, response) => {
      sendJson(response, 200, { Id: "abc", State: "running" });
    });
    const error = await rejection(podman.inspectContainer("x"));
    assert.equal(error.code, "io");
    assert.equal(
      error.message,
      "podman: inspect container x: unexpected answer (State is not an object)",
    );
  });
});

describe("podman driver: requests", () => {
  it("sends specs as JSON, names encoded, lists as repeated parameters", async () => {
    const { podman, fake } = await fakePodman((request, response) => {
      if (request.path === "/containers/create") sendJson(response, 201, { Id: "abc" });
      else if (request.path.endsWith("/wait")) sendJson(response, 200, 3);
      else if (request.path === "/containers/json") sendJson(response, 200, []);
      else {
        response.writeHead(204);
        response.end();
      }
    });
    assert.equal(await podman.createContainer(spec), "abc");
    assert.equal(await podman.stopContainer("town-default-gitea", { timeoutSeconds: 3 }), true);
    assert.equal(await podman.waitContainer("town-default-gitea"), 3);
    await podman.listContainers({ "town.repo": "default", "town.name": "gitea" });
    const [create, stop, wait, list] = fake.requests;
    assert.deepEqual(create?.body, spec);
    assert.equal(stop?.path, "/containers/town-default-gitea/stop");
    assert.equal(stop.query.get("timeout"), "3");
    assert.deepEqual(wait?.query.getAll("condition"), ["stopped", "exited"]);
    assert.deepEqual(JSON.parse(list?.query.get("filters") ?? ""), {
      label: ["town.repo=default", "town.name=gitea"],
    });
    assert.ok(list);
    assert.equal(list.query.get("all"), "true");
  });

  it("creates a network only when there is none of that name", async () => {
    const network = {
      name: "town-default-gitea",
      id: "n1",
      driver: "bridge",
      dns_enabled: true,
      labels: { "town.repo": "default" },
      subnets: [{ subnet: "10.89.0.0/24", gateway: "10.89.0.1" }],
    };
    let exists = false;
    const { podman, fake } = await fakePodman((request, response) => {
      if (request.path === "/networks/create") {
        exists = true;
        sendJson(response, 200, network);
      } else if (exists) sendJson(response, 200, network);
      else sendError(response, 404, "network not found", "unable to find network");
    });
    const created = await podman.createNetwork({ name: network.name, labels: network.labels });
    assert.deepEqual(created, {
      id: "n1",
      name: "town-default-gitea",
      driver: "bridge",
      internal: false,
      dnsEnabled: true,
      labels: { "town.repo": "default" },
      subnets: [{ subnet: "10.89.0.0/24", gateway: "10.89.0.1" }],
    });
    assert.deepEqual(fake.requests[1]?.body, {
      name: "town-default-gitea",
      driver: "bridge",
      labels: { "town.repo": "default" },
      internal: false,
      dns_enabled: true,
    });
    assert.deepEqual(await podman.createNetwork({ name: network.name }), created);
    assert.equal(fake.requests.filter((r) => r.path === "/networks/create").length, 1);
  });
});

describe("podman driver: streams", () => {
  it("pulls with progress, and tells an unreachable registry from a missing image", async () => {
    const outcomes = [
      [
        '{"stream":"Trying to pull x...\\n"}\n{"stream":"Copying blob 1\\n"}\n',
        '{"id":"sha","images":["sha"]}\n',
      ],
      [
        '{"stream":"Trying to pull x...\\n"}\n',
        '{"error":"pinging container registry r: dial tcp: lookup r: no such host"}\n',
      ],
      ['{"error":"reading manifest latest in r/x: manifest unknown"}\n'],
      ['{"stream":"Trying to pull x...\\n"}\n'],
    ];
    let next = 0;
    const { podman } = await fakePodman((_request, response) => {
      stream(response, outcomes[next++] ?? []);
    });
    const progress: string[] = [];
    const result = await podman.pullImage("r/x:latest", {
      onProgress: (line) => progress.push(line),
    });
    assert.deepEqual(result, { id: "sha", images: ["sha"] });
    assert.deepEqual(progress, ["Trying to pull x...", "Copying blob 1"]);
    const unreachable = await rejection(podman.pullImage("r/x:latest"));
    assert.equal(unreachable.code, "unavailable");
    assert.match(
      unreachable.message,
      /^podman: pull image r\/x:latest: the registry cannot be reached: /,
    );
    const missing = await rejection(podman.pullImage("r/x:latest"));
    assert.equal(missing.code, "not_found");
    const cut = await rejection(podman.pullImage("r/x:latest"));
    assert.equal(cut.code, "io");
    assert.match(cut.message, /ended without a result/);
  });

  it("yields events with all the asked labels, and ends quietly on abort", async () => {
    // timeNano is spliced in as text: it is above 2^53, as libpod sends it.
    const event = (
      name: string,
      action: string,
      labels: Record<string, string>,
      exit = "0",
    ): string =>
      `${JSON.stringify({
        status: action,
        Type: "container",
        Action: action,
        Actor: { ID: `id-${name}`, Attributes: { name, containerExitCode: exit, ...labels } },
        time: 1795776680,
        timeNano: 0,
      }).replace('"timeNano":0', '"timeNano":1795776680409056805')}\n`;
    const { podman, fake } = await fakePodman((_request, response) => {
      response.writeHead(200);
      response.write(event("a", "start", { "town.repo": "default", "town.name": "a" }));
      // Libpod ORs label filters: this one matches only one of the two.
      response.write(event("b", "start", { "town.repo": "default" }));
      response.write(event("a", "died", { "town.repo": "default", "town.name": "a" }, "137"));
      // Left open, as libpod's stream is.
    });
    const abort = new AbortController();
    const events = await podman.events({
      labels: { "town.repo": "default", "town.name": "a" },
      types: ["container"],
      signal: abort.signal,
    });
    const seen: [string, string, number | null][] = [];
    for await (const e of events) {
      seen.push([e.name ?? "", e.action, e.exitCode]);
      assert.equal(e.time.toISOString(), "2026-11-27T10:51:20.409Z");
      if (e.action === "died") abort.abort();
    }
    assert.deepEqual(seen, [
      ["a", "start", null],
      ["a", "died", 137],
    ]);
    assert.deepEqual(JSON.parse(fake.requests[0]?.query.get("filters") ?? ""), {
      label: ["town.repo=default", "town.name=a"],
      type: ["container"],
    });
  });

  it("reads logs with timestamps from frames, and fails at once for a missing container", async () => {
    const { podman } = await fakePodman((request, response) => {
      if (request.path.startsWith("/containers/gone/")) {
        sendError(response, 404, "no such container", 'no container with name or ID "gone" found');
        return;
      }
      stream(response, [
        frame(1, "2026-11-27T10:51:08Z hello world\n"),
        frame(2, "2026-11-27T10:51:09Z oops\n"),
      ]);
    });
    const lines = [];
    for await (const line of await podman.logs("app", { timestamps: true })) lines.push(line);
    assert.deepEqual(lines, [
      { stream: "stdout", time: new Date("2026-11-27T10:51:08Z"), text: "hello world" },
      { stream: "stderr", time: new Date("2026-11-27T10:51:09Z"), text: "oops" },
    ]);
    const error = await rejection(podman.logs("gone"));
    assert.equal(error.code, "not_found");
    assert.match(error.message, /^podman: logs of container gone: /);
  });

  it("runs exec: output from frames, the exit code once libpod has it", async () => {
    let inspections = 0;
    const { podman, fake } = await fakePodman((request, response) => {
      if (request.path === "/containers/app/exec") sendJson(response, 201, { Id: "e1" });
      else if (request.path === "/exec/e1/start") {
        stream(response, [frame(1, "out"), frame(2, "err"), frame(1, "put")]);
      } else {
        inspections++;
        sendJson(response, 200, { Running: inspections < 2, ExitCode: inspections < 2 ? 0 : 2 });
      }
    });
    const result = await podman.exec("app", ["gitea", "doctor"], {
      env: { A: "1" },
      workdir: "/data",
    });
    assert.deepEqual(result, { exitCode: 2, stdout: "output", stderr: "err", truncated: false });
    assert.equal(inspections, 2);
    assert.deepEqual(fake.requests[0]?.body, {
      AttachStdin: false,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      Cmd: ["gitea", "doctor"],
      Env: ["A=1"],
      WorkingDir: "/data",
    });
  });
});
