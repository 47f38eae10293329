import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import dgram from "node:dgram";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import packet from "dns-packet";
import { freePort } from "../../test/runtime/podman-host.js";
import type { DnsConfigInput } from "./config.js";
import { DnsmasqSupervisor, hostUpstreams } from "./dnsmasq.js";

const run = promisify(execFile);

const missing = whyMissing();

function whyMissing(): string | false {
  if (process.getuid?.() !== 0) return "dnsmasq drops root after binding: the test needs root";
  for (const program of ["dnsmasq", "dig"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${program} || test -x /usr/sbin/${program}`]);
    } catch {
      return `${program} is not installed`;
    }
  }
  return false;
}

/** The names the fake upstream knows, and every name it was asked. */
const UPSTREAM_NAME = "outside.example";
const UPSTREAM_ADDRESS = "198.51.100.7";

async function dig(port: number, name: string, server = "127.0.0.1"): Promise<string> {
  const { stdout } = await run("dig", [
    `@${server}`,
    "-p",
    String(port),
    name,
    "A",
    "+short",
    "+time=2",
    "+tries=1",
  ]);
  return stdout.trim();
}

async function digStatus(port: number, name: string): Promise<string> {
  const { stdout } = await run("dig", [
    "@127.0.0.1",
    "-p",
    String(port),
    name,
    "+time=2",
    "+tries=1",
  ]);
  return /status: (\w+)/.exec(stdout)?.[1] ?? stdout;
}

async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("dnsmasq supervisor against the real dnsmasq", { skip: missing }, () => {
  let dir: string;
  let upstream: dgram.Socket;
  let upstreamPort: number;
  const asked: string[] = [];
  const supervisors: DnsmasqSupervisor[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "town-dns-"));
    // dnsmasq re-reads its files as nobody: the way there must be open.
    await chmod(dir, 0o755);
    upstream = dgram.createSocket("udp4");
    upstream.on("message", (message, from) => {
      const query = packet.decode(message);
      const question = query.questions?.[0];
      if (question === undefined) return;
      asked.push(question.name);
      const known = question.name === UPSTREAM_NAME && question.type === "A";
      const reply = packet.encode({
        type: "response",
        id: query.id ?? 0,
        flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (known ? 0 : 3),
        questions: [question],
        answers: known
          ? [{ type: "A", name: UPSTREAM_NAME, ttl: 60, class: "IN", data: UPSTREAM_ADDRESS }]
          : [],
      });
      upstream.send(reply, from.port, from.address);
    });
    await new Promise<void>((resolve) => upstream.bind(0, "127.0.0.1", resolve));
    upstreamPort = upstream.address().port;
  });

  after(async () => {
    for (const supervisor of supervisors) await supervisor.stop();
    upstream.close();
    await rm(dir, { recursive: true, force: true });
  });

  function config(port: number, records: DnsConfigInput["records"]): DnsConfigInput {
    return {
      records,
      upstreams: [{ address: "127.0.0.1", port: upstreamPort }],
      listen: { addresses: ["127.0.0.1"], port },
      localDomains: ["home"],
    };
  }

  async function hostsReads(): Promise<number> {
    const log = await readFile(join(dir, "dnsmasq.log"), "utf8");
    return log.split("\n").filter((line) => line.includes(`read ${join(dir, "hosts")}`)).length;
  }

  it("answers its records, forwards the rest, reloads on change and restarts after a crash", async () => {
    const port = await freePort();
    const supervisor = new DnsmasqSupervisor({ dir, restartDelayMs: 100 });
    supervisors.push(supervisor);
    const records = [
      { name: "app.default.home", address: "192.0.2.10" },
      { name: "town.home", address: "192.0.2.10" },
    ];

    assert.equal(await supervisor.apply(config(port, records)), "started");
    const first = supervisor.status();
    assert.equal(first.state, "running", first.error);
    assert.equal(first.records, 2);
    assert.deepEqual(first.upstreams, [`127.0.0.1#${upstreamPort}`]);
    assert.equal(await dig(port, "app.default.home"), "192.0.2.10");
    assert.equal(await dig(port, "town.home"), "192.0.2.10");

    // Not ours: forwarded to the upstream on loopback.
    assert.equal(await dig(port, UPSTREAM_NAME), UPSTREAM_ADDRESS);
    assert.ok(asked.includes(UPSTREAM_NAME));
    // Ours but unknown: answered here, never forwarded.
    assert.equal(await digStatus(port, "nothing.default.home"), "NXDOMAIN");
    assert.ok(!asked.some((name) => name.endsWith(".home")), asked.join(", "));

    // Same records in another order: no write, no signal.
    const reads = await hostsReads();
    assert.equal(await supervisor.apply(config(port, [...records].reverse())), "none");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(await hostsReads(), reads);

    // Changed records: the same process re-reads its hosts file on SIGHUP.
    assert.equal(
      await supervisor.apply(
        config(port, [
          { name: "app.default.home", address: "192.0.2.11" },
          { name: "other.default.home", address: "192.0.2.12" },
        ]),
      ),
      "reloaded",
    );
    assert.equal(supervisor.status().pid, first.pid);
    await until("the reload", async () => (await hostsReads()) > reads);
    assert.equal(await dig(port, "app.default.home"), "192.0.2.11");
    assert.equal(await dig(port, "other.default.home"), "192.0.2.12");
    assert.equal(await digStatus(port, "town.home"), "NXDOMAIN");

    // Killed: started again, serving the current records.
    assert.ok(first.pid !== undefined);
    process.kill(first.pid, "SIGKILL");
    await until("the restart", () => {
      const status = supervisor.status();
      return status.state === "running" && status.pid !== first.pid;
    });
    assert.equal(supervisor.status().restarts, 1);
    assert.equal(await dig(port, "other.default.home"), "192.0.2.12");

    // A new listen port changes the main configuration: a restart.
    const newPort = await freePort();
    const before = supervisor.status().pid;
    assert.equal(
      await supervisor.apply(
        config(newPort, [{ name: "app.default.home", address: "192.0.2.13" }]),
      ),
      "restarted",
    );
    assert.notEqual(supervisor.status().pid, before);
    assert.equal(await dig(newPort, "app.default.home"), "192.0.2.13");

    // A new daemon adopts the running dnsmasq instead of starting another.
    supervisor.detach();
    const successor = new DnsmasqSupervisor({ dir });
    supervisors.push(successor);
    const pid = supervisor.status().pid;
    assert.equal(
      await successor.apply(config(newPort, [{ name: "app.default.home", address: "192.0.2.13" }])),
      "adopted",
    );
    assert.equal(successor.status().pid, pid);
    assert.equal(await dig(newPort, "app.default.home"), "192.0.2.13");

    await successor.stop();
    assert.equal(successor.status().state, "stopped");
    await assert.rejects(dig(newPort, "app.default.home"));
  });

  it("defaults its upstreams to the host's resolvers, less itself", async () => {
    const resolv = join(dir, "resolv.conf");
    await writeFile(resolv, "nameserver 127.0.0.1\nnameserver 192.0.2.53\n");
    assert.deepEqual(await hostUpstreams({ addresses: ["127.0.0.1"], port: 53 }, resolv), [
      { address: "192.0.2.53" },
    ]);
    assert.deepEqual(
      await hostUpstreams({ addresses: ["127.0.0.1"], port: 53 }, join(dir, "none")),
      [],
    );
  });

  it("keeps supervising when restarting a dead dnsmasq fails", async () => {
    const port = await freePort();
    const otherDir = await mkdtemp(join(tmpdir(), "town-dns-"));
    await chmod(otherDir, 0o755);
    const supervisor = new DnsmasqSupervisor({ dir: otherDir, restartDelayMs: 50 });
    supervisors.push(supervisor);
    try {
      assert.equal(await supervisor.apply(config(port, [])), "started");
      const pid = supervisor.status().pid;
      assert.ok(pid !== undefined);
      // Its directory gone, the restart cannot even open its log: that must not end the process.
      await rm(otherDir, { recursive: true, force: true });
      process.kill(pid, "SIGKILL");
      await until("a failed restart", () =>
        /could not be restarted/.test(supervisor.status().error ?? ""),
      );
      assert.equal(supervisor.status().state, "failed");
      assert.match(supervisor.status().error ?? "", /ENOENT/);
    } finally {
      await supervisor.stop();
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it("reports a dnsmasq that cannot start, without throwing", async () => {
    // Hold the port's UDP side so that dnsmasq cannot bind it.
    const blocker = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => blocker.bind(0, "127.0.0.1", resolve));
    const port = blocker.address().port;
    const otherDir = await mkdtemp(join(tmpdir(), "town-dns-"));
    const supervisor = new DnsmasqSupervisor({ dir: otherDir, restartDelayMs: 60_000 });
    supervisors.push(supervisor);
    try {
      assert.equal(await supervisor.apply(config(port, [])), "started");
      const status = supervisor.status();
      assert.equal(status.state, "failed");
      assert.match(status.error ?? "", /address already in use/i);
    } finally {
      await supervisor.stop();
      blocker.close();
      await rm(otherDir, { recursive: true, force: true });
    }
  });
});
