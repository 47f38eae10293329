import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TownError } from "@townos/format";
import { parseQgroupShow } from "./btrfs.js";

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
