/**
 * The network settings routes over real HTTP with the typed client, on a
 * real store in a temp dir: who may read and change them, field-by-field
 * problems, the audit entry, and that a change is applied only once the
 * answer has gone out (networkctl recorded: this host runs no networkd).
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { FastifyInstance } from "fastify";
import { ApiError, TownClient } from "@townos/client";
import type { Services } from "../../services.js";
import { NETWORKD_FILE, OsNetwork } from "../../system/os-network.js";
import type { BootState } from "../context.js";
import { ADMIN_TOKEN, listenApi, testSessions, USER_TOKEN } from "../../../test/api-harness.js";
import { rejection } from "../../../test/async.js";

describe("network settings routes", () => {
  const boot: BootState = { state: "ready", step: "ready", error: null, services: undefined };
  const audited: { action: string; target: string; outcome: string }[] = [];
  const networkctl: string[] = [];
  let scratch = "";
  let app: FastifyInstance;
  let admin: TownClient;
  let user: TownClient;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-network-routes-"));
    const sysClassNet = join(scratch, "net");
    await mkdir(join(sysClassNet, "eth0", "device"), { recursive: true });
    await writeFile(join(scratch, "cmdline"), "boot=live\n");
    const osNetwork = new OsNetwork(join(scratch, "data"), join(scratch, "networkd"), {
      sysClassNet,
      cmdlineFile: join(scratch, "cmdline"),
      networkctl: (args) => {
        networkctl.push(args.join(" "));
        return Promise.resolve();
      },
    });
    boot.services = {
      osNetwork,
      sessions: testSessions,
      audit: { record: (entry: (typeof audited)[number]) => audited.push(entry) },
    } as unknown as Services;
    let baseUrl = "";
    ({ app, baseUrl } = await listenApi(boot));
    admin = new TownClient({ baseUrl, token: ADMIN_TOKEN });
    user = new TownClient({ baseUrl, token: USER_TOKEN });
  });
  after(async () => {
    await app.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it("shows DHCP, the wired interfaces, and that this box applies them", async () => {
    const status = await admin.networkSettings();
    assert.deepEqual(status.settings, { mode: "dhcp" });
    assert.deepEqual(
      status.interfaces.map((wired) => wired.name),
      ["eth0"],
    );
    assert.deepEqual([status.served, status.overridden, status.error], [true, false, null]);
  });

  it("saves a fixed address, answers, then applies it", async () => {
    const settings = {
      mode: "static" as const,
      interface: "eth0",
      address: "10.1.2.3/16",
      gateway: "10.1.0.1",
      dns: [],
    };
    assert.deepEqual((await admin.setNetworkSettings(settings)).settings, settings);
    const file = join(scratch, "networkd", NETWORKD_FILE);
    for (let tries = 0; networkctl.length < 2 && tries < 100; tries += 1) await sleep(20);
    assert.deepEqual(networkctl, ["reload", "reconfigure eth0"]);
    assert.match(await readFile(file, "utf8"), /^Address=10\.1\.2\.3\/16$/m);
    const entry = audited.at(-1);
    assert.deepEqual(
      [entry?.action, entry?.target, entry?.outcome],
      ["system.network", "static 10.1.2.3/16", "success"],
    );
  });

  it("answers a problem with each wrong field, and applies nothing", async () => {
    networkctl.length = 0;
    const error = await rejection(
      admin.setNetworkSettings({
        mode: "static",
        interface: "../x",
        address: "10.1.2.3/16",
        gateway: "10.2.0.1",
      }),
      ApiError,
    );
    assert.equal(error.problem.code, "invalid_argument");
    assert.deepEqual(
      error.problem.issues?.map((issue) => issue.field),
      ["interface", "gateway"],
    );
    const unknown = await rejection(
      admin.setNetworkSettings({
        mode: "static",
        interface: "eth1",
        address: "10.1.2.3/16",
        gateway: "10.1.0.1",
      }),
      ApiError,
    );
    assert.match(
      unknown.problem.issues?.[0]?.message ?? "",
      /no wired interface "eth1" \(it has: eth0\)/,
    );
    const huge = await rejection(
      admin.setNetworkSettings({ mode: "static", address: "1".repeat(100_000) }),
      ApiError,
    );
    assert.equal(huge.problem.status, 400);
    await sleep(50);
    assert.deepEqual(networkctl, []);
    assert.equal((await admin.networkSettings()).settings.mode, "static");
  });

  it("is for administrators only", async () => {
    for (const call of [user.networkSettings(), user.setNetworkSettings({ mode: "dhcp" })]) {
      assert.equal((await rejection(call, ApiError)).problem.code, "forbidden");
    }
  });
});
