import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareVersions, latestVersion, pickLatest } from "./version.js";

describe("compareVersions", () => {
  const ordered: [string, string][] = [
    ["2.10", "2.9"],
    ["1.0.1", "1.0"],
    ["1.0", "1"],
    ["10", "9"],
    ["1.b", "1.a"],
    ["1.a", "1.10"], // "a" vs "10": not both integers, so plain string order
    ["1.0-beta", "1.0"],
    ["99999999999999999999.1", "99999999999999999998.9"],
  ];
  for (const [high, low] of ordered) {
    it(`${high} > ${low}`, () => {
      assert.equal(compareVersions(high, low), 1);
      assert.equal(compareVersions(low, high), -1);
    });
  }
  it("treats equal versions as equal, leading zeros as the same number", () => {
    assert.equal(compareVersions("1.2.3", "1.2.3"), 0);
    assert.equal(compareVersions("1.02", "1.2"), 0);
  });
  it("sorts a list as the spec says", () => {
    const sorted = ["1", "1.0.1", "2.9", "1.0", "2.10", "0.9"].sort(compareVersions);
    assert.deepEqual(sorted, ["0.9", "1", "1.0", "1.0.1", "2.9", "2.10"]);
  });
});

describe("latest", () => {
  it("picks the highest version", () => {
    assert.equal(latestVersion(["1.9", "1.10", "1.2"]), "1.10");
    assert.equal(latestVersion([]), undefined);
  });
  it("gives ties to the repository listed first", () => {
    const best = pickLatest([
      { repoIndex: 1, version: "2.0", repo: "second" },
      { repoIndex: 0, version: "2.0", repo: "first" },
      { repoIndex: 2, version: "1.9", repo: "third" },
    ]);
    assert.equal(best?.repo, "first");
  });
  it("prefers a higher version in a later repository", () => {
    const best = pickLatest([
      { repoIndex: 0, version: "1.0", repo: "first" },
      { repoIndex: 1, version: "1.0.1", repo: "second" },
    ]);
    assert.equal(best?.repo, "second");
  });
});
