/**
 * The log and health routes over real HTTP with the typed client, on a fake
 * container runtime: access, pages, the SSE stream as the client reads it,
 * and that a client going away closes every log stream behind it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ApiError, TownClient, type LogEvent } from "@townos/client";
import { runTownCaptured } from "../../../../cli/test/run-town.js";
import type { FastifyInstance } from "fastify";
import { installOf } from "../../../test/apps/fakes.js";
import { compileExample } from "../../../test/runtime/examples.js";
import { FakeRuntime } from "../../../test/runtime/fake-runtime.js";
import { AppMonitor } from "../../apps/monitor.js";
import type { Services } from "../../services.js";
import { openDatabase } from "../../store/database.js";
import { Installs } from "../../store/installs.js";
import type { BootState } from "../context.js";
import { ADMIN_TOKEN, listenApi, testSessions, USER_TOKEN } from "../../../test/api-harness.js";
import { rejection } from "../../../test/async.js";

/** Polls until `check` holds, for at most 5 s. */
async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe("app log and health routes", () => {
  const plan = compileExample("hello", "1.0");
  const container = plan.hostname;
  const runtime = new FakeRuntime(() => Date.now());
  const installs = new Installs(openDatabase(":memory:"), () => Date.now());
  const monitor = new AppMonitor({ installs, clock: () => Date.now() });
  const boot: BootState = { state: "ready", step: "ready", error: null, services: undefined };
  let app: FastifyInstance;
  let client: TownClient;
  let anonymous: TownClient;
  let user: TownClient;
  let logsForUsers = false;
  let baseUrl = "";

  before(async () => {
    installs.put(installOf(plan, { answers: {} }));
    // Only what these routes use; an administrator for the good token, and an ordinary user.
    boot.services = {
      monitor,
      settings: { flag: (key: string) => key === "apps.logs_for_users" && logsForUsers },
      sessions: testSessions,
    } as unknown as Services;
    ({ app, baseUrl } = await listenApi(boot));
    client = new TownClient({ baseUrl, token: ADMIN_TOKEN });
    anonymous = new TownClient({ baseUrl });
    user = new TownClient({ baseUrl, token: USER_TOKEN });
  });

  after(async () => {
    await monitor.stop();
    await app.close();
  });

  it("answers unavailable until a runtime is attached", async () => {
    monitor.setUnavailable("podman is not installed");
    const error = await rejection(client.appHealth("default", "hello"), ApiError);
    assert.equal(error.problem.code, "unavailable");
    assert.match(error.problem.detail, /podman is not installed/);
    monitor.attach(runtime);
    runtime.run(container);
  });

  /** The three routes as one caller sees them: the page, the health, and the stream's first answer. */
  const calls = (caller: TownClient): Promise<unknown>[] => [
    caller.appLogs("default", "hello"),
    caller.appHealth("default", "hello"),
    (async () => {
      const stop = new AbortController();
      const events = caller.followAppLogs("default", "hello", {}, stop.signal);
      await events.next();
      stop.abort();
      await events.return(undefined);
    })(),
  ];

  it("is for administrators, and for every account while apps.logs_for_users is on", async () => {
    for (const call of calls(anonymous)) {
      const error = await rejection(call, ApiError);
      assert.equal(error.problem.code, "unauthenticated");
    }
    for (const call of calls(user)) {
      const error = await rejection(call, ApiError);
      assert.equal(error.problem.code, "forbidden");
    }
    logsForUsers = true;
    try {
      await Promise.all(calls(user));
    } finally {
      logsForUsers = false;
    }
  });

  it("pages logs with search and refuses bad input", async () => {
    runtime.write(container, "GET /index.html 200");
    runtime.write(container, "GET /missing 404", "stderr");
    const page = await client.appLogs("default", "hello", { search: "404" });
    assert.deepEqual(
      page.items.map((item) => [item.instance, item.stream, item.text]),
      [["hello", "stderr", "GET /missing 404"]],
    );
    assert.equal(page.before, null);
    const bad = await rejection(client.appLogs("default", "hello", { before: "x" }), ApiError);
    assert.equal(bad.problem.code, "invalid_argument");
    const tooMany = await rejection(
      client.appLogs("default", "hello", { limit: 100_000 }),
      ApiError,
    );
    assert.equal(tooMany.problem.code, "invalid_argument");
    const noInstance = await rejection(
      client.appLogs("default", "hello", { instance: "db" }),
      ApiError,
    );
    assert.equal(noInstance.problem.code, "not_found");
  });

  it("streams the last lines and new ones, and stops following when the client goes away", async () => {
    const stop = new AbortController();
    const lines: string[] = [];
    const events: LogEvent[] = [];
    const reading = (async () => {
      for await (const event of client.followAppLogs(
        "default",
        "hello",
        { tail: 1 },
        stop.signal,
      )) {
        events.push(event);
        if (event.type === "line") lines.push(event.text);
      }
    })();
    await until("the tail line", () => lines.length === 1);
    assert.equal(runtime.open, 1, "one Podman stream for the one container");
    runtime.write(container, "a new line");
    await until("the new line", () => lines.length === 2);
    assert.deepEqual(lines, ["GET /missing 404", "a new line"]);
    assert.ok(events.some((e) => e.type === "container" && e.state === "attached"));
    stop.abort();
    await reading;
    await until("the daemon to close its Podman stream", () => runtime.open === 0);
  });

  it("answers a plain 404 problem for an app that is not installed, before any stream", async () => {
    const error = await rejection(
      (async () => {
        for await (const event of client.followAppLogs(
          "default",
          "absent",
          {},
          new AbortController().signal,
        )) {
          assert.fail(`no event expected, got ${JSON.stringify(event)}`);
        }
      })(),
      ApiError,
    );
    assert.equal(error.problem.code, "not_found");
  });

  it("serves `town app logs [-f]` (Ctrl-C ends it cleanly) and `town app health`", async () => {
    const town = (...argv: string[]) =>
      runTownCaptured(["--server", baseUrl, ...argv], {
        cwd: process.cwd(),
        env: { TOWN_TOKEN: ADMIN_TOKEN, HOME: "/nonexistent" },
      });
    const logs = await town("app", "logs", "default/hello", "--search", "get");
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /^\S+Z hello GET \/index\.html 200$/m);
    assert.match(logs.stderr, /^\S+Z hello GET \/missing 404$/m, "stderr lines to stderr");

    const follows = (): number => runtime.logCalls.filter((c) => c.options.follow).length;
    const before = follows();
    const following = town("app", "logs", "default/hello", "-f", "--tail", "0");
    await until("the daemon to follow", () => follows() > before);
    runtime.write(container, "a live line");
    await sleep(200);
    process.emit("SIGINT");
    const followed = await following;
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /^\S+Z hello a live line$/m);
    await until("the daemon to close its Podman stream", () => runtime.open === 0);

    const health = await town("app", "health", "default/hello");
    assert.equal(health.code, 0, health.stderr);
    assert.match(health.stdout, /^CONTAINER +STATE +EXIT +RESTARTS +HEALTH +LAST CHECK$/m);
    assert.match(health.stdout, new RegExp(`^${container} +running +- +0 +-$`, "m"));
    assert.equal((await town("app", "logs", "default/hello@1.0")).code, 2);
  });

  it("reports the health of each container", async () => {
    const health = await client.appHealth("default", "hello");
    assert.equal(health.enabled, true);
    assert.deepEqual(
      health.containers.map((c) => [c.container, c.state, c.health.status]),
      [[container, "running", "none"]],
    );
    await runtime.remove(container);
    const gone = await client.appHealth("default", "hello");
    assert.equal(gone.containers[0]?.state, "missing");
  });
});
