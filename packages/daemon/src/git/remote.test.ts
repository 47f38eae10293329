import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { expectTownError } from "../../../format/test/support.js";
import { checkBranchName, credentialsFor, parseRemoteUrl, redactSecrets } from "./remote.js";

/** The TownError `work` throws. */
function thrown(work: () => unknown, code: "invalid_argument", pattern: RegExp) {
  return expectTownError(Promise.resolve().then(work), code, pattern);
}

describe("parseRemoteUrl", () => {
  it("takes credentials out of the URL git talks to and the one shown", () => {
    const remote = parseRemoteUrl(
      "https://al%40ice:p%40ss@git.example/team/repo.git/?token=t#frag",
    );
    assert.equal(remote.url, "https://git.example/team/repo.git?token=t");
    assert.equal(remote.display, "https://git.example/team/repo.git");
    assert.deepEqual(remote.credentials, { username: "al@ice", password: "p@ss" });
  });

  it("has no credentials when the URL holds none", () => {
    const remote = parseRemoteUrl("http://127.0.0.1:8080/r.git");
    assert.equal(remote.url, "http://127.0.0.1:8080/r.git");
    assert.equal(remote.credentials, undefined);
  });

  it("refuses other schemes, and never echoes a URL that does not parse", async () => {
    for (const url of ["ssh://git@example.com/r.git", "file:///srv/r.git", "git://example.com/r"]) {
      await thrown(() => parseRemoteUrl(url), "invalid_argument", /only http:\/\/ and https:\/\//);
    }
    const error = await thrown(
      () => parseRemoteUrl("https://bob:hunter2@ho st/x"),
      "invalid_argument",
      /^git: the repository URL is not a valid URL$/,
    );
    assert.ok(!error.message.includes("hunter"));
  });
});

describe("credentialsFor", () => {
  const remote = parseRemoteUrl("https://alice:from-url@host/r.git");

  it("takes a given username or password over the URL's", () => {
    assert.deepEqual(credentialsFor(remote, "bob", undefined), {
      username: "bob",
      password: "from-url",
    });
    assert.deepEqual(credentialsFor(remote, undefined, "given"), {
      username: "alice",
      password: "given",
    });
  });

  it("is undefined without any, and fills in an empty half", () => {
    const plain = parseRemoteUrl("https://host/r.git");
    assert.equal(credentialsFor(plain, undefined, undefined), undefined);
    assert.deepEqual(credentialsFor(plain, undefined, "token"), {
      username: "",
      password: "token",
    });
  });
});

describe("checkBranchName", () => {
  it("takes ordinary names", () => {
    for (const name of ["main", "release/1.2", "feature_x-y.z"]) checkBranchName(name);
  });

  it("refuses options, path tricks, lock files, odd characters and very long names", async () => {
    for (const name of [
      "-x",
      "/a",
      "a/",
      "a..b",
      "a//b",
      "x.lock",
      "a b",
      "a\nb",
      "",
      "a".repeat(201),
    ]) {
      await thrown(
        () => {
          checkBranchName(name);
        },
        "invalid_argument",
        /is not a valid branch$/,
      );
    }
  });

  it("shows control characters escaped", async () => {
    const error = await thrown(
      () => {
        checkBranchName("a\u001b[31m");
      },
      "invalid_argument",
      /is not a valid branch$/,
    );
    assert.ok(!error.message.includes("\u001b"), error.message);
  });
});

describe("redactSecrets", () => {
  const credentials = { username: "alice", password: "s3cret" };

  it("removes the password as written, percent-encoded and inside basic auth", () => {
    const basic = Buffer.from("alice:s3cret").toString("base64");
    const text = redactSecrets(`auth s3cret, Authorization: Basic ${basic}`, credentials);
    assert.ok(!text.includes("s3cret"), text);
    assert.ok(!text.includes(basic), text);
    const encoded = redactSecrets("p%40ss in a query", { username: "u", password: "p@ss" });
    assert.ok(!encoded.includes("p%40ss"), encoded);
  });

  it("removes credentials and queries of URLs in the text, with or without known credentials", () => {
    for (const known of [credentials, undefined]) {
      const text = redactSecrets("GET https://bob:hunter2@host/r.git?token=abc failed", known);
      assert.ok(!text.includes("hunter2"), text);
      assert.ok(!text.includes("abc"), text);
      assert.match(text, /host\/r\.git/);
    }
  });
});
