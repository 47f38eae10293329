import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { collect } from "../../../test/async.js";
import type { LogLine } from "../workload.js";
import {
  cleanConsoleText,
  ConsoleLines,
  ConsoleLog,
  ConsoleRecorder,
  formatEntry,
  parseEntry,
} from "./console.js";

const texts = (lines: LogLine[]): string[] => lines.map((line) => line.text);
const running = (value: boolean) => () => Promise.resolve(value);

describe("ConsoleLines", () => {
  it("gives complete lines as they come and the unfinished rest on flush", () => {
    const lines = new ConsoleLines();
    assert.deepEqual(lines.push(Buffer.from("Booting")), []);
    assert.equal(lines.held, 7);
    assert.deepEqual(lines.push(Buffer.from(" Linux\r\nok\n\nlogin: ")), [
      "Booting Linux",
      "ok",
      "",
    ]);
    assert.deepEqual(lines.flush(), ["login: "]);
    assert.deepEqual(lines.flush(), []);
  });

  it("cuts a line at the bound, however it arrives", () => {
    const lines = new ConsoleLines(8);
    assert.deepEqual(lines.push(Buffer.from("abcdefghijkl")), ["abcdefgh"]);
    assert.deepEqual(lines.push(Buffer.from("mnopqrstu\n")), ["ijklmnop", "qrstu"]);
    const spam = new ConsoleLines(8);
    const out = spam.push(Buffer.alloc(1000, "x"));
    assert.equal(out.length, 125);
    assert.ok(spam.held < 8);
  });

  it("keeps a character split across two chunks whole", () => {
    const lines = new ConsoleLines();
    const bytes = Buffer.from("grüß\n");
    assert.deepEqual(
      [...lines.push(bytes.subarray(0, 3)), ...lines.push(bytes.subarray(3))],
      ["grüß"],
    );
  });
});

describe("cleanConsoleText", () => {
  it("drops control characters and terminal escapes, keeps tabs and text", () => {
    assert.equal(
      cleanConsoleText(Buffer.from("\u001b[1;32mOK\u001b[0m\tdone\r\u0007")),
      "OK\tdone",
    );
    assert.equal(cleanConsoleText(Buffer.from("\u001b]0;title\u0007after")), "after");
    assert.equal(cleanConsoleText(Buffer.from("a\u0000b\u009bc\u007f")), "abc");
    assert.equal(cleanConsoleText(Buffer.from([0x66, 0xff, 0x67])), "f\ufffdg");
  });
});

describe("console entries", () => {
  it("are `<ISO time> <text>` lines, read back exactly", () => {
    const entry = { time: Date.UTC(2026, 11, 3, 13, 14, 15, 123), text: " two  spaces " };
    assert.equal(formatEntry(entry), "2026-12-03T13:14:15.123Z  two  spaces \n");
    assert.deepEqual(parseEntry(formatEntry(entry).slice(0, -1)), entry);
    for (const bad of ["", "garbage", "2026-12-03T13:14:15.123Zx", "9999-99-99T99:99:99.999Z x"])
      assert.equal(parseEntry(bad), undefined);
  });
});

