/**
 * The guarded transport against a real HTTP server on the loopback: the
 * byte budget, an abort while a response stalls, and the check of a fetched
 * pack's objects.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { deflateSync } from "node:zlib";
import type { GitHttpResponse } from "isomorphic-git/http/node";
import { expectTownError } from "../../../format/test/support.js";
import { Aborted, DownloadLimit, ObjectTooLarge, Timeout } from "./errors.js";
import { deadline, guardedHttp } from "./transport.js";

/** An upload-pack answer holding one blob of `size` zeros, on side-band channel 1. */
function packOfZeros(size: number): Buffer {
  const header = [0x30 | (size & 15)];
  for (let rest = Math.floor(size / 16); rest > 0; rest = Math.floor(rest / 128)) {
    header[header.length - 1] = (header[header.length - 1] ?? 0) | 0x80;
    header.push(rest & 0x7f);
  }
  const pack = Buffer.concat([
    Buffer.from("PACK\0\0\0\x02\0\0\0\x01", "latin1"),
    Buffer.from(header),
    deflateSync(Buffer.alloc(size)),
  ]);
  const length = (pack.length + 5).toString(16).padStart(4, "0");
  return Buffer.concat([Buffer.from("0008NAK\n"), Buffer.from(length), Buffer.from([1]), pack]);
}

let server: http.Server;
let base: string;
before(async () => {
  server = http.createServer((request, response) => {
    if (request.url === "/big") {
      response.end(Buffer.alloc(64 * 1024, 1));
    } else if (request.url === "/stall") {
      response.writeHead(200);
      response.write("start");
      // …and nothing more.
    } else if (request.url?.startsWith("/zeros/")) {
      response.end(packOfZeros(Number(request.url.split("/")[2])));
    } else response.end("ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

async function read(response: GitHttpResponse): Promise<number> {
  let bytes = 0;
  for await (const chunk of response.body ?? []) bytes += chunk.byteLength;
  return bytes;
}

describe("guardedHttp", () => {
  const limits = { maxDownloadBytes: 10_000, maxObjectBytes: 1000 };

  it("passes responses within the budget through", async () => {
    const client = guardedHttp(new AbortController().signal, limits, () => undefined);
    assert.equal(await read(await client.request({ url: `${base}/small` })), 2);
  });

  it("stops at the byte budget, saying so to the caller", async () => {
    const reasons: unknown[] = [];
    const client = guardedHttp(new AbortController().signal, limits, (error) =>
      reasons.push(error),
    );
    await assert.rejects(read(await client.request({ url: `${base}/big` })), DownloadLimit);
    assert.ok(reasons[0] instanceof DownloadLimit);
  });

  it(
    "gives up on a stalled response as soon as the signal aborts",
    { timeout: 10_000 },
    async () => {
      const controller = new AbortController();
      const client = guardedHttp(controller.signal, limits, () => undefined);
      const response = await client.request({ url: `${base}/stall` });
      const started = Date.now();
      setTimeout(() => {
        controller.abort(new Aborted());
      }, 50);
      await assert.rejects(read(response), Aborted);
      assert.ok(Date.now() - started < 2000);
      await assert.rejects(client.request({ url: `${base}/small` }), Aborted);
    },
  );

  it("refuses a pack holding an object that inflates past the bound", async () => {
    const reasons: unknown[] = [];
    const client = guardedHttp(new AbortController().signal, limits, (error) =>
      reasons.push(error),
    );
    const fair = await client.request({ url: `${base}/zeros/500/git-upload-pack` });
    assert.ok((await read(fair)) > 0);
    const bomb = await client.request({ url: `${base}/zeros/50000/git-upload-pack` });
    await assert.rejects(read(bomb), ObjectTooLarge);
    assert.ok(reasons[0] instanceof ObjectTooLarge);
  });
});

describe("deadline", () => {
  it("aborts with a Timeout, or with Aborted when the caller does", async () => {
    const timed = deadline(20);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.ok(timed.signal.reason instanceof Timeout);
    assert.equal(timed.signal.reason.message, "timed out after 20 ms");

    const caller = new AbortController();
    const bound = deadline(60_000, caller.signal);
    caller.abort();
    assert.ok(bound.signal.reason instanceof Aborted);
    bound.stop();

    const stopped = deadline(20);
    stopped.stop();
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(stopped.signal.aborted, false);
  });

  it("refuses times a timer cannot wait", async () => {
    for (const ms of [0, -1, 1.5, 2 ** 31, Number.NaN]) {
      await expectTownError(
        Promise.resolve().then(() => deadline(ms)),
        "invalid_argument",
        /^git: timeout .* ms is out of range$/,
      );
    }
  });
});
