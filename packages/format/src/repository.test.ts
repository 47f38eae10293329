import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  loadRepository,
  MAX_REPOSITORY_BYTES,
  MAX_REPOSITORY_FILES,
  PackageIndex,
} from "./repository.js";
import { readTree, repoRoot, upstreamFixtures, upstreamMissing } from "../test/support.js";

const invalidDir = join(repoRoot, "packages/format/test/fixtures/invalid");

describe("hostile and broken package fixtures", async () => {
  const repository = loadRepository(await readTree(invalidDir));
  const names = await readdir(join(invalidDir, "packages"));
  it("loads every file despite the errors of the others", () => {
    assert.equal(repository.packages.size, names.length);
    assert.ok(names.length >= 30);
  });
  for (const name of names) {
    it(`${name}: reports exactly the expected errors at their places`, async () => {
      const text = await readFile(join(invalidDir, "packages", name, "1.0.yaml"), "utf8");
      const expected = [...text.matchAll(/^# expect: (.*)$/gm)].map((m) => m[1] ?? "").sort();
      assert.ok(expected.length > 0, "the fixture states what it expects");
      const entry = repository.packages.get(name)?.get("1.0");
      assert.ok(entry, "the file is listed");
      assert.equal(entry.definition, undefined);
      const actual = entry.errors
        .map(
          (e) =>
            `${e.location?.line ?? 1}:${e.location?.col ?? 1} ${e.field ? `${e.field}: ` : ""}${e.message}`,
        )
        .sort();
      assert.equal(actual.length, expected.length, actual.join("\n"));
      expected.forEach((want, i) => {
        assert.ok(actual[i]?.startsWith(want), `expected "${want}", got "${actual[i] ?? ""}"`);
      });
    });
  }
});

describe("loadRepository", () => {
  it("reads only packages/<name>/<version>.yaml and featured.json", () => {
    const repository = loadRepository([
      { path: "packages/app/1.0.yaml", text: "image: app\n" },
      { path: "packages/app/2.10.yaml", text: "image: app\n" },
      { path: "packages/app/2.9.yaml", text: "image: app\n" },
      { path: "packages/app/notes.txt", text: "ignored" },
      { path: "packages/app/sub/3.0.yaml", text: "image: app\n" },
      { path: "README.yaml", text: "ignored: true" },
      { path: "featured.json", text: '["app", "ghost"]' },
    ]);
    assert.deepEqual([...(repository.packages.get("app")?.keys() ?? [])], ["2.10", "2.9", "1.0"]);
    assert.deepEqual(repository.featured, ["app", "ghost"]);
    assert.deepEqual(repository.problems, [
      { path: "featured.json", message: 'featured package "ghost" does not exist' },
    ]);
  });

  it("refuses a repository over the file count or the total bytes, before parsing", () => {
    const file = (i: number, text: string) => ({ path: `packages/app/1.${i}.yaml`, text });
    const many = Array.from({ length: MAX_REPOSITORY_FILES + 1 }, (_, i) => file(i, "image: a\n"));
    assert.throws(() => loadRepository(many), /more than 20000 package files/);
    const big = "#".repeat(1024 * 1024 - 1);
    const heavy = Array.from({ length: MAX_REPOSITORY_BYTES / (1024 * 1024) + 1 }, (_, i) =>
      file(i, `${big}\n`),
    );
    assert.throws(() => loadRepository(heavy), /more than the 16777216 allowed/);
    // Files that are not package files neither count nor load.
    const ignored = { path: "docs/huge.yaml", text: big.repeat(20) };
    assert.equal(loadRepository([ignored, file(0, "image: a\n")]).packages.size, 1);
  });

  it("reports a broken featured.json without failing the packages", () => {
    const repository = loadRepository([
      { path: "featured.json", text: "{not json" },
      { path: "packages/app/1.0.yaml", text: "image: app\n" },
    ]);
    assert.equal(repository.packages.size, 1);
    assert.match(repository.problems[0]?.message ?? "", /not valid JSON/);
  });

  it("finds the latest valid version, skipping broken files", () => {
    const repository = loadRepository([
      { path: "packages/app/1.0.yaml", text: "image: app\n" },
      { path: "packages/app/1.1.yaml", text: "image: [broken\n" },
    ]);
    const index = new PackageIndex([{ name: "default", repository }]);
    assert.equal(index.find({ repo: "default", name: "app" })?.version, "1.0");
    assert.equal(index.find({ repo: "default", name: "app", version: "1.1" }), undefined);
    assert.equal(index.find({ repo: "other", name: "app" }), undefined);
  });

  it("prefers the higher version across repositories, ties to the first listed", () => {
    const make = (version: string) =>
      loadRepository([{ path: `packages/app/${version}.yaml`, text: "image: app\n" }]);
    const tie = new PackageIndex([
      { name: "first", repository: make("1.0") },
      { name: "second", repository: make("1.0") },
    ]);
    assert.equal(tie.latest("app")?.repo, "first");
    const newer = new PackageIndex([
      { name: "first", repository: make("1.0") },
      { name: "second", repository: make("1.10") },
    ]);
    assert.equal(newer.latest("app")?.repo, "second");
  });
});

describe("the upstream Town OS packages", { skip: upstreamMissing }, async () => {
  const repository = upstreamMissing ? undefined : loadRepository(await readTree(upstreamFixtures));
  it("all load without errors", () => {
    assert.ok(repository);
    const errors = [...repository.packages.values()]
      .flatMap((versions) => [...versions.values()])
      .flatMap((entry) => entry.errors.map((e) => `${entry.path}: ${e.field ?? ""} ${e.message}`));
    assert.deepEqual(errors, []);
    assert.deepEqual(repository.problems, []);
    assert.equal(repository.packages.size, 9);
    assert.deepEqual(repository.featured, ["gitea", "immich", "vaultwarden"]);
  });
});
