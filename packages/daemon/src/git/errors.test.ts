import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Errors } from "isomorphic-git";
import { TownError } from "@townos/format";
import {
  Aborted,
  DownloadLimit,
  emptyRepository,
  gitError,
  ObjectTooLarge,
  Timeout,
  type GitErrorContext,
} from "./errors.js";

const anonymous: GitErrorContext = {
  display: "https://git.example/r.git",
  branch: undefined,
  credentials: undefined,
};
const signedIn: GitErrorContext = {
  ...anonymous,
  branch: "stable",
  credentials: { username: "alice", password: "s3cret" },
};

function mapped(error: unknown, ctx: GitErrorContext, operation: "clone" | "fetch" | "read") {
  const result = gitError(error, ctx, operation);
  return { code: result.code, message: result.message };
}

describe("gitError", () => {
  it("says what an HTTP status means for the credentials given", () => {
    assert.deepEqual(mapped(new Errors.HttpError(401, "Unauthorized", ""), anonymous, "clone"), {
      code: "io",
      message:
        "git: clone https://git.example/r.git: HTTP 401 Unauthorized: the repository needs credentials",
    });
    assert.deepEqual(mapped(new Errors.HttpError(403, "Forbidden", ""), signedIn, "fetch"), {
      code: "io",
      message:
        "git: fetch https://git.example/r.git: HTTP 403 Forbidden: the credentials were rejected",
    });
    assert.equal(
      mapped(new Errors.HttpError(404, "Not Found", ""), anonymous, "clone").message,
      "git: clone https://git.example/r.git: HTTP 404 Not Found",
    );
    assert.match(
      mapped(new Errors.UserCanceledError(), signedIn, "clone").message,
      /: HTTP 401 Unauthorized: the credentials were rejected$/,
    );
  });

  it("names a server that is not git, and a missing branch", () => {
    assert.match(
      mapped(new Errors.SmartHttpError("<html>", ""), anonymous, "clone").message,
      /: the server did not answer as a git smart-HTTP server/,
    );
    assert.deepEqual(mapped(new Errors.NotFoundError("stable"), signedIn, "clone"), {
      code: "not_found",
      message: 'git: clone https://git.example/r.git: branch "stable" not found',
    });
    assert.deepEqual(mapped(new Errors.NotFoundError("HEAD"), anonymous, "fetch"), {
      code: "not_found",
      message: "git: fetch https://git.example/r.git: the remote default branch was not found",
    });
    // A local clone missing an object is broken, not a missing branch.
    assert.equal(mapped(new Errors.NotFoundError("abc"), anonymous, "read").code, "io");
  });

  it("makes limits invalid arguments, and times and aborts io", () => {
    assert.deepEqual(mapped(new DownloadLimit(2000), anonymous, "clone"), {
      code: "invalid_argument",
      message: "git: clone https://git.example/r.git: the download is larger than 2000 bytes",
    });
    assert.equal(
      mapped(new ObjectTooLarge("an object larger than 10 bytes"), anonymous, "fetch").code,
      "invalid_argument",
    );
    assert.deepEqual(mapped(new Timeout(300), anonymous, "clone"), {
      code: "io",
      message: "git: clone https://git.example/r.git: timed out after 300 ms",
    });
    assert.match(mapped(new Timeout(120_000), anonymous, "clone").message, /after 120 s$/);
    assert.match(mapped(new Aborted(), anonymous, "clone").message, /: aborted$/);
  });

  it("never passes on credentials, URLs' secrets or control characters", () => {
    const basic = Buffer.from("alice:s3cret").toString("base64");
    const leaky = Object.assign(
      new Error(
        `connect failed for https://alice:s3cret@git.example/r.git?token=t0k\n(${basic}) s3cret`,
      ),
      { code: "ECONNRESET" },
    );
    const { code, message } = mapped(leaky, signedIn, "clone");
    assert.equal(code, "io");
    assert.match(message, /^git: clone https:\/\/git\.example\/r\.git: ECONNRESET: connect failed/);
    for (const secret of ["s3cret", basic, "t0k", "\n"])
      assert.ok(!message.includes(secret), message);
    const long = mapped(new Error("x".repeat(5000)), anonymous, "clone").message;
    assert.ok(long.length < 400, `${long.length} characters`);
  });

  it("passes TownErrors on unchanged and keeps no cause", () => {
    const own = new TownError("conflict", "mine");
    assert.equal(gitError(own, anonymous, "clone"), own);
    assert.equal(gitError(new Error("x"), anonymous, "clone").cause, undefined);
  });
});

describe("emptyRepository", () => {
  it("names the branch asked for, or the empty repository", () => {
    assert.equal(
      emptyRepository(anonymous, "clone").message,
      "git: clone https://git.example/r.git: the repository has no commits",
    );
    const branch = emptyRepository(signedIn, "fetch");
    assert.equal(branch.code, "not_found");
    assert.equal(branch.message, 'git: fetch https://git.example/r.git: no branch "stable"');
  });
});
