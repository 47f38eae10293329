import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { KeyedLock } from "./lock.js";

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("KeyedLock", () => {
  it("runs work on the same key one at a time, in order", async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const job = (name: string) =>
      lock.run(["volume"], async () => {
        log.push(`${name} start`);
        await tick();
        log.push(`${name} end`);
      });
    await Promise.all([job("a"), job("b"), job("c")]);
    assert.deepEqual(log, ["a start", "a end", "b start", "b end", "c start", "c end"]);
  });

  it("runs work on other keys alongside, and takes several keys without deadlock", async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const job = (name: string, keys: string[]) =>
      lock.run(keys, async () => {
        log.push(`${name} start`);
        await tick();
        log.push(`${name} end`);
      });
    await Promise.all([job("x", ["a"]), job("y", ["b"])]);
    assert.deepEqual(log.slice(0, 2), ["x start", "y start"]);
    log.length = 0;
    await Promise.all([job("ab", ["a", "b"]), job("ba", ["b", "a"])]);
    assert.deepEqual(log, ["ab start", "ab end", "ba start", "ba end"]);
  });

  it("releases the key when work fails", async () => {
    const lock = new KeyedLock();
    await assert.rejects(
      lock.run(["k"], () => Promise.reject(new Error("boom"))),
      /boom/,
    );
    assert.equal(await lock.run(["k"], () => Promise.resolve("next")), "next");
  });
});