describe("ConsoleLog", () => {
  let root = "";
  let count = 0;
  const fresh = async (): Promise<string> => {
    const dir = join(root, String(count++));
    await import("node:fs/promises").then((fs) => fs.mkdir(dir));
    return dir;
  };
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "town-console-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("reads by since, until, tail and timestamps", async () => {
    const log = new ConsoleLog(await fresh());
    await log.append([1000, 2000, 3000, 4000].map((time) => ({ time, text: `at ${time}` })));
    assert.deepEqual(texts(await collect(log.read({}, running(false)))), [
      "at 1000",
      "at 2000",
      "at 3000",
      "at 4000",
    ]);
    const window = await collect(
      log.read({ since: new Date(2000), until: new Date(3000), timestamps: true }, running(false)),
    );
    assert.deepEqual(window, [
      { stream: "stdout", time: new Date(2000), text: "at 2000" },
      { stream: "stdout", time: new Date(3000), text: "at 3000" },
    ]);
    assert.deepEqual(texts(await collect(log.read({ tail: 2 }, running(false)))), [
      "at 3000",
      "at 4000",
    ]);
    assert.deepEqual(texts(await collect(log.read({ tail: 0 }, running(false)))), []);
    assert.deepEqual(texts(await collect(log.read({ stdout: false }, running(false)))), []);
    assert.equal((await collect(log.read({}, running(false))))[0]?.time, null);
  });

  it("rotates at its cap, keeping one older file, and reads across both", async () => {
    const dir = await fresh();
    const log = new ConsoleLog(dir, 200);
    for (let i = 0; i < 30; i++) await log.append([{ time: 1000 + i, text: `line ${i}` }]);
    assert.ok((await stat(join(dir, "console.log"))).size <= 200);
    assert.ok((await stat(join(dir, "console.log.1"))).size <= 200);
    const all = texts(await collect(log.read({}, running(false))));
    assert.equal(all.at(-1), "line 29");
    assert.ok(all.length < 30 && all.length >= 6, `${all.length} lines kept`);
    assert.deepEqual(
      all,
      [...all].sort((a, b) => Number(a.slice(5)) - Number(b.slice(5))),
    );
  });

  it("skips what is not an entry (a damaged file)", async () => {
    const dir = await fresh();
    await writeFile(
      join(dir, "console.log"),
      `junk\n${formatEntry({ time: 5, text: "kept" })}no newline at the end`,
    );
    assert.deepEqual(texts(await collect(new ConsoleLog(dir).read({}, running(false)))), ["kept"]);
  });

  it("follows new lines, across a rotation, until the VM stops or the signal aborts", async () => {
    const dir = await fresh();
    const log = new ConsoleLog(dir, 120);
    await log.append([{ time: 1, text: "before" }]);
    let alive = true;
    const lines = log.read({ follow: true }, () => Promise.resolve(alive));
    const seen: string[] = [];
    const reading = (async () => {
      for await (const line of lines) seen.push(line.text);
    })();
    for (let i = 0; i < 6; i++) {
      await log.append([{ time: 10 + i, text: `new ${i} ${"x".repeat(20)}` }]);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    alive = false;
    await reading;
    assert.deepEqual(seen, [
      "before",
      ...[0, 1, 2, 3, 4, 5].map((i) => `new ${i} ${"x".repeat(20)}`),
    ]);

    const controller = new AbortController();
    const forever = log.read({ follow: true, tail: 0, signal: controller.signal }, running(true));
    setTimeout(() => {
      controller.abort();
    }, 50);
    assert.deepEqual(await collect(forever), []);
  });
});

describe("ConsoleRecorder", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "town-recorder-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps what the guest wrote with the time it was read; the unfinished line after a while", async () => {
    const chunks = [Buffer.from("Linux version 6.1\nlog"), Buffer.from("in: ")];
    let now = 1000;
    const log = new ConsoleLog(join(dir));
    const recorder = new ConsoleRecorder({
      log,
      read: () => Promise.resolve(chunks.shift() ?? Buffer.alloc(0)),
      clock: () => now,
      flushAfterMs: 1000,
    });
    await recorder.drain();
    now = 1500;
    await recorder.drain();
    assert.deepEqual(
      await readFile(join(dir, "console.log"), "utf8"),
      formatEntry({ time: 1000, text: "Linux version 6.1" }),
    );
    now = 2600;
    await recorder.drain();
    const lines = await collect(log.read({ timestamps: true }, running(false)));
    assert.deepEqual(
      lines.map((l) => [l.time?.getTime(), l.text]),
      [
        [1000, "Linux version 6.1"],
        [2600, "login: "],
      ],
    );
  });

  it("a guest spamming its console fills neither the disk nor memory", async () => {
    const spamDir = await mkdtemp(join(tmpdir(), "town-spam-"));
    try {
      const log = new ConsoleLog(spamDir, 64 * 1024);
      let served = 0;
      const recorder = new ConsoleRecorder({
        log,
        // 2 MiB of output without a single newline, then 256 KiB of one-letter lines.
        read: (max) => {
          if (served >= 2.25 * 1024 * 1024) return Promise.resolve(Buffer.alloc(0));
          const chunk = Buffer.alloc(max, served < 2 * 1024 * 1024 ? "A" : "b\n");
          served += chunk.length;
          return Promise.resolve(chunk);
        },
      });
      // One drain takes at most the ring buffer's megabyte.
      await recorder.drain();
      assert.equal(served, 1024 * 1024);
      while (served < 2.25 * 1024 * 1024) await recorder.drain();
      await recorder.stop({ lastDrain: false });
      const sizes = await Promise.all(
        ["console.log", "console.log.1"].map(async (f) => (await stat(join(spamDir, f))).size),
      );
      assert.ok(
        sizes.every((size) => size <= 64 * 1024),
        `file sizes ${sizes.join(", ")}`,
      );
      const lines = await collect(log.read({}, running(false)));
      assert.ok(lines.every((line) => Buffer.byteLength(line.text) <= 16 * 1024));
      assert.equal(lines.at(-1)?.text, "b", "the newest output is what is kept");
    } finally {
      await rm(spamDir, { recursive: true, force: true });
    }
  });
});
