import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { upstreamFixtures, upstreamMissing } from "../../format/test/support.js";
import { runTownCaptured, type TownRun } from "../test/run-town.js";

const root = join(import.meta.dirname, "../../..");
const examples = join(root, "examples/repository");
const invalid = join(root, "packages/format/test/fixtures/invalid");

function town(...argv: string[]): Promise<TownRun> {
  return runTownCaptured(argv, { cwd: root });
}

describe("town package lint", () => {
  it("passes the bundled examples", async () => {
    const result = await town("package", "lint", examples);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^4 package files, 0 problems$/m);
    assert.equal(result.code, 0);
  });

  it("prints path:line:col: message for every problem and fails", async () => {
    const result = await town("package", "lint", invalid);
    assert.equal(result.code, 1);
    assert.match(
      result.stdout,
      /^packages\/format\/test\/fixtures\/invalid\/packages\/template-escape\/1\.0\.yaml:8:11: templates\.conf\.path: must not contain '\.\.'$/m,
    );
    assert.match(
      result.stdout,
      /shell-image\/1\.0\.yaml:2:8: image: "nginx;rm -rf \/" is not a valid image reference$/m,
    );
  });

  it("accepts an oauth question in the object form (plex 3.0's shape)", async () => {
    const result = await town("package", "lint", join(root, "packages/format/test/fixtures/oauth"));
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^1 package files, 0 problems$/m);
    assert.equal(result.code, 0);
  });

  it("passes the upstream Town OS packages", { skip: upstreamMissing }, async () => {
    const result = await town("package", "lint", upstreamFixtures);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^14 package files, 0 problems$/m);
    assert.equal(result.code, 0);
  });

  it("fails on a directory without packages only if it has problems", async () => {
    const result = await town("package", "lint", join(root, "packages/cli"));
    assert.equal(result.code, 0);
    assert.match(result.stderr, /0 package files/);
  });
});

describe("town package compile", () => {
  it("prints the plan as JSON with both marker stages applied", async () => {
    const result = await town(
      "package",
      "compile",
      examples,
      "guestbook@1.0",
      "--set",
      "feedport=18080",
      "--set",
      "kvpass=s3cr@t",
      "--set",
      "motto=Be kind",
      "--internal-ip",
      "192.0.2.10",
      "--json",
    );
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    const plan = JSON.parse(result.stdout) as Record<string, unknown> & {
      environment: Record<string, string>;
      dependencies: { key: string; hostname: string; environment: Record<string, string> }[];
      notes: { label: string; value: string }[];
      files: { content: string }[];
    };
    assert.equal(plan["name"], "guestbook");
    assert.equal(plan["repo"], "default");
    assert.equal(
      plan.environment["GUESTBOOK_STORE"],
      "kv://:s3cr@t@town-default--guestbook--store:7379/book",
    );
    assert.equal(plan.dependencies[0]?.environment["KV_PASSWORD"], "s3cr@t");
    assert.deepEqual(
      plan.notes.find((n) => n.label === "Feed"),
      { label: "Feed", value: "http://192.0.2.10:18080/feed", type: "url" },
    );
    assert.match(plan.files[0]?.content ?? "", /<p class="motto">Be kind<\/p>/);
  });

  it("honours --repo and --tld in names", async () => {
    const result = await town(
      "package",
      "compile",
      examples,
      "hello@1.0",
      "--repo",
      "family",
      "--tld",
      "lan",
      "--json",
    );
    const plan = JSON.parse(result.stdout) as { dnsName: string; ingress: unknown };
    assert.equal(plan.dnsName, "hello.family.lan");
    assert.deepEqual(plan.ingress, { host: "hello.family.lan", port: 8080 });
  });

  it("exits 2 with every problem as JSON on bad answers", async () => {
    const result = await town(
      "package",
      "compile",
      examples,
      "guestbook@1.0",
      "--set",
      "feedport=99999",
      "--set",
      "retention=forever",
      "--set",
      "colour=red",
      "--json",
    );
    assert.equal(result.code, 2);
    const body = JSON.parse(result.stdout) as {
      errors: { question?: string; field?: string; message: string }[];
    };
    assert.deepEqual(body.errors.map((e) => e.question).sort(), [
      "colour",
      "feedport",
      "retention",
    ]);
  });

  it("exits 2 for a package that is not there", async () => {
    const result = await town("package", "compile", examples, "nope@1.0", "--json");
    assert.equal(result.code, 2);
    assert.match(result.stdout, /nope@1\.0 is not in/);
  });

  it("prints a readable summary without --json", async () => {
    const result = await town("package", "compile", examples, "hello");
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^default\/hello@1\.1 \(container\) as hello\.default\.home$/m);
    assert.match(result.stdout, /https:\/\/hello\.default\.home\/ → container port 8080/);
  });
});
