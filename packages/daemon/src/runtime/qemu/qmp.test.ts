import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { rejection } from "../../../test/async.js";
import { MAX_LINE_BYTES, QmpClient, type QmpEvent } from "./qmp.js";

const GREETING = { QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } };

/** A QMP server playing QEMU: `answer` gets each command and writes what it likes. */
async function fakeQemu(
  path: string,
  answer: (socket: Socket, message: { execute: string; arguments?: unknown; id?: unknown }) => void,
  greeting = `${JSON.stringify(GREETING)}\r\n`,
): Promise<Server> {
  const server = createServer((socket) => {
    socket.write(greeting);
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk.toString("utf8");
      for (let newline = buffered.indexOf("\n"); newline !== -1; newline = buffered.indexOf("\n")) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        answer(socket, JSON.parse(line) as { execute: string; id?: unknown });
      }
    });
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

const reply = (socket: Socket, message: object): void => {
  socket.write(`${JSON.stringify(message)}\r\n`);
};

describe("QmpClient against a fake QEMU", () => {
  let dir = "";
  let count = 0;
  const servers: Server[] = [];
  const socketPath = (): string => join(dir, `q${count++}.sock`);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "town-qmp-"));
  });
  after(async () => {
    for (const server of servers) server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function serve(answer: Parameters<typeof fakeQemu>[1], greeting?: string): Promise<string> {
    const path = socketPath();
    servers.push(await fakeQemu(path, answer, greeting));
    return path;
  }

  it("negotiates, runs commands by id (answers out of order too) and passes events on", async () => {
    const seen: string[] = [];
    let held: { socket: Socket; id: unknown } | undefined;
    const path = await serve((socket, message) => {
      seen.push(message.execute);
      if (message.execute === "qmp_capabilities") reply(socket, { return: {}, id: message.id });
      if (message.execute === "slow") held = { socket, id: message.id };
      if (message.execute === "query-status") {
        reply(socket, {
          event: "RESUME",
          data: {},
          timestamp: { seconds: 1700000000, microseconds: 250000 },
        });
        reply(socket, { return: { status: "running", running: true }, id: message.id });
        if (held) reply(held.socket, { return: "late", id: held.id });
      }
    });
    const client = await QmpClient.connect(path);
    const events: QmpEvent[] = [];
    client.on("event", (event) => events.push(event));
    const slow = client.execute("slow");
    assert.deepEqual(await client.execute("query-status"), { status: "running", running: true });
    assert.equal(await slow, "late");
    assert.deepEqual(seen, ["qmp_capabilities", "slow", "query-status"]);
    assert.deepEqual(events, [{ event: "RESUME", data: {}, time: new Date(1700000000250) }]);
    client.close();
    assert.equal(client.isClosed, true);
    assert.equal((await rejection(client.execute("query-status"))).code, "unavailable");
  });

  it("turns QEMU's error answer into invalid_argument with its class and text", async () => {
    const path = await serve((socket, message) => {
      if (message.execute === "qmp_capabilities") reply(socket, { return: {}, id: message.id });
      else
        reply(socket, {
          error: { class: "CommandNotFound", desc: "The command nope has not been found" },
          id: message.id,
        });
    });
    const client = await QmpClient.connect(path);
    const error = await rejection(client.execute("nope"));
    assert.equal(error.code, "invalid_argument");
    assert.match(error.message, /CommandNotFound: The command nope has not been found/);
    client.close();
  });

  it("gives up on a command without an answer, and on a socket that never greets", async () => {
    const path = await serve((socket, message) => {
      if (message.execute === "qmp_capabilities") reply(socket, { return: {}, id: message.id });
    });
    const client = await QmpClient.connect(path);
    const error = await rejection(client.execute("query-status", undefined, 50));
    assert.equal(error.code, "unavailable");
    assert.match(error.message, /no answer in 50 ms/);
    client.close();
    const silent = await serve(() => undefined, "");
    assert.equal(
      (await rejection(QmpClient.connect(silent, { timeoutMs: 50 }))).code,
      "unavailable",
    );
    assert.equal(
      (await rejection(QmpClient.connect(join(dir, "absent.sock")))).code,
      "unavailable",
    );
  });

  it("fails pending commands when the connection closes", async () => {
    const path = await serve((socket, message) => {
      if (message.execute === "qmp_capabilities") reply(socket, { return: {}, id: message.id });
      else socket.destroy();
    });
    const client = await QmpClient.connect(path);
    let closed = 0;
    client.on("close", () => (closed += 1));
    assert.equal((await rejection(client.execute("quit"))).code, "unavailable");
    assert.equal(closed, 1);
  });

  it("hangs up on a message longer than the bound, or one that is not JSON", async () => {
    const path = await serve((socket, message) => {
      if (message.execute === "qmp_capabilities") reply(socket, { return: {}, id: message.id });
      // No newline ever: the buffer may not grow without bound.
      else socket.write(Buffer.alloc(MAX_LINE_BYTES + 1024, "a"));
    });
    const client = await QmpClient.connect(path);
    const error = await rejection(client.execute("query-status"));
    assert.equal(error.code, "io");
    assert.match(error.message, /longer than/);

    const garbage = await serve((socket, message) => {
      if (message.execute === "qmp_capabilities") reply(socket, { return: {}, id: message.id });
      else socket.write("{not json\r\n");
    });
    const other = await QmpClient.connect(garbage);
    assert.equal((await rejection(other.execute("query-status"))).code, "io");
  });
});
