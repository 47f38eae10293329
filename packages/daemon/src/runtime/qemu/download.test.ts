import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { downloadUrlProblem, parseContentRange } from "./download.js";

describe("VM image download URLs", () => {
  it("accepts plain http and https URLs", () => {
    assert.equal(downloadUrlProblem("https://example.org/images/debian.qcow2"), undefined);
    assert.equal(downloadUrlProblem("http://192.0.2.1:8080/a.img?x=1"), undefined);
  });

  it("refuses other schemes, credentials, control characters and spaces", () => {
    for (const [url, problem] of [
      ["file:///etc/shadow", /not an http\(s\) URL/],
      ["ftp://example.org/a.img", /not an http\(s\) URL/],
      ["https://user:pw@example.org/a.img", /user name or password/],
      ["https://example.org/a\u0000.img", /control characters/],
      ["https://example.org/a\n.img", /control characters/],
      ["https://example.org/a b.img", /spaces/],
      ["not a url", /spaces/],
      ["nourl", /is not a URL/],
      [`https://example.org/${"a".repeat(5000)}`, /longer than/],
    ] as const) {
      assert.match(downloadUrlProblem(url) ?? "", problem, url);
    }
  });
});

describe("Content-Range", () => {
  it("reads start, end and total", () => {
    assert.deepEqual(parseContentRange("bytes 100-199/200"), { start: 100, end: 199, total: 200 });
    assert.deepEqual(parseContentRange("bytes 0-0/*"), { start: 0, end: 0, total: null });
  });

  it("refuses malformed or inconsistent ranges", () => {
    for (const header of [
      undefined,
      "",
      "bytes */200",
      "bytes 100-99/200",
      "bytes 100-200/200",
      "items 0-1/2",
      "bytes -1-5/10",
      "bytes 1-2/3 junk",
      "bytes 12345678901234567-12345678901234568/*",
    ]) {
      assert.equal(parseContentRange(header), undefined, String(header));
    }
  });
});
