/**
 * The network settings through a real daemon and the `town network`
 * commands: saved settings applied when the daemon starts, a change applied
 * after it is answered, the rescue boot option. The networkd directory is a
 * temp dir written for real; networkctl is recorded, not run: this host has
 * no systemd-networkd, and a test must never move a real host's address.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { TownClient } from "@townos/client";
import { runTownCaptured } from "../../../cli/test/run-town.js";
import { startDaemon, type RunningDaemon } from "../daemon.js";
import { setupAdmin, testDaemonConfig } from "../../test/daemon.js";
import { NETWORK_DIR, NETWORKD_FILE, SETTINGS_FILE } from "./os-network.js";

describe("the box's network settings on a real daemon", { timeout: 60_000 }, () => {
  let scratch = "";
  let daemon: RunningDaemon;
  let env: NodeJS.ProcessEnv;
  let networkdFile = "";
  let cmdline = "";
  const networkctl: string[] = [];

  /** Waits until networkctl has been called `count` times in all. */
  const applied = async (count: number): Promise<void> => {
    for (let tries = 0; networkctl.length < count && tries < 250; tries += 1) await sleep(20);
    assert.equal(networkctl.length, count, networkctl.join("; "));
  };
  const startWith = async (): Promise<void> => {
    daemon = await startDaemon(
      testDaemonConfig(scratch, {
        networkdDir: join(scratch, "networkd"),
        osNetworkHost: {
          sysClassNet: join(scratch, "net"),
          cmdlineFile: cmdline,
          networkctl: (args) => {
            networkctl.push(args.join(" "));
            return Promise.resolve();
          },
        },
      }),
    );
    await daemon.booted;
  };

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-os-network-"));
    networkdFile = join(scratch, "networkd", NETWORKD_FILE);
    cmdline = join(scratch, "cmdline");
    await writeFile(cmdline, "boot=live quiet\n");
    await mkdir(join(scratch, "net", "enp1s0", "device"), { recursive: true });
    // Saved on the pool at an earlier boot.
    await mkdir(join(scratch, "data", NETWORK_DIR), { recursive: true });
    await writeFile(
      join(scratch, "data", NETWORK_DIR, SETTINGS_FILE),
      JSON.stringify({
        mode: "static",
        interface: "enp1s0",
        address: "192.168.7.20/24",
        gateway: "192.168.7.1",
        dns: [],
      }),
    );
    await startWith();
    env = { TOWN_SERVER: daemon.url, TOWN_TOKEN: (await setupAdmin(daemon)).token };
  });
  after(async () => {
    await daemon.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  const town = (...argv: string[]) => runTownCaptured(argv, { cwd: scratch, env });

  it("applies the saved address when it starts", async () => {
    await applied(2);
    assert.deepEqual(networkctl, ["reload", "reconfigure enp1s0"]);
    assert.match(await readFile(networkdFile, "utf8"), /^Address=192\.168\.7\.20\/24$/m);
    const shown = await town("network");
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /Address: 192\.168\.7\.20\/24 on enp1s0, fixed/);
    assert.match(shown.stdout, /DNS: +192\.168\.7\.1 \(the gateway\)/);
    assert.match(shown.stdout, /enp1s0/);
    assert.doesNotMatch(shown.stdout, /unused|town\.network=dhcp|failed/);
  });

  it("changes it with town network static and dhcp, refusing what is wrong", async () => {
    const refused = await town(
      "network",
      "static",
      "--interface",
      "eth9",
      "--address",
      "10.0.0.300/8",
      "--gateway",
      "10.0.0.1",
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /address: "10\.0\.0\.300" is not an IPv4 address/);
    const changed = await town(
      "network",
      "static",
      "--interface",
      "enp1s0",
      "--address",
      "10.0.0.5/8",
      "--gateway",
      "10.0.0.1",
      "--dns",
      "9.9.9.9",
      "--dns",
      "1.1.1.1",
    );
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stdout, /The box takes the address 10\.0\.0\.5 now/);
    await applied(4);
    assert.match(await readFile(networkdFile, "utf8"), /^DNS=9\.9\.9\.9\nDNS=1\.1\.1\.1$/m);

    const dhcp = await town("network", "dhcp");
    assert.equal(dhcp.code, 0, dhcp.stderr);
    assert.match(dhcp.stdout, /Address: by DHCP/);
    await applied(6);
    await assert.rejects(stat(networkdFile), /ENOENT/);
  });

  it("keeps DHCP for a boot with town.network=dhcp, and says so", async () => {
    await town(
      "network",
      "static",
      "--interface",
      "enp1s0",
      "--address",
      "10.0.0.5/8",
      "--gateway",
      "10.0.0.1",
    );
    await applied(8);
    await daemon.stop();
    await writeFile(cmdline, "boot=live town.network=dhcp\n");
    networkctl.length = 0;
    await startWith();
    const { token } = await new TownClient({ baseUrl: daemon.url }).login({
      username: "admin",
      password: "admin-password-3f9c",
    });
    env = { TOWN_SERVER: daemon.url, TOWN_TOKEN: token };
    await applied(2);
    await assert.rejects(stat(networkdFile), /ENOENT/);
    const shown = await town("network");
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /Address: 10\.0\.0\.5\/8 on enp1s0, fixed/);
    assert.match(shown.stdout, /Started with town\.network=dhcp/);
  });
});
