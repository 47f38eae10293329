import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { AuditLog, invalidInputDetail, type AuditRecord } from "./audit.js";
import { openDatabase } from "./database.js";

function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  return { clock: () => now, advance: (ms: number) => (now += ms) };
}

const anonymous = (source: string, target = "x"): AuditRecord => ({
  accountId: null,
  username: null,
  action: "auth.login",
  target,
  detail: {},
  outcome: "unauthenticated",
  error: "wrong username or password",
  source,
});

const all = (log: AuditLog) => log.search({ offset: 0, limit: 1000, order: "asc" });

describe("audit log bounds", () => {
  it("cuts every field and drops control characters", () => {
    const log = new AuditLog(openDatabase(":memory:"), fakeClock().clock);
    const huge = "a".repeat(200_000);
    log.record({
      accountId: 1,
      username: huge,
      action: huge,
      target: `evil\u001b[2J\n${huge}`,
      detail: { body: huge },
      outcome: huge,
      error: huge,
      source: huge,
    });
    const [row] = all(log).items;
    assert.ok(row);
    assert.ok(JSON.stringify(row).length < 4096, `row of ${JSON.stringify(row).length} chars`);
    assert.match(row.target, /^evil\ufffd\[2J\ufffda+…$/);
    assert.equal(row.detail["truncated"], true);
  });

  it("records only the names of the fields of a refused input", () => {
    const failure = new TownError("invalid_argument", "body.username: too long", {
      issues: [{ field: "body.username", message: "too long" }],
    });
    assert.deepEqual(invalidInputDetail(failure), { invalid: ["body.username"] });
    assert.equal(invalidInputDetail(new TownError("unauthenticated", "no")), undefined);
    assert.equal(invalidInputDetail(undefined), undefined);
  });
});

describe("anonymous audit rows", () => {
  it("records a few per source and minute, then one summary of the rest", () => {
    const { clock, advance } = fakeClock();
    const log = new AuditLog(openDatabase(":memory:"), clock, { anonymousRowsPerMinute: 3 });
    for (let i = 0; i < 50; i++) log.record(anonymous("2001:db8::1", `t${i}`));
    for (let i = 0; i < 50; i++) log.record(anonymous("2001:db8::2", `u${i}`));
    log.record(anonymous("10.0.0.9"));
    log.record({ ...anonymous("2001:db8::1"), accountId: 7, username: "alice" });
    assert.equal(all(log).total, 5, "three from the /64, one from 10.0.0.9, alice's");
    advance(60_000);
    log.prune(90 * 24 * 3600_000);
    const summary = all(log).items.find((row) => row.action === "audit.suppressed");
    assert.equal(summary?.target, "2001:db8:0:0::/64");
    assert.equal(summary.detail["count"], 97);
    assert.equal(all(log).total, 6);
    // A new minute records again.
    log.record(anonymous("2001:db8::1"));
    assert.equal(all(log).total, 7);
  });

  it("writes the summaries of minutes still running when asked to (the daemon stops)", () => {
    const log = new AuditLog(openDatabase(":memory:"), fakeClock().clock, {
      anonymousRowsPerMinute: 1,
    });
    for (let i = 0; i < 4; i++) log.record(anonymous("10.0.0.1"));
    log.prune(90 * 24 * 3600_000);
    assert.equal(all(log).total, 1, "the minute is not over");
    log.summariseAnonymous();
    assert.deepEqual(
      all(log).items.map((row) => [row.action, row.detail["count"] ?? null]),
      [
        ["auth.login", null],
        ["audit.suppressed", 3],
      ],
    );
  });
});

describe("audit retention", () => {
  it("drops rows past the retention, then the oldest beyond the row cap", () => {
    const { clock, advance } = fakeClock();
    const log = new AuditLog(openDatabase(":memory:"), clock, { maxRows: 5 });
    const signedIn = (target: string): AuditRecord => ({
      ...anonymous("10.0.0.1", target),
      accountId: 1,
      username: "alice",
    });
    for (let i = 0; i < 3; i++) log.record(signedIn(`old${i}`));
    advance(10 * 24 * 3600_000);
    for (let i = 0; i < 7; i++) log.record(signedIn(`new${i}`));
    assert.equal(log.prune(5 * 24 * 3600_000), 5);
    assert.deepEqual(
      all(log).items.map((row) => row.target),
      ["new2", "new3", "new4", "new5", "new6"],
    );
    assert.equal(log.prune(5 * 24 * 3600_000), 0);
  });
});
