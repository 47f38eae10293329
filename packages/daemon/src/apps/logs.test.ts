import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { LogEvent } from "@townos/api";
import { TownError } from "@townos/format";
import { expectTownError } from "../../../format/test/support.js";
import { FakeRuntime } from "../../test/runtime/fake-runtime.js";
import {
  appContainers,
  decodeCursor,
  EventQueue,
  followLogs,
  readLogPage,
  type AppContainer,
  type LogRuntime,
} from "./logs.js";
import { compileExample } from "../../test/runtime/examples.js";

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const db: AppContainer = { name: "app-db", instance: "db", index: 0 };
const web: AppContainer = { name: "app-web", instance: "web", index: 1 };
const both = [db, web];

function setup(): { runtime: FakeRuntime; now: { ms: number }; clock: () => number } {
  const now = { ms: T0 };
  const clock = (): number => now.ms;
  const runtime = new FakeRuntime(clock);
  runtime.run(db.name);
  runtime.run(web.name);
  return { runtime, now, clock };
}

const texts = (items: { text: string }[]): string[] => items.map((item) => item.text);

describe("log history", () => {
  it("merges containers by second, then plan order, each line tagged", async () => {
    const { runtime, now } = setup();
    runtime.write(web.name, "web starts", "stdout", T0 + 100);
    runtime.write(db.name, "db starts", "stdout", T0 + 900);
    runtime.write(web.name, "web warns", "stderr", T0 + 1200);
    runtime.write(db.name, "db ready", "stdout", T0 + 1100);
    now.ms = T0 + 5000;
    const page = await readLogPage(runtime, both, { limit: 10 }, now.ms);
    assert.deepEqual(texts(page.items), ["db starts", "web starts", "db ready", "web warns"]);
    assert.deepEqual(page.items[3], {
      container: web.name,
      instance: "web",
      stream: "stderr",
      time: T0 + 1000,
      text: "web warns",
      truncated: false,
    });
    assert.equal(page.before, null, "nothing is older");
    assert.equal(page.partial, false);
  });

  it("pages back with `before`, newest last, every line exactly once", async () => {
    const { runtime, now } = setup();
    // Three lines in one second on both containers, and lines minutes apart (several windows).
    for (let i = 0; i < 3; i++) runtime.write(db.name, `db ${i}`, "stdout", T0 + 500);
    for (let i = 0; i < 3; i++) runtime.write(web.name, `web ${i}`, "stdout", T0 + 600);
    runtime.write(db.name, "db later", "stdout", T0 + 600_000);
    runtime.write(web.name, "web much later", "stdout", T0 + 3_600_000);
    now.ms = T0 + 3_600_500;
    const seen: string[][] = [];
    let before: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await readLogPage(
        runtime,
        both,
        { limit: 3, ...(before ? { before } : {}) },
        now.ms,
      );
      seen.unshift(texts(page.items));
      if (page.before === null) break;
      before = page.before;
    }
    assert.deepEqual(seen.flat(), [
      "db 0",
      "db 1",
      "db 2",
      "web 0",
      "web 1",
      "web 2",
      "db later",
      "web much later",
    ]);
    assert.deepEqual(
      seen.map((page) => page.length),
      [2, 3, 3],
      "pages of 3, the oldest one short",
    );
  });

  it("keeps its cursor valid while the containers write more", async () => {
    const { runtime, now } = setup();
    for (let i = 0; i < 4; i++) runtime.write(db.name, `db ${i}`, "stdout", T0 + 100);
    now.ms = T0 + 200;
    const newest = await readLogPage(runtime, both, { limit: 2 }, now.ms);
    assert.deepEqual(texts(newest.items), ["db 2", "db 3"]);
    runtime.write(db.name, "db 4", "stdout", T0 + 300);
    runtime.write(web.name, "web 0", "stdout", T0 + 300);
    const older = await readLogPage(
      runtime,
      both,
      { limit: 5, before: newest.before ?? "" },
      now.ms + 500,
    );
    assert.deepEqual(texts(older.items), ["db 0", "db 1"]);
  });

  it("searches case-insensitively, across windows", async () => {
    const { runtime, now } = setup();
    runtime.write(db.name, "ERROR: disk full", "stderr", T0);
    for (let i = 0; i < 50; i++) runtime.write(web.name, `request ${i}`, "stdout", T0 + 1000 + i);
    runtime.write(web.name, "an error again", "stdout", T0 + 7_200_000);
    now.ms = T0 + 7_200_000;
    const page = await readLogPage(runtime, both, { limit: 10, search: "Error" }, now.ms);
    assert.deepEqual(texts(page.items), ["ERROR: disk full", "an error again"]);
    assert.equal(page.before, null);
    assert.ok(
      runtime.logCalls.length > 4,
      `read in growing windows back to the creation (${runtime.logCalls.length} calls)`,
    );
  });

  it("bounds line length and the bytes one page reads", async () => {
    const { runtime, now } = setup();
    runtime.write(db.name, "x".repeat(100), "stdout", T0);
    for (let i = 0; i < 20; i++)
      runtime.write(web.name, `line ${i} ${"y".repeat(40)}`, "stdout", T0 + 120_000 + i);
    now.ms = T0 + 130_000;
    const limits = { maxLineLength: 10, maxScanBytes: 400 };
    const page = await readLogPage(runtime, both, { limit: 100, search: "zzz" }, now.ms, limits);
    assert.equal(page.partial, true, "stopped at the byte bound");
    assert.ok(page.scannedBytes <= 2 * limits.maxScanBytes, String(page.scannedBytes));
    assert.ok(page.before, "a cursor to continue from");
    const long = await readLogPage(runtime, [db], { limit: 1 }, now.ms, limits);
    assert.deepEqual(
      long.items.map((i) => [i.text, i.truncated]),
      [["xxxxxxxxxx", true]],
    );
  });

  it("pages through logs too busy for one page's byte bound without a hole", async () => {
    const { runtime, now } = setup();
    const S = T0 + 600_000;
    const written: string[] = [];
    const write = (text: string, time: number): void => {
      runtime.write(web.name, text, "stdout", time);
      written.push(text);
    };
    write("old", S - 200_000);
    for (let second = 34; second >= 30; second--) {
      for (let i = 0; i < 4; i++) write(`busy ${second} ${i} ${"z".repeat(40)}`, S - second * 1000);
    }
    for (let i = 0; i < 3; i++) write(`new ${i}`, S);
    now.ms = S + 500;
    const limits = { maxLineLength: 100, maxScanBytes: 400 };
    const seen: string[][] = [];
    let before: string | undefined;
    let partial = 0;
    for (let pages = 0; pages < 100; pages++) {
      const page = await readLogPage(
        runtime,
        [web],
        { limit: 100, ...(before ? { before } : {}) },
        now.ms,
        limits,
      );
      if (page.partial) partial += 1;
      seen.unshift(texts(page.items));
      if (page.before === null) break;
      before = page.before;
    }
    assert.ok(partial > 0, "the byte bound was hit");
    assert.deepEqual(seen.flat(), written, "every line once, in order");
  });

  it("answers an empty page for containers that do not exist", async () => {
    const { runtime, now } = setup();
    const page = await readLogPage(
      runtime,
      [{ name: "absent", instance: "x", index: 0 }],
      { limit: 5 },
      now.ms,
    );
    assert.deepEqual(page, { items: [], before: null, partial: false, scannedBytes: 0 });
  });

  it("refuses a malformed cursor", async () => {
    const { runtime, now } = setup();
    await expectTownError(
      readLogPage(runtime, both, { limit: 5, before: "12;rm" }, now.ms),
      "invalid_argument",
      /not a log cursor/,
    );
    assert.deepEqual(decodeCursor("1700000000.1.2"), { second: 1700000000, container: 1, line: 2 });
  });

  it("lists an app's containers, dependencies first, or one instance", () => {
    const plan = compileExample("guestbook", "1.0");
    const all = appContainers(plan);
    assert.ok(all.length >= 2, "the guestbook has a dependency");
    assert.equal(all.at(-1)?.instance, plan.instance, "the app itself comes last");
    const dependency = all[0]?.instance ?? "";
    assert.deepEqual(
      appContainers(plan, dependency).map((c) => c.instance),
      [dependency],
    );
    assert.throws(
      () => appContainers(plan, "nope"),
      (error: unknown) => error instanceof TownError && error.code === "not_found",
    );
    assert.deepEqual(appContainers(null), []);
  });
});

