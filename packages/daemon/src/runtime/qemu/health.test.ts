import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { guestAnswered, nextHealth, probeGuestPort, VM_HEALTHCHECK } from "./health.js";

const TABLE = (state: string): string => `Hub -1 (net0):
  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ
  TCP[${state}]      15       127.0.0.1 18080       10.0.2.15    80     0     0
  TCP[HOST_FORWARD]   9       127.0.0.1 18080       10.0.2.15    80     0     0
  UDP[236 sec]       12       127.0.0.1 40000       10.0.2.15    53     0     0
`;

describe("guestAnswered", () => {
  it("is true once a connection to the guest's port left SYN_SENT", () => {
    assert.equal(guestAnswered(TABLE("SYN_SENT"), 80), false);
    assert.equal(guestAnswered(TABLE("ESTABLISHED"), 80), true);
    assert.equal(guestAnswered(TABLE("ESTABLISHED"), 8080), false);
    assert.equal(guestAnswered("", 80), false);
    const outbound = "  TCP[ESTABLISHED]  20  10.0.2.15 41000  93.184.216.34  80  0  0";
    assert.equal(guestAnswered(outbound, 80), false, "the guest's own connection out");
  });
});

describe("nextHealth", () => {
  const at = (end: number) => ({ start: end - 10, end, startedAt: 0 });
  const pass = { ok: true, output: "fine" };
  const fail = { ok: false, output: "no answer" };

  it("does not count failures in the start period; a success is healthy at once", () => {
    let health = nextHealth(undefined, fail, at(1000));
    assert.deepEqual([health.status, health.failingStreak], ["starting", 0]);
    health = nextHealth(health, pass, at(2000));
    assert.deepEqual([health.status, health.failingStreak], ["healthy", 0]);
  });

  it("is unhealthy after `retries` failures in a row, and keeps a short log", () => {
    const late = VM_HEALTHCHECK.startPeriodMs + 1;
    let health = nextHealth(undefined, pass, at(late));
    for (let i = 1; i < VM_HEALTHCHECK.retries; i++) {
      health = nextHealth(health, fail, at(late + i));
      assert.deepEqual([health.status, health.failingStreak], ["healthy", i]);
    }
    health = nextHealth(health, fail, at(late + 100));
    assert.equal(health.status, "unhealthy");
    for (let i = 0; i < 10; i++) health = nextHealth(health, fail, at(late + 200 + i));
    assert.equal(health.log.length, 5);
    assert.deepEqual(health.log.at(-1), {
      start: new Date(late + 199),
      end: new Date(late + 209),
      exitCode: 1,
      output: "no answer",
    });
  });
});

describe("probeGuestPort", () => {
  it("fails when nothing forwards the port, passes on a banner, fails on a refusal", async () => {
    const port = (hostPort: number) => ({
      hostAddress: "0.0.0.0",
      hostPort,
      port: 80,
      protocol: "tcp" as const,
    });
    const nothing = createServer();
    await new Promise<void>((resolve) => nothing.listen(0, "127.0.0.1", resolve));
    const free = (nothing.address() as { port: number }).port;
    nothing.close();
    const none = await probeGuestPort(port(free), () => Promise.resolve(""), 500);
    assert.deepEqual(none, {
      ok: false,
      output: `guest port 80 (host 127.0.0.1:${free}): QEMU does not forward it`,
    });

    const banner = createServer((socket) => socket.end("SSH-2.0-test\r\n"));
    const refuse = createServer((socket) => socket.destroy());
    const silent = createServer(() => undefined);
    for (const server of [banner, refuse, silent])
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const portOf = (server: typeof banner) => (server.address() as { port: number }).port;
    try {
      assert.equal(
        (await probeGuestPort(port(portOf(banner)), () => Promise.resolve(""), 1000)).ok,
        true,
      );
      const refused = await probeGuestPort(
        port(portOf(refuse)),
        () => Promise.resolve(TABLE("SYN_SENT")),
        1000,
      );
      assert.match(refused.output, /refused/);
      const waiting = await probeGuestPort(
        port(portOf(silent)),
        () => Promise.resolve(TABLE("SYN_SENT")),
        300,
      );
      assert.match(waiting.output, /no answer within 300 ms/);
      const accepted = await probeGuestPort(
        port(portOf(silent)),
        () => Promise.resolve(TABLE("ESTABLISHED")),
        300,
      );
      assert.equal(accepted.ok, true);
    } finally {
      for (const server of [banner, refuse, silent]) server.close();
    }
  });
});
