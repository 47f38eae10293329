import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { freePort } from "../podman-host.js";
import {
  buildTestGuest,
  TEST_GUEST_DIR,
  TEST_GUEST_FW_CFG_ENVIRONMENT,
  TEST_GUEST_GREETING,
  TEST_GUEST_MARKER_PREFIX,
  testGuestMissing,
} from "./guest.js";

const run = promisify(execFile);

const BOOT_LIMIT_MS = 90_000;
const POWER_OFF_LIMIT_MS = 30_000;
const ENVIRONMENT = "GREETING=hello\nMODE=test\n";

describe("the test guest under QEMU", { skip: testGuestMissing() }, () => {
  let dir = "";
  const running = new Set<ChildProcess>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "town-guest-test-"));
  });
  after(async () => {
    for (const qemu of running) qemu.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  /** Boots the overlay with the devices the runtime gives a VM; resolves once `/` answers. */
  async function boot(overlay: string, base: string, port: number): Promise<Vm> {
    const qmp = join(dir, "qmp.sock");
    const consoleLog = join(dir, "console.log");
    await rm(qmp, { force: true });
    const qemu = spawn(
      "qemu-system-x86_64",
      [
        ...["-nodefaults", "-display", "none", "-machine", "q35", "-accel", "tcg", "-cpu", "max"],
        ...["-m", "128", "-smp", "1"],
        ...["-blockdev", `driver=file,node-name=base-file,filename=${base},read-only=on`],
        ...["-blockdev", "driver=qcow2,node-name=base,file=base-file,read-only=on"],
        ...["-blockdev", `driver=file,node-name=disk-file,filename=${overlay}`],
        ...["-blockdev", "driver=qcow2,node-name=disk,file=disk-file,backing=base"],
        ...["-device", "virtio-blk-pci,drive=disk,bootindex=0"],
        ...["-netdev", `user,id=net0,hostfwd=tcp:127.0.0.1:${port}-:80`],
        ...["-device", "virtio-net-pci,netdev=net0"],
        ...["-serial", `file:${consoleLog}`],
        ...["-qmp", `unix:${qmp},server=on,wait=off`],
        ...["-fw_cfg", `name=${TEST_GUEST_FW_CFG_ENVIRONMENT},file=${join(dir, "environment")}`],
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    running.add(qemu);
    let stderr = "";
    qemu.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(qemu, "exit").then(([code]) => {
      running.delete(qemu);
      return code as number | null;
    });
    const vm: Vm = { qemu, qmp, consoleLog, exited };
    const deadline = Date.now() + BOOT_LIMIT_MS;
    while ((await get(port, "/")) === undefined) {
      if (qemu.exitCode !== null || qemu.signalCode !== null) {
        assert.fail(`QEMU ended before the guest answered: ${stderr}\n${await consoleOf(vm)}`);
      }
      if (Date.now() > deadline) {
        assert.fail(`the guest did not answer within ${BOOT_LIMIT_MS} ms:\n${await consoleOf(vm)}`);
      }
      await sleep(500);
    }
    return vm;
  }

  it("boots, serves its pages, powers off on QMP system_powerdown and keeps its marker", async () => {
    const guest = await buildTestGuest(TEST_GUEST_DIR);
    assert.match(guest.kernelVersion, /^\d+\.\d+\.\d+-\S+$/);
    const base = join(dir, "base.qcow2");
    const overlay = join(dir, "disk.qcow2");
    await run("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", guest.diskPath, base]);
    await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay]);
    await writeFile(join(dir, "environment"), ENVIRONMENT);
    const port = await freePort();

    const first = await boot(overlay, base, port);
    assert.equal(await get(port, "/"), TEST_GUEST_GREETING);
    const marker = await get(port, "/marker");
    assert.match(marker ?? "", new RegExp(`^${TEST_GUEST_MARKER_PREFIX}[0-9a-f-]{36}\n$`));
    assert.equal(await get(port, "/boots"), "1\n");
    assert.equal(await get(port, "/env"), ENVIRONMENT);
    const log = await consoleOf(first);
    assert.match(log, /town-guest: first boot: marker written/);
    assert.match(log, /town-guest: http ready/);

    await powerDown(first);

    const second = await boot(overlay, base, port);
    assert.equal(await get(port, "/marker"), marker, "the marker the first boot wrote");
    assert.equal(await get(port, "/boots"), "2\n");
    assert.match(await consoleOf(second), /town-guest: marker found/);
    await powerDown(second);
  });

  it("builds one image per inputs", async () => {
    const again = await buildTestGuest(TEST_GUEST_DIR);
    assert.equal((await buildTestGuest(TEST_GUEST_DIR)).diskPath, again.diskPath);
    const other = await buildTestGuest(dir, { pages: { version: "2\n" } });
    assert.notEqual(other.diskPath, again.diskPath);
    await assert.rejects(buildTestGuest(dir, { pages: { "../x": "" } }), /bad page name/);
  });
});

interface Vm {
  qemu: ChildProcess;
  qmp: string;
  consoleLog: string;
  exited: Promise<number | null>;
}

/** The body of GET `path` through the forwarded port, or undefined while nothing answers. */
async function get(port: number, path: string): Promise<string | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      signal: AbortSignal.timeout(3000),
    });
    return response.ok ? await response.text() : `HTTP ${response.status}`;
  } catch {
    return undefined;
  }
}

async function consoleOf(vm: Vm): Promise<string> {
  return readFile(vm.consoleLog, "utf8").catch(() => "(no console log)");
}

/** ACPI power button through QMP; QEMU has to end by itself, cleanly. */
async function powerDown(vm: Vm): Promise<void> {
  await qmpExecute(vm.qmp, "system_powerdown");
  const code = await Promise.race([
    vm.exited,
    sleep(POWER_OFF_LIMIT_MS, "timeout" as const, { ref: false }),
  ]);
  assert.equal(code, 0, `QEMU did not end after system_powerdown:\n${await consoleOf(vm)}`);
  assert.match(await consoleOf(vm), /town-guest: power button: syncing and powering off/);
}

/** Connects, leaves capabilities negotiation, runs one command; events in between are skipped. */
async function qmpExecute(socket: string, command: string): Promise<void> {
  const connection = net.createConnection(socket);
  try {
    const replies = lines(connection);
    const next = async (): Promise<Record<string, unknown>> => {
      for (;;) {
        const { value, done } = await replies.next();
        if (done) throw new Error("QMP closed the connection");
        const message = JSON.parse(value) as Record<string, unknown>;
        if (!("event" in message)) return message;
      }
    };
    assert.ok("QMP" in (await next()), "QMP's greeting");
    for (const execute of ["qmp_capabilities", command]) {
      connection.write(`${JSON.stringify({ execute })}\n`);
      const reply = await next();
      assert.ok("return" in reply, `QMP ${execute}: ${JSON.stringify(reply)}`);
    }
  } finally {
    connection.destroy();
  }
}

async function* lines(socket: net.Socket): AsyncGenerator<string, void> {
  let buffered = "";
  for await (const chunk of socket) {
    buffered += (chunk as Buffer).toString();
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
  }
}
