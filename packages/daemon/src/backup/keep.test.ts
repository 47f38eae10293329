import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KeepPolicy } from "@townos/api";
import { TownError } from "@townos/format";
import {
  checkKeepPolicy,
  formatKeepPolicy,
  isoWeek,
  parseKeepPolicy,
  periodOf,
  selectKept,
  type KeepPoint,
} from "./keep.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (iso: string): number => Date.parse(iso);

function invalid(field: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof TownError);
    assert.equal(error.code, "invalid_argument");
    assert.ok(
      error.issues.some((issue) => issue.field === field),
      `an issue on ${field} in ${JSON.stringify(error.issues)}`,
    );
    return true;
  };
}

/** A small deterministic generator, so property cases are the same on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe("parseKeepPolicy and formatKeepPolicy", () => {
  it("reads any subset of the rules in any order, and writes them back", () => {
    assert.deepEqual(parseKeepPolicy("hourly=24,daily=7,weekly=4,monthly=6,last=3"), {
      hourly: 24,
      daily: 7,
      weekly: 4,
      monthly: 6,
      last: 3,
    });
    assert.deepEqual(parseKeepPolicy(" last=1 , daily=0 "), { last: 1, daily: 0 });
    assert.deepEqual(parseKeepPolicy("monthly=1000"), { monthly: 1000 });
    assert.equal(formatKeepPolicy({ last: 3, weekly: 4, hourly: 24 }), "hourly=24,weekly=4,last=3");
    for (const text of ["hourly=24,daily=7,weekly=4,monthly=6,last=3", "daily=0,last=2"]) {
      assert.equal(formatKeepPolicy(parseKeepPolicy(text)), text);
    }
  });

  it("refuses unknown rules, repeats, bad counts, and policies that keep nothing", () => {
    assert.throws(() => parseKeepPolicy("yearly=2"), invalid("keep"));
    assert.throws(() => parseKeepPolicy("daily=7,daily=3"), invalid("keep.daily"));
    assert.throws(() => parseKeepPolicy("daily=1001"), invalid("keep.daily"));
    assert.throws(() => parseKeepPolicy("daily=99999999999999999999"), invalid("keep.daily"));
    assert.throws(() => parseKeepPolicy("daily=-1"), invalid("keep"));
    assert.throws(() => parseKeepPolicy("daily=1.5"), invalid("keep"));
    assert.throws(() => parseKeepPolicy("daily"), invalid("keep"));
    assert.throws(() => parseKeepPolicy(""), invalid("keep"));
    assert.throws(() => parseKeepPolicy("daily=7,"), invalid("keep"));
    assert.throws(() => parseKeepPolicy("daily=0,last=0"), invalid("keep"));
    assert.throws(() => parseKeepPolicy(`last=1,${"x".repeat(300)}`), invalid("keep"));
    // Every problem is reported at once.
    assert.throws(
      () => parseKeepPolicy("hourly=2000,yearly=1"),
      (error: unknown) => {
        assert.ok(error instanceof TownError);
        assert.equal(error.issues.length, 2);
        assert.match(error.message, /keep\.hourly: must be a whole number from 0 to 1000/);
        return true;
      },
    );
  });

  it("checks a policy given as an object", () => {
    assert.deepEqual(checkKeepPolicy({ daily: 7 }), { daily: 7 });
    assert.throws(() => checkKeepPolicy({}), invalid("keep"));
    assert.throws(() => checkKeepPolicy({ weekly: 0 }), invalid("keep"));
    assert.throws(() => checkKeepPolicy({ weekly: 2.5 }), invalid("keep.weekly"));
    assert.throws(() => checkKeepPolicy({ last: 1, weekly: 1001 }), invalid("keep.weekly"));
  });
});

describe("isoWeek", () => {
  it("numbers weeks as ISO 8601 does across year changes", () => {
    const cases: [string, number, number][] = [
      ["2020-12-31T12:00:00Z", 2020, 53], // Thursday
      ["2021-01-03T23:59:59Z", 2020, 53], // Sunday: still the week of 2020's last Thursday
      ["2021-01-04T00:00:00Z", 2021, 1], // Monday
      ["2024-12-29T23:00:00Z", 2024, 52], // Sunday
      ["2024-12-30T00:00:00Z", 2025, 1], // Monday: the week of 2025's first Thursday
      ["2026-01-01T00:00:00Z", 2026, 1], // Thursday
      ["2026-03-15T23:00:00Z", 2026, 11], // Sunday
      ["2026-03-16T00:00:00Z", 2026, 12], // Monday
    ];
    for (const [iso, year, week] of cases) {
      assert.deepEqual(isoWeek(new Date(iso)), { year, week }, iso);
    }
  });

  it("puts every instant of a UTC period in the same bucket, and the next one in another", () => {
    assert.equal(
      periodOf("hourly", at("2026-03-15T10:00:00Z")),
      periodOf("hourly", at("2026-03-15T10:59:59.999Z")),
    );
    assert.notEqual(
      periodOf("hourly", at("2026-03-15T10:59:59.999Z")),
      periodOf("hourly", at("2026-03-15T11:00:00Z")),
    );
    assert.equal(
      periodOf("daily", at("2026-03-15T00:00:00Z")),
      periodOf("daily", at("2026-03-15T23:59:59Z")),
    );
    assert.notEqual(
      periodOf("daily", at("2026-03-15T23:59:59Z")),
      periodOf("daily", at("2026-03-16T00:00:00Z")),
    );
    assert.equal(
      periodOf("monthly", at("2026-02-01T00:00:00Z")),
      periodOf("monthly", at("2026-02-28T23:59:59Z")),
    );
    assert.notEqual(
      periodOf("monthly", at("2025-02-01T00:00:00Z")),
      periodOf("monthly", at("2026-02-01T00:00:00Z")),
    );
    assert.equal(
      periodOf("weekly", at("2021-01-03T23:00:00Z")),
      periodOf("weekly", at("2020-12-28T00:00:00Z")),
    );
  });
});

describe("selectKept", () => {
  // 40 days of hourly points ending on Sunday 2026-03-15 23:00 UTC (ISO week 11).
  const newest = at("2026-03-15T23:00:00Z");
  const hourly: KeepPoint[] = Array.from({ length: 40 * 24 }, (_, k) => ({
    id: `p${String(k).padStart(3, "0")}`,
    createdAt: newest - k * HOUR,
  }));
  const idAt = (ms: number): string => {
    const point = hourly.find((p) => p.createdAt === ms);
    assert.ok(point, new Date(ms).toISOString());
    return point.id;
  };

  it("keeps the 24 newest hours, 7 days and 4 weeks of hourly points over 40 days, and prunes the rest", () => {
    const { keep, prune } = selectKept(hourly, { hourly: 24, daily: 7, weekly: 4 });
    const expected = new Set<string>();
    // hourly=24: the newest 24 points, one per hour.
    for (let k = 0; k < 24; k++) expected.add(idAt(newest - k * HOUR));
    // daily=7: each day's newest point is its 23:00 one; today's is kept already.
    for (let d = 0; d < 7; d++) expected.add(idAt(newest - d * DAY));
    // weekly=4: the newest point of weeks 11, 10, 9 and 8 is their Sunday 23:00.
    for (const iso of ["2026-03-15", "2026-03-08", "2026-03-01", "2026-02-22"]) {
      expected.add(idAt(at(`${iso}T23:00:00Z`)));
    }
    assert.equal(expected.size, 24 + 6 + 3);
    assert.deepEqual([...keep].sort(), [...expected].sort());
    assert.equal(prune.length, hourly.length - expected.size);
    assert.ok(prune.every((id) => !keep.has(id)));
    // Pruned newest first (24 hours back is yesterday's newest: kept daily).
    assert.equal(prune[0], idAt(newest - 25 * HOUR));
    assert.equal(prune.at(-1), idAt(newest - (40 * 24 - 1) * HOUR));
  });

  it("counts only periods that have a point", () => {
    // The points reach back to 2026-02-04 00:00: February and March have some, January none.
    const { keep } = selectKept(hourly, { monthly: 3 });
    assert.deepEqual([...keep].sort(), [idAt(newest), idAt(at("2026-02-28T23:00:00Z"))].sort());
    const sparse = [
      { id: "jan", createdAt: at("2026-01-10T00:00:00Z") },
      { id: "apr", createdAt: at("2026-04-10T00:00:00Z") },
      { id: "apr-early", createdAt: at("2026-04-01T00:00:00Z") },
    ];
    assert.deepEqual([...selectKept(sparse, { monthly: 2 }).keep].sort(), ["apr", "jan"]);
  });

  it("keeps the newest `last` whatever their periods", () => {
    const { keep, prune } = selectKept(hourly.slice(0, 10), { last: 3 });
    assert.deepEqual([...keep], ["p000", "p001", "p002"]);
    assert.deepEqual(prune, ["p003", "p004", "p005", "p006", "p007", "p008", "p009"]);
  });

  it("buckets weeks across a year change by ISO week", () => {
    const points = [
      { id: "mon-2020-w53", createdAt: at("2020-12-28T09:00:00Z") },
      { id: "sun-2020-w53", createdAt: at("2021-01-03T09:00:00Z") },
      { id: "mon-2021-w1", createdAt: at("2021-01-04T09:00:00Z") },
      { id: "sun-2020-w52", createdAt: at("2020-12-27T09:00:00Z") },
    ];
    assert.deepEqual([...selectKept(points, { weekly: 2 }).keep].sort(), [
      "mon-2021-w1",
      "sun-2020-w53",
    ]);
    assert.deepEqual(selectKept(points, { weekly: 3 }).prune, ["mon-2020-w53"]);
  });

  it("orders points made at the same instant by id, and reads unsorted input", () => {
    const points = [
      { id: "a", createdAt: 1000 },
      { id: "c", createdAt: 1000 },
      { id: "b", createdAt: 1000 },
    ];
    assert.deepEqual([...selectKept(points, { last: 1 }).keep], ["c"]);
    assert.deepEqual(selectKept(points, { hourly: 5 }).prune, ["b", "a"]);
    const shuffled = [...hourly].sort((x, y) => (x.id.slice(-1) < y.id.slice(-1) ? -1 : 1));
    const policy = { hourly: 5, daily: 3, weekly: 2, monthly: 1, last: 7 };
    assert.deepEqual(
      [...selectKept(shuffled, policy).keep].sort(),
      [...selectKept(hourly, policy).keep].sort(),
    );
    assert.deepEqual(selectKept(shuffled, policy).prune, selectKept(hourly, policy).prune);
  });

  it("keeps nothing of nothing, and prunes nothing under a policy that keeps nothing", () => {
    assert.deepEqual(selectKept([], { daily: 7 }), { keep: new Set(), prune: [] });
    const { keep, prune } = selectKept(hourly.slice(0, 5), { daily: 0 });
    assert.equal(keep.size, 5);
    assert.deepEqual(prune, []);
  });

  it("holds its properties on random points and policies", () => {
    const next = random(16);
    const rules = ["hourly", "daily", "weekly", "monthly"] as const;
    for (let round = 0; round < 200; round++) {
      const count = Math.floor(next() * 60);
      const span = [HOUR, DAY, 30 * DAY, 400 * DAY][round % 4] ?? DAY;
      const points: KeepPoint[] = Array.from({ length: count }, (_, i) => ({
        id: `r${String(i)}`,
        createdAt: at("2024-12-01T00:00:00Z") + Math.floor(next() * span),
      }));
      const policy: KeepPolicy = { last: Math.floor(next() * 3) };
      for (const rule of rules) if (next() < 0.6) policy[rule] = Math.floor(next() * 6);
      if (Object.values(policy).every((n) => n === 0)) policy.daily = 1;
      const { keep, prune } = selectKept(points, policy);

      // A partition of the input.
      assert.equal(keep.size + prune.length, points.length);
      assert.ok(prune.every((id) => !keep.has(id)));
      // The newest point is always kept.
      const newestFirst = [...points].sort(
        (a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1),
      );
      if (newestFirst[0]) assert.ok(keep.has(newestFirst[0].id));
      // Nothing more than the rules ask for.
      const asked = Object.values(policy).reduce((sum, n) => sum + n, 0);
      assert.ok(keep.size <= asked);
      // `last`: the newest N.
      for (const point of newestFirst.slice(0, policy.last ?? 0)) assert.ok(keep.has(point.id));
      // Each period rule: the newest point of each of the newest N periods that have points.
      for (const rule of rules) {
        const newestOfPeriod = new Map<string, KeepPoint>();
        for (const point of newestFirst) {
          const period = periodOf(rule, point.createdAt);
          if (!newestOfPeriod.has(period)) newestOfPeriod.set(period, point);
        }
        const periods = [...newestOfPeriod.values()].slice(0, policy[rule] ?? 0);
        for (const point of periods) assert.ok(keep.has(point.id), `${rule} keeps ${point.id}`);
      }
      // Every kept point is the newest of its period for some rule, or among the newest `last`.
      const lastIds = new Set(newestFirst.slice(0, policy.last ?? 0).map((p) => p.id));
      for (const id of keep) {
        const point = points.find((p) => p.id === id);
        assert.ok(point);
        const newestInSome = rules.some(
          (rule) =>
            (policy[rule] ?? 0) > 0 &&
            newestFirst.find(
              (p) => periodOf(rule, p.createdAt) === periodOf(rule, point.createdAt),
            ) === point,
        );
        assert.ok(newestInSome || lastIds.has(id), `${id} is kept for a reason`);
      }
    }
  });
});
