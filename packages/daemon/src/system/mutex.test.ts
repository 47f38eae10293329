import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { KeyedLock, Mutex } from "./mutex.js";

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
    assert.equal(lock.size, 0);
  });

  it("gives up waiting when the signal aborts, keeping the order of the others", async () => {
    const lock = new KeyedLock();
    const release = await lock.acquire("dir");
    const controller = new AbortController();
    const waiting = lock.acquire("dir", controller.signal);
    const log: string[] = [];
    const behind = lock.run(["dir"], () => {
      log.push("behind");
      return Promise.resolve();
    });
    controller.abort(new Error("timed out"));
    await assert.rejects(waiting, /timed out/);
    await tick();
    assert.deepEqual(log, [], "the holder still holds the key");
    release();
    await behind;
    assert.deepEqual(log, ["behind"]);
    assert.equal(lock.size, 0);
    await assert.rejects(lock.acquire("dir", controller.signal), /timed out/);
    assert.equal(lock.size, 0);
  });

  it("holds the key until release, which may come after the work", async () => {
    const lock = new KeyedLock();
    const release = await lock.acquire("dir");
    let second = false;
    const next = lock.run(["dir"], () => {
      second = true;
      return Promise.resolve();
    });
    await tick();
    assert.equal(second, false);
    release();
    release();
    await next;
    assert.equal(second, true);
  });
});

describe("KeyedLock.idle", () => {
  it("resolves once every key is free, also of work queued meanwhile", async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const first = lock.run(["a"], async () => {
      await tick();
      void lock.run(["b"], async () => {
        await tick();
        log.push("b");
      });
      log.push("a");
    });
    await lock.idle();
    assert.deepEqual(log, ["a", "b"]);
    await first;
    assert.equal(lock.size, 0);
    await lock.idle();
  });
});

describe("Mutex", () => {
  it("runs calls one at a time in call order, past failures, and says when idle", async () => {
    const mutex = new Mutex();
    const log: string[] = [];
    const job = (name: string, fail = false) =>
      mutex.run(async () => {
        log.push(`${name} start`);
        await tick();
        log.push(`${name} end`);
        if (fail) throw new Error(name);
      });
    const a = job("a", true);
    const b = job("b");
    let idle = false;
    void mutex.idle().then(() => (idle = true));
    await assert.rejects(a, /a/);
    assert.equal(idle, false);
    await b;
    await tick();
    assert.equal(idle, true);
    assert.deepEqual(log, ["a start", "a end", "b start", "b end"]);
  });
});
