import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { containsSecret, redact, redactError, redactText, redactUrl } from "./redact.js";

describe("redaction", () => {
  it("takes credentials, query and fragment out of a URL, keeping where it points", () => {
    assert.equal(
      redactUrl("https://bob:p@ss@host.example:8443/x.git?token=t&a=b#frag"),
      "https://[redacted]@host.example:8443/x.git?[redacted]#[redacted]",
    );
    assert.equal(redactUrl("http://u@h/"), "http://[redacted]@h/");
    assert.equal(redactUrl("http://h?x=1"), "http://h?[redacted]");
    assert.equal(redactUrl("https://host.example/x.git"), "https://host.example/x.git");
  });

  it("redacts every URL in a text and leaves the rest as written", () => {
    assert.equal(
      redactText(
        "seed volume src from http://git:hunter2@127.0.0.1:9/r.git?sig=abc: clone failed, see https://docs.example/x",
      ),
      "seed volume src from http://[redacted]@127.0.0.1:9/r.git?[redacted]: clone failed, see https://docs.example/x",
    );
    assert.equal(redactText("no URL here: user@host"), "no URL here: user@host");
  });

  it("replaces secret values, as written and percent-encoded, in one pass", () => {
    const secrets = ["s3cr3t/&pw", "red"];
    assert.equal(
      redactText('run post_update "echo s3cr3t/&pw" exited with 1: s3cr3t%2F%26pw', secrets),
      'run post_update "echo [redacted]" exited with 1: [redacted]',
    );
    // A secret that is part of the marker is not replaced inside it.
    assert.equal(redactText("red and blue", secrets), "[redacted] and blue");
    assert.equal(redactText("nothing", [""]), "nothing");
    assert.equal(containsSecret("postgresql://u:s3cr3t%2F%26pw@db/x", secrets), true);
    assert.equal(containsSecret("https://db.home/", secrets), false);
    assert.equal(containsSecret("anything", []), false);
  });

  it("redacts secret-looking keys at any depth and URLs in every string", () => {
    assert.deepEqual(
      redact({
        body: {
          name: "family",
          url: "https://alice:pw@git.example/r.git",
          password: "p",
          nested: [{ apiToken: "t" }, "ssh hunter2"],
        },
        secretless: "",
      }),
      {
        body: {
          name: "family",
          url: "https://[redacted]@git.example/r.git",
          password: "[redacted]",
          nested: [{ apiToken: "[redacted]" }, "ssh hunter2"],
        },
        secretless: "",
      },
    );
    assert.deepEqual(redact({ note: "ssh hunter2" }, ["hunter2"]), { note: "ssh [redacted]" });
  });

  it("redacts an error's message and issues, keeping its code and dropping the cause", () => {
    const cause = new Error("secret-value in the cause");
    const error = redactError(
      new TownError("io", 'install x: post_update "echo secret-value" exited with 2', {
        cause,
        issues: [{ field: "f", message: "was secret-value" }],
        retryAfter: 5,
      }),
      ["secret-value"],
    );
    assert.equal(error.code, "io");
    assert.equal(error.message, 'install x: post_update "echo [redacted]" exited with 2');
    assert.deepEqual(error.issues, [{ field: "f", message: "was [redacted]" }]);
    assert.equal(error.retryAfter, 5);
    assert.equal(error.cause, undefined);
    const plain = redactError(new Error("fetch https://u:p@h/x failed"), []);
    assert.equal(plain.code, "internal");
    assert.equal(plain.message, "fetch https://[redacted]@h/x failed");
  });
});
