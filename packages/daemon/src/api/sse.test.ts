import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { TownError } from "@townos/format";
import { sseFrame, sseStream } from "./sse.js";

async function collect(stream: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const text of stream) out.push(text);
  return out;
}

describe("server-sent events", () => {
  it("frames each event as one data line of JSON", () => {
    assert.equal(
      sseFrame({ type: "line", text: "two\nlines" }),
      'data: {"type":"line","text":"two\\nlines"}\n\n',
    );
  });

  it("opens with a comment, then one frame per event, and ends with the events", async () => {
    async function* events(): AsyncGenerator<object> {
      yield { n: 1 };
      yield { n: 2 };
    }
    const frames = await collect(sseStream(events(), { signal: new AbortController().signal }));
    assert.deepEqual(frames, [": connected\n\n", 'data: {"n":1}\n\n', 'data: {"n":2}\n\n']);
  });

  it("sends a heartbeat comment while nothing happens", async () => {
    async function* slow(): AsyncGenerator<object> {
      await sleep(120);
      yield { n: 1 };
    }
    const frames = await collect(
      sseStream(slow(), { signal: new AbortController().signal, heartbeatMs: 30 }),
    );
    assert.equal(frames.at(-1), 'data: {"n":1}\n\n');
    const beats = frames.filter((frame) => frame === ": heartbeat\n\n").length;
    assert.ok(beats >= 2, `heartbeats: ${beats}`);
  });

  it("ends when the signal aborts and closes the producer", async () => {
    const stop = new AbortController();
    let closed = false;
    async function* endless(signal: AbortSignal): AsyncGenerator<object> {
      try {
        for (let n = 0; ; n++) {
          yield { n };
          // Wakes up on abort, as followLogs does.
          await sleep(1000, undefined, { signal }).catch(() => undefined);
          if (signal.aborted) return;
        }
      } finally {
        closed = true;
      }
    }
    const frames: string[] = [];
    for await (const frame of sseStream(endless(stop.signal), { signal: stop.signal })) {
      frames.push(frame);
      if (frames.length === 2) stop.abort();
    }
    assert.deepEqual(frames, [": connected\n\n", 'data: {"n":0}\n\n']);
    assert.equal(closed, true, "the producer's finally ran");
  });

  it("turns a failure into a last error event with the problem", async () => {
    // eslint-disable-next-line require-yield -- fails before its first event
    async function* failing(): AsyncGenerator<object> {
      throw new TownError("unavailable", "podman went away");
    }
    const frames = await collect(sseStream(failing(), { signal: new AbortController().signal }));
    const last = JSON.parse((frames.at(-1) ?? "").replace(/^data: /, "")) as {
      type: string;
      problem: { code: string; detail: string; status: number };
    };
    assert.equal(last.type, "error");
    assert.equal(last.problem.code, "unavailable");
    assert.equal(last.problem.status, 503);
    assert.equal(last.problem.detail, "podman went away");
  });
});
