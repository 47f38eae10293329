import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TownError } from "@townos/format";
import { parseBtrfsTime, parseCreationTime, parseQgroupShow, parseSnapshotList } from "./btrfs.js";

describe("parseQgroupShow", () => {
  it("reads btrfs-progs 6.x output with limits and paths", () => {
    const text = [
      "Qgroupid    Referenced    Exclusive  Max referenced  Max exclusive   Path ",
      "--------    ----------    ---------  --------------  -------------   ---- ",
      "0/5              16384        16384            none           none   <toplevel>",
      "0/256         10469376        16384        10485760           none   volumes/pkg.a b",
      "1/100             4096         4096            none          65536   <0 member qgroups>",
      "",
    ].join("\n");
    assert.deepEqual(parseQgroupShow(text), [
      {
        level: 0,
        id: 5,
        referenced: 16384,
        exclusive: 16384,
        maxReferenced: null,
        maxExclusive: null,
      },
      {
        level: 0,
        id: 256,
        referenced: 10469376,
        exclusive: 16384,
        maxReferenced: 10485760,
        maxExclusive: null,
      },
      {
        level: 1,
        id: 100,
        referenced: 4096,
        exclusive: 4096,
        maxReferenced: null,
        maxExclusive: 65536,
      },
    ]);
  });

  it("reads the old column names, in another order, with extra columns", () => {
    const text = [
      "qgroupid         rfer         excl     max_excl     max_rfer parent     child",
      "--------         ----         ----     --------     -------- ------     -----",
      "0/257            8192         4096         none      1048576 ---        ---",
    ].join("\n");
    assert.deepEqual(parseQgroupShow(text), [
      {
        level: 0,
        id: 257,
        referenced: 8192,
        exclusive: 4096,
        maxReferenced: 1048576,
        maxExclusive: null,
      },
    ]);
  });

  it("treats absent limit columns as no limit", () => {
    const text = "qgroupid         rfer         excl\n--------  ----  ----\n0/5  100  200\n";
    assert.deepEqual(parseQgroupShow(text), [
      { level: 0, id: 5, referenced: 100, exclusive: 200, maxReferenced: null, maxExclusive: null },
    ]);
  });

  it("refuses output it does not understand", () => {
    for (const text of [
      "",
      "ERROR: can't list qgroups: quotas not enabled",
      "Qgroupid    Path\n0/5   <toplevel>",
      "Qgroupid    Referenced    Exclusive\n0/5   12.00KiB   12.00KiB",
      "Qgroupid    Referenced    Exclusive  Max referenced\n0/5   1   2   lots",
    ]) {
      assert.throws(
        () => parseQgroupShow(text),
        (error: unknown) => error instanceof TownError && error.code === "io",
        text,
      );
    }
  });
});

describe("btrfs times", () => {
  it("reads times with their offset, and as UTC without one", () => {
    assert.equal(
      parseBtrfsTime("2026-12-04 15:40:12 +0000")?.toISOString(),
      "2026-12-04T15:40:12.000Z",
    );
    assert.equal(
      parseBtrfsTime("2026-12-04 15:40:12 +0130")?.toISOString(),
      "2026-12-04T14:10:12.000Z",
    );
    assert.equal(
      parseBtrfsTime("2026-12-04 15:40:12 -0500")?.toISOString(),
      "2026-12-04T20:40:12.000Z",
    );
    assert.equal(
      parseBtrfsTime(" 2026-12-04 15:40:12\n")?.toISOString(),
      "2026-12-04T15:40:12.000Z",
    );
    for (const text of ["-", "", "2026-12-04", "2026-13-04 15:40:12", "2026-12-04 15:40:12 UTC"]) {
      assert.equal(parseBtrfsTime(text), undefined, text);
    }
  });

  it("reads the snapshots `subvolume list -s` prints, paths with spaces whole", () => {
    const text = [
      "ID 257 gen 9 cgen 9 top level 5 otime 2026-12-04 15:34:04 path snapshots/vol/s1",
      "ID 261 gen 12 cgen 12 top level 260 otime 2026-12-04 15:34:48 path sv/my otime x path/snapshots/v/a",
      "",
    ].join("\n");
    assert.deepEqual(parseSnapshotList(text), [
      { path: "snapshots/vol/s1", createdAt: new Date("2026-12-04T15:34:04Z") },
      {
        path: "sv/my otime x path/snapshots/v/a",
        createdAt: new Date("2026-12-04T15:34:48Z"),
      },
    ]);
    assert.deepEqual(parseSnapshotList(""), []);
    for (const text of [
      "ID 257 gen 9 top level 5 path snapshots/vol/s1",
      "ID 257 gen 9 cgen 9 top level 5 otime - path snapshots/vol/s1",
      "ERROR: can't access 'x'",
    ]) {
      assert.throws(
        () => parseSnapshotList(text),
        (error: unknown) => error instanceof TownError && error.code === "io",
        text,
      );
    }
  });

  it("reads the creation time `subvolume show` prints", () => {
    const text = [
      "storage/snapshots/vol/s1",
      "\tName: \t\t\ts1",
      "\tCreation time: \t\t2026-12-04 16:34:04 +0100",
      "\tSend time: \t\t2026-12-04 17:00:00 +0100",
    ].join("\n");
    assert.equal(parseCreationTime(text).toISOString(), "2026-12-04T15:34:04.000Z");
    assert.throws(
      () => parseCreationTime("\tCreation time: \t\t-\n"),
      (error: unknown) => error instanceof TownError && error.code === "io",
    );
  });
});
