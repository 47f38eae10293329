import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { newcArchive, type NewcEntry } from "./newc.js";

/** A newc header as text: magic and thirteen 8-digit hex fields. */
function header(fields: number[]): string {
  return `070701${fields.map((field) => field.toString(16).padStart(8, "0")).join("")}`;
}

describe("newcArchive", () => {
  it("writes headers, names and data padded to 4 bytes, and the trailer", () => {
    const archive = newcArchive([
      { type: "directory", path: "a" },
      { type: "file", path: "a/b", data: "hi", mode: 0o755 },
    ]);
    const expected =
      // ino mode uid gid nlink mtime size devmajor devminor rdevmajor rdevminor namesize check
      header([1, 0o040755, 0, 0, 2, 0, 0, 0, 0, 0, 0, 2, 0]) +
      "a\0" + // 110 + 2 bytes: aligned
      header([2, 0o100755, 0, 0, 1, 0, 2, 0, 0, 0, 0, 4, 0]) +
      "a/b\0\0\0" + // 110 + 4, padded to 116
      "hi\0\0" +
      header([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0]) +
      "TRAILER!!!\0\0\0\0";
    assert.equal(archive.toString("latin1"), expected);
  });

  it("stores a symlink's target as its data and a device's numbers in rdev", () => {
    const archive = newcArchive([
      { type: "symlink", path: "sh", target: "busybox" },
      { type: "character-device", path: "console", major: 5, minor: 1 },
    ]).toString("latin1");
    assert.ok(
      archive.startsWith(
        header([1, 0o120777, 0, 0, 1, 0, 7, 0, 0, 0, 0, 3, 0]) + "sh\0\0\0\0busybox\0",
      ),
    );
    const device = header([2, 0o020600, 0, 0, 1, 0, 0, 0, 0, 5, 1, 8, 0]) + "console\0\0\0";
    assert.ok(archive.includes(device), "the device's header");
  });

  it("keeps binary data as it is", () => {
    const data = Uint8Array.from([0, 255, 10, 13, 0x80]);
    const archive = newcArchive([{ type: "file", path: "x", data }]);
    const start = 110 + 2; // "x\0": no padding
    assert.deepEqual([...archive.subarray(start, start + data.length)], [...data]);
  });

  it("refuses paths that escape, are absolute, repeat, or come before their directory", () => {
    const bad: NewcEntry[][] = [
      [{ type: "file", path: "/etc/passwd", data: "" }],
      [{ type: "file", path: "../x", data: "" }],
      [
        { type: "directory", path: "a" },
        { type: "file", path: "a/../../x", data: "" },
      ],
      [
        { type: "directory", path: "a" },
        { type: "file", path: "a//b", data: "" },
      ],
      [{ type: "file", path: "./x", data: "" }],
      [{ type: "file", path: "", data: "" }],
      [{ type: "file", path: "x\ny", data: "" }],
      [{ type: "file", path: "TRAILER!!!", data: "" }],
      [{ type: "file", path: "a/b", data: "" }],
      [
        { type: "file", path: "x", data: "" },
        { type: "file", path: "x", data: "" },
      ],
      [
        { type: "file", path: "x", data: "" },
        { type: "file", path: "x/y", data: "" },
      ],
      [{ type: "symlink", path: "x", target: "" }],
      [{ type: "symlink", path: "x", target: "a\0b" }],
      [{ type: "file", path: "x", data: "", mode: 0o10000 }],
      [{ type: "character-device", path: "c", major: -1, minor: 0 }],
    ];
    for (const entries of bad) {
      assert.throws(() => newcArchive(entries), /^Error: cpio: /, JSON.stringify(entries));
    }
  });
});
