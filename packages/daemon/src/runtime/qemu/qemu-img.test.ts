import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { assertSelfContained, parseImageInfo } from "./qemu-img.js";

/** `qemu-img info --output=json` of a qcow2 as qemu-img 7.2 prints it, with `extra` merged in. */
function qcow2Info(
  extra: Record<string, unknown> = {},
  data: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    "virtual-size": 67108864,
    filename: "/store/disk.qcow2",
    "cluster-size": 65536,
    format: "qcow2",
    "actual-size": 200704,
    "format-specific": {
      type: "qcow2",
      data: { compat: "1.1", "refcount-bits": 16, corrupt: false, ...data },
    },
    "dirty-flag": false,
    ...extra,
  });
}

const refused = (pattern: RegExp) => (error: unknown) =>
  error instanceof TownError && error.code === "invalid_argument" && pattern.test(error.message);

describe("qemu-img info", () => {
  it("reads format, sizes and flags", () => {
    assert.deepEqual(parseImageInfo(qcow2Info(), "/store/disk.qcow2"), {
      format: "qcow2",
      virtualSize: 67108864,
      actualSize: 200704,
      backingFile: null,
      externalFiles: [],
      dirty: false,
      corrupt: false,
    });
    const flagged = parseImageInfo(
      qcow2Info({ "dirty-flag": true }, { corrupt: true }),
      "/store/disk.qcow2",
    );
    assert.equal(flagged.dirty, true);
    assert.equal(flagged.corrupt, true);
  });

  it("names every other file an image would open", () => {
    const backed = parseImageInfo(
      qcow2Info({ "backing-filename": "/etc/shadow", "backing-filename-format": "raw" }),
      "/x",
    );
    assert.equal(backed.backingFile, "/etc/shadow");
    assert.deepEqual(backed.externalFiles, ["/etc/shadow"]);
    const dataFile = parseImageInfo(qcow2Info({}, { "data-file": "/dev/sda" }), "/x");
    assert.deepEqual(dataFile.externalFiles, ["/dev/sda"]);
    const vmdk = JSON.stringify({
      "virtual-size": 4096,
      format: "vmdk",
      "format-specific": {
        type: "vmdk",
        data: {
          extents: [
            { filename: "/dl/image.vmdk" },
            { filename: "/etc/passwd" },
            { format: "FLAT" },
          ],
        },
      },
    });
    assert.deepEqual(parseImageInfo(vmdk, "/dl/image.vmdk").externalFiles, [
      "/etc/passwd",
      "(unnamed extent)",
    ]);
  });

  it("refuses an answer without format or size", () => {
    for (const text of ["", "[]", '{"format":"raw"}', '{"format":"raw","virtual-size":-1}']) {
      assert.throws(() => parseImageInfo(text, "/x"), refused(/\/x/), text);
    }
  });
});

describe("self-contained images", () => {
  const info = parseImageInfo(qcow2Info(), "/x");

  it("takes a plain image of an accepted format", () => {
    assertSelfContained(info, "the image");
    assertSelfContained({ ...info, format: "vpc" }, "the image");
  });

  it("refuses other formats, other files and the corrupt bit", () => {
    assert.throws(
      () => {
        assertSelfContained({ ...info, format: "luks" }, "the image");
      },
      refused(/"luks" image; accepted are qcow2, raw/),
    );
    assert.throws(
      () => {
        assertSelfContained({ ...info, externalFiles: ["/etc/shadow"] }, "the image");
      },
      refused(/refers to other files \("\/etc\/shadow"\)/),
    );
    assert.throws(
      () => {
        assertSelfContained({ ...info, corrupt: true }, "the image");
      },
      refused(/marked corrupt/),
    );
  });
});
