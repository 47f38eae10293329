import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { checkSchedule, nextRun } from "./schedule.js";

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function refused(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof TownError);
    assert.equal(error.code, "invalid_argument");
    assert.equal(error.issues[0]?.field, "schedule");
    assert.match(error.message, pattern);
    return true;
  };
}

describe("checkSchedule", () => {
  it("accepts five-field cron and the shorthands, normalized", () => {
    assert.equal(checkSchedule("0 3 * * *"), "0 3 * * *");
    assert.equal(checkSchedule("  */15   *\t* * MON-FRI "), "*/15 * * * MON-FRI");
    for (const shorthand of ["@hourly", "@daily", "@weekly", "@monthly", "@yearly"]) {
      assert.equal(checkSchedule(shorthand), shorthand);
    }
  });

  it("refuses seconds and years, other shorthands, bad fields, long text and dates that never come", () => {
    assert.throws(() => checkSchedule("0 0 3 * * *"), refused(/not five fields/));
    assert.throws(() => checkSchedule("0 0 3 * * * 2030"), refused(/not five fields/));
    assert.throws(() => checkSchedule("* * * *"), refused(/not five fields/));
    assert.throws(() => checkSchedule(""), refused(/not five fields/));
    assert.throws(() => checkSchedule("@reboot"), refused(/not one of @hourly/));
    assert.throws(() => checkSchedule("@every 5m"), refused(/not one of/));
    assert.throws(() => checkSchedule("61 * * * *"), refused(/minute/));
    assert.throws(() => checkSchedule("*/0 * * * *"), refused(/stepping/));
    assert.throws(() => checkSchedule("0 0 30 2 *"), refused(/never matches/));
    assert.throws(() => checkSchedule(`0 0 * * ${"1,".repeat(80)}1`), refused(/longer than 128/));
  });
});

describe("nextRun", () => {
  it("answers the next matching minute in UTC, strictly after the time given", () => {
    assert.equal(
      iso(nextRun("0 3 * * *", at("2026-03-15T02:59:59.500Z"))),
      "2026-03-15T03:00:00.000Z",
    );
    assert.equal(
      iso(nextRun("0 3 * * *", at("2026-03-15T03:00:00.000Z"))),
      "2026-03-16T03:00:00.000Z",
    );
    assert.equal(
      iso(nextRun("0 3 * * *", at("2026-03-15T03:00:00.001Z"))),
      "2026-03-16T03:00:00.000Z",
    );
    assert.equal(
      iso(nextRun("*/15 * * * *", at("2026-03-15T10:07:00Z"))),
      "2026-03-15T10:15:00.000Z",
    );
    // 2026-03-15 is a Sunday.
    assert.equal(
      iso(nextRun("30 1 * * 1", at("2026-03-15T12:00:00Z"))),
      "2026-03-16T01:30:00.000Z",
    );
  });

  it("fires the shorthands at the start of their period", () => {
    const from = at("2026-03-15T10:07:00Z");
    assert.equal(iso(nextRun("@hourly", from)), "2026-03-15T11:00:00.000Z");
    assert.equal(iso(nextRun("@daily", from)), "2026-03-16T00:00:00.000Z");
    assert.equal(iso(nextRun("@weekly", from)), "2026-03-22T00:00:00.000Z");
    assert.equal(iso(nextRun("@monthly", from)), "2026-04-01T00:00:00.000Z");
    assert.equal(iso(nextRun("@yearly", from)), "2027-01-01T00:00:00.000Z");
  });

  it("reaches a rare date (29 February) and refuses what checkSchedule refuses", () => {
    assert.equal(
      iso(nextRun("0 0 29 2 *", at("2026-03-01T00:00:00Z"))),
      "2028-02-29T00:00:00.000Z",
    );
    assert.throws(() => nextRun("0 0 3 * * *", 0), refused(/not five fields/));
  });
});
