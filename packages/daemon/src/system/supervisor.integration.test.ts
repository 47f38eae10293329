/**
 * The supervisor with real processes: a tiny Node program that says hello,
 * can crash once, and can ignore SIGTERM; and an unrelated `sleep` whose pid
 * is planted in the pid file.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { commandLine } from "./proc.js";
import { ManagedProcess, type ManagedProcessOptions } from "./supervisor.js";

// Crashes (code 3) once when the crash file exists, removing it; ignores SIGTERM when asked to.
const PROGRAM = `
const fs = require("node:fs");
const [crashFile, stubborn] = process.argv.slice(1);
console.log("hello from " + process.pid);
if (stubborn === "stubborn") process.on("SIGTERM", () => console.log("ignored SIGTERM"));
if (fs.existsSync(crashFile)) { fs.rmSync(crashFile); setTimeout(() => process.exit(3), 100); }
setInterval(() => undefined, 1000);
`;

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const alive = async (pid: number | null): Promise<boolean> =>
  pid !== null && (await commandLine(pid)) !== undefined;

describe("ManagedProcess with real processes", () => {
  let dir = "";
  const supervisors: ManagedProcess[] = [];
  let launches = 0;
  let unrelated: ChildProcess | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "town-supervisor-"));
  });
  after(async () => {
    for (const supervisor of supervisors) await supervisor.stop();
    unrelated?.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  function supervisor(
    name: string,
    overrides: Partial<ManagedProcessOptions> = {},
    stubborn = false,
  ): ManagedProcess {
    const marker = join(dir, `${name}.crash`);
    const managed = new ManagedProcess({
      name,
      pidFile: join(dir, `${name}.pid`),
      log: { path: join(dir, `${name}.log`) },
      launch: () => {
        launches += 1;
        return { argv: [process.execPath, "-e", PROGRAM, marker, stubborn ? "stubborn" : "-"] };
      },
      isOurs: (argv) => argv[0] === process.execPath && argv.includes(marker),
      ready: async () => (await readFile(join(dir, `${name}.log`), "utf8")).includes("hello"),
      restart: { initialDelayMs: 200, maxDelayMs: 1_000 },
      pollMs: 50,
      ...overrides,
    });
    supervisors.push(managed);
    return managed;
  }

  it("starts the program detached, writes its pid file and keeps its log", async () => {
    const managed = supervisor("plain");
    const status = await managed.start();
    assert.equal(status.state, "running");
    assert.equal(status.origin, "started");
    assert.ok(status.pid !== null && (await alive(status.pid)));
    assert.equal((await readFile(join(dir, "plain.pid"), "utf8")).trim(), String(status.pid));
    assert.deepEqual(await managed.logTail(), [`hello from ${status.pid}`]);
    // Its own process group: it outlives a signal to the daemon's.
    const group = (await readFile(`/proc/${status.pid}/stat`, "utf8")).split(") ")[1]?.split(" ");
    assert.equal(group?.[2], String(status.pid));
  });

  it("a new supervisor (the daemon restarted) adopts it from the pid file instead of starting another", async () => {
    const first = supervisor("adopt");
    const { pid } = await first.start();
    first.detach();
    assert.equal(first.status().pid, pid, "shown as last seen");
    assert.ok(await alive(pid), "detach leaves it running");
    const before = launches;
    const second = supervisor("adopt");
    const status = await second.start();
    assert.equal(launches, before, "nothing was launched");
    assert.equal(status.origin, "adopted");
    assert.equal(status.pid, pid);
    assert.equal(second.argv()?.[0], process.execPath);
    // Watched again after a detach, an adopted process is polled: when it dies, it is started again.
    second.detach();
    assert.equal((await second.start()).pid, pid);
    process.kill(pid ?? 0, "SIGKILL");
    await until("the restart", () => second.status().origin === "started");
    const restarted = second.status();
    assert.equal(restarted.state, "running");
    assert.equal(restarted.restarts, 1);
    assert.notEqual(restarted.pid, pid);
    assert.deepEqual(restarted.lastExit?.code, null);
  });

  it("restarts a crashed program after the backoff, and reports the crash", async () => {
    await writeFile(join(dir, "crash.crash"), "");
    const failures: string[] = [];
    const managed = supervisor("crash", {
      describe: (failure) => `crash: ${failure.kind}`,
      onFailure: (_failure, message) => failures.push(message),
    });
    const first = await managed.start();
    assert.equal(first.state, "running");
    await until("the crash", () => managed.status().state === "restarting");
    const down = managed.status();
    assert.equal(down.lastExit?.code, 3);
    assert.deepEqual(down.lastError?.message, "crash: died");
    assert.equal(down.pid, null);
    const crashedAt = down.lastExit.at;
    await until("the restart", () => managed.status().state === "running");
    assert.ok(Date.now() - crashedAt >= 190, "waited for the backoff");
    const up = managed.status();
    assert.equal(up.restarts, 1);
    assert.notEqual(up.pid, first.pid);
    assert.equal(up.lastError, null);
    assert.deepEqual(failures, ["crash: died"]);
    assert.equal(existsSync(join(dir, "crash.crash")), false);
  });

  it("never adopts nor stops an unrelated process its pid file names", async () => {
    unrelated = spawn("sleep", ["600"], { stdio: "ignore" });
    const stranger = unrelated.pid;
    assert.ok(stranger !== undefined);
    await writeFile(join(dir, "planted.pid"), `${stranger}\n`);
    const managed = supervisor("planted");
    assert.equal(await managed.adopt(), false);
    const status = await managed.start();
    assert.equal(status.origin, "started");
    assert.notEqual(status.pid, stranger);
    await managed.stop();
    assert.equal(await alive(status.pid), false);
    // Planted again, with nothing running: stop leaves the stranger alone.
    await writeFile(join(dir, "planted.pid"), `${stranger}\n`);
    await supervisor("planted").stop();
    assert.ok(await alive(stranger));
  });

  it("stops with SIGTERM, and kills a program that ignores it after the timeout", async () => {
    const polite = supervisor("polite");
    const { pid } = await polite.start();
    await polite.stop(5_000);
    assert.equal(await alive(pid), false);
    assert.equal(polite.status().state, "stopped");
    assert.equal(existsSync(join(dir, "polite.pid")), false);

    const stubborn = supervisor("stubborn", {}, true);
    const started = await stubborn.start();
    const at = Date.now();
    await stubborn.stop(300);
    assert.equal(await alive(started.pid), false);
    assert.ok(Date.now() - at >= 300, "SIGTERM was given its time");
    assert.deepEqual(await stubborn.logTail(1), ["ignored SIGTERM"]);
    // Stopped means no restart.
    await sleep(400);
    assert.equal(stubborn.status().state, "stopped");
  });

  it("reports a program that cannot start, backs off and keeps trying", async () => {
    const managed = supervisor("missing", {
      launch: () => ({ argv: [join(dir, "no-such-program")] }),
      restart: { initialDelayMs: 10, maxDelayMs: 20 },
    });
    const status = await managed.start();
    assert.equal(status.state, "restarting");
    assert.match(status.lastError?.message ?? "", /^missing could not be started: .*ENOENT/);
    await until("failed", () => managed.status().state === "failed");
    assert.match(managed.status().lastError?.message ?? "", /could not be restarted: .*ENOENT/);
    assert.ok(managed.status().restarts >= 2);
  });

  it("kills a start that does not become ready in time", async () => {
    const managed = supervisor("slow", {
      ready: () => Promise.resolve(false),
      startTimeoutMs: 2_000,
    });
    const status = await managed.start();
    assert.equal(status.state, "restarting");
    assert.match(status.lastError?.message ?? "", /^slow not ready within 2000 ms: hello from/);
    await managed.stop();
  });
});
