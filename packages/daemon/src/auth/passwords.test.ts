import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { Passwords } from "./passwords.js";

describe("password hashing", () => {
  it("runs a bounded number at once, queues a few and refuses the rest", async () => {
    const passwords = new Passwords({ concurrency: 1, queue: 1 });
    const results = await Promise.allSettled([
      passwords.hash("first-password"),
      passwords.hash("second-password"),
      passwords.hash("third-password"),
    ]);
    assert.deepEqual(
      results.map((result) => result.status),
      ["fulfilled", "fulfilled", "rejected"],
    );
    const refused = results[2];
    assert.ok(refused.status === "rejected");
    assert.ok(refused.reason instanceof TownError);
    assert.equal(refused.reason.code, "rate_limited");
    assert.equal(refused.reason.retryAfter, 1);
    assert.equal(passwords.started, 2);
    // The slots are free again afterwards.
    const first = results[0];
    assert.ok(first.status === "fulfilled");
    assert.equal(await passwords.verify(first.value, "first-password"), true);
    assert.equal(await passwords.verify(first.value, "wrong-password"), false);
    assert.equal(passwords.started, 4);
  });

  it("refuses passwords out of bounds before any argon2 work", async () => {
    const passwords = new Passwords();
    await assert.rejects(passwords.hash("short"), { code: "invalid_argument" });
    assert.equal(await passwords.verify("$argon2id$x", "p".repeat(2000)), false);
    assert.equal(passwords.started, 0);
  });
});