/** Collects events until `until` says stop, then aborts; fails after 5 s. */
async function followUntil(
  runtime: LogRuntime,
  containers: AppContainer[],
  options: { tail: number; search?: string; clock: () => number },
  act: (events: LogEvent[]) => void | Promise<void>,
  until: (events: LogEvent[]) => boolean,
): Promise<LogEvent[]> {
  const stop = new AbortController();
  const timeout = setTimeout(() => {
    stop.abort();
  }, 5000);
  const events: LogEvent[] = [];
  let acted = false;
  for await (const event of followLogs(runtime, containers, {
    tail: options.tail,
    ...(options.search ? { search: options.search } : {}),
    signal: stop.signal,
    pollMs: 10,
    now: options.clock,
  })) {
    events.push(event);
    if (
      !acted &&
      event.type === "container" &&
      event.state === "attached" &&
      events.filter((e) => e.type === "container" && e.state === "attached").length ===
        containers.length
    ) {
      acted = true;
      await act(events);
    }
    if (until(events)) stop.abort();
  }
  clearTimeout(timeout);
  return events;
}

const lineTexts = (events: LogEvent[]): string[] =>
  events.flatMap((event) => (event.type === "line" ? [event.text] : []));

describe("log follow", () => {
  it("starts with the last lines, then merges new ones, and closes every stream", async () => {
    const { runtime, now, clock } = setup();
    for (let i = 0; i < 5; i++) runtime.write(db.name, `old ${i}`, "stdout", T0 + i);
    now.ms = T0 + 2000;
    const events = await followUntil(
      runtime,
      both,
      { tail: 2, clock },
      () => {
        runtime.write(web.name, "new web");
        runtime.write(db.name, "new db");
      },
      (seen) => lineTexts(seen).length >= 4,
    );
    assert.deepEqual(lineTexts(events), ["old 3", "old 4", "new web", "new db"]);
    assert.equal(runtime.open, 0, "no stream left open");
  });

  it("does not repeat lines of the second the history ended in", async () => {
    const { runtime, now, clock } = setup();
    runtime.write(db.name, "a", "stdout", T0 + 10);
    runtime.write(db.name, "b", "stdout", T0 + 20);
    now.ms = T0 + 30;
    const events = await followUntil(
      runtime,
      [db],
      { tail: 1, clock },
      () => {
        runtime.write(db.name, "c", "stdout", T0 + 40);
      },
      (seen) => lineTexts(seen).includes("c"),
    );
    assert.deepEqual(lineTexts(events), ["b", "c"]);
  });

  it("follows a container again after it restarts, and a recreated one from its start", async () => {
    const { runtime, now, clock } = setup();
    now.ms = T0 + 1000;
    const events = await followUntil(
      runtime,
      [db],
      { tail: 0, clock },
      async () => {
        runtime.write(db.name, "before restart");
        runtime.halt(db.name);
        await sleep(50);
        runtime.resume(db.name);
        runtime.write(db.name, "after restart");
        await sleep(50);
        runtime.run(db.name);
        runtime.write(db.name, "recreated", "stdout", now.ms - 5000);
      },
      (seen) => lineTexts(seen).includes("recreated"),
    );
    assert.deepEqual(lineTexts(events), ["before restart", "after restart", "recreated"]);
    const states = events.flatMap((e) => (e.type === "container" ? [e.state] : []));
    assert.ok(states.includes("detached"), states.join(","));
    assert.ok(states.filter((s) => s === "attached").length >= 3, states.join(","));
    assert.equal(runtime.open, 0);
  });

  it("filters live lines by the search too", async () => {
    const { runtime, clock } = setup();
    const events = await followUntil(
      runtime,
      [web],
      { tail: 5, search: "GET", clock },
      () => {
        runtime.write(web.name, "POST /form");
        runtime.write(web.name, "get /index");
      },
      (seen) => lineTexts(seen).length > 0,
    );
    assert.deepEqual(lineTexts(events), ["get /index"]);
  });
});

describe("event queue", () => {
  it("holds producers back when full and ends on abort", async () => {
    const stop = new AbortController();
    const queue = new EventQueue<number>(2, stop.signal);
    let pushed = 0;
    const producer = (async () => {
      for (let i = 0; i < 5; i++) {
        await queue.push(i);
        pushed += 1;
      }
    })();
    await sleep(10);
    assert.equal(pushed, 2, "the third push waits for room");
    assert.equal(await queue.next(), 0);
    await sleep(10);
    assert.equal(pushed, 3);
    stop.abort();
    await producer;
    assert.equal(await queue.next(), undefined);
  });

  it("hands a producer's failure to the reader", async () => {
    const queue = new EventQueue<number>(2, new AbortController().signal);
    queue.fail(new TownError("io", "boom"));
    await expectTownError(queue.next(), "io", /boom/);
  });
});
