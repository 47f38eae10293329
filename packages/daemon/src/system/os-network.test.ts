/**
 * The network settings on a temp data pool and applied into a temp networkd
 * directory, for real; only networkctl is recorded instead of run (this
 * host runs no systemd-networkd, and a test must not move a real host).
 */
import assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TownError } from "@townos/format";
import { NETWORK_DIR, NETWORKD_FILE, OsNetwork, type OsNetworkHost } from "./os-network.js";
import { wiredInterfaces } from "./wired-interfaces.js";

const STATIC = {
  mode: "static" as const,
  interface: "eth0",
  address: "192.168.1.50/24",
  gateway: "192.168.1.1",
  dns: ["9.9.9.9"],
};

/** A /sys/class/net with a wired card, a Wi-Fi card, loopback and a bridge. */
async function fakeSysClassNet(dir: string): Promise<string> {
  const net = join(dir, "sys-class-net");
  for (const [name, entries] of [
    ["eth0", ["device"]],
    ["enp2s0", ["device"]],
    ["wlan0", ["device", "wireless"]],
    ["wlp3s0", ["device", "phy80211"]],
    ["lo", []],
    ["podman0", ["bridge"]],
  ] as const) {
    await mkdir(join(net, name), { recursive: true });
    for (const entry of entries) await mkdir(join(net, name, entry));
  }
  return net;
}

describe("the box's network settings", () => {
  let scratch = "";
  let host: Partial<OsNetworkHost> = {};
  let cmdline = "";
  const calls: string[] = [];
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-os-network-"));
    cmdline = join(scratch, "cmdline");
    await writeFile(cmdline, "boot=live quiet\n");
    host = {
      cmdlineFile: cmdline,
      sysClassNet: await fakeSysClassNet(scratch),
      networkctl: (args) => {
        calls.push(args.join(" "));
        return Promise.resolve();
      },
    };
  });
  after(() => rm(scratch, { recursive: true, force: true }));

  it("tells wired cards from loopback, bridges and Wi-Fi", async () => {
    const addresses = {
      eth0: [
        {
          address: "192.168.1.7",
          netmask: "255.255.255.0",
          family: "IPv4",
          mac: "",
          internal: false,
          cidr: "192.168.1.7/24",
        },
        {
          address: "fe80::1",
          netmask: "ffff::",
          family: "IPv6",
          mac: "",
          internal: false,
          cidr: "fe80::1/64",
          scopeid: 2,
        },
      ],
    } as const;
    assert.deepEqual(
      await wiredInterfaces(
        host.sysClassNet,
        addresses as unknown as Parameters<typeof wiredInterfaces>[1],
      ),
      [
        { name: "enp2s0", addresses: [] },
        { name: "eth0", addresses: ["192.168.1.7/24"] },
      ],
    );
    assert.deepEqual(await wiredInterfaces(join(scratch, "absent")), []);
  });

  it("keeps them on the pool and applies them to networkd, only when they change", async () => {
    const dataDir = join(scratch, "data");
    const networkdDir = join(scratch, "run-systemd-network");
    const network = new OsNetwork(dataDir, networkdDir, host);
    const file = join(networkdDir, NETWORKD_FILE);
    assert.deepEqual(await network.read(), { mode: "dhcp" });
    await network.apply();
    assert.deepEqual(calls, [], "DHCP with no file: nothing to do");

    await network.replace(STATIC);
    assert.equal((await stat(join(dataDir, NETWORK_DIR))).mode & 0o777, 0o700);
    assert.equal((await stat(network.path)).mode & 0o777, 0o600);
    await assert.rejects(stat(file), /ENOENT/, "saving does not apply");
    await network.apply();
    assert.match(await readFile(file, "utf8"), /^Name=eth0$[^]*^Address=192\.168\.1\.50\/24$/m);
    assert.equal((await stat(file)).mode & 0o777, 0o644);
    assert.deepEqual(calls.splice(0), ["reload", "reconfigure eth0"]);
    await network.apply();
    assert.deepEqual(calls, [], "unchanged: networkd is left alone");

    await network.replace({ ...STATIC, interface: "enp2s0" });
    await network.apply();
    assert.deepEqual(calls.splice(0), ["reload", "reconfigure eth0", "reconfigure enp2s0"]);

    await network.replace({ mode: "dhcp" });
    await network.apply();
    await assert.rejects(stat(file), /ENOENT/);
    assert.deepEqual(calls.splice(0), ["reload", "reconfigure enp2s0"]);
    assert.equal((await network.status()).error, null);
  });

  it("refuses an interface the box does not have, or not wired", async () => {
    const network = new OsNetwork(join(scratch, "refused"), undefined, host);
    for (const name of ["wlan0", "lo", "eth9"]) {
      await assert.rejects(
        network.replace({ ...STATIC, interface: name }),
        (error) =>
          error instanceof TownError &&
          error.issues[0]?.field === "interface" &&
          /has: enp2s0, eth0/.test(error.message),
      );
    }
    assert.deepEqual(await network.read(), { mode: "dhcp" });
  });

  it("falls back to DHCP for a boot with town.network=dhcp, and says so", async () => {
    const networkdDir = join(scratch, "rescue-networkd");
    const network = new OsNetwork(join(scratch, "rescue"), networkdDir, host);
    await network.replace(STATIC);
    await network.apply();
    calls.splice(0);
    await writeFile(cmdline, "boot=live town.network=dhcp\n");
    try {
      const status = await network.status();
      assert.deepEqual([status.settings, status.served, status.overridden], [STATIC, true, true]);
      await network.apply();
      await assert.rejects(stat(join(networkdDir, NETWORKD_FILE)), /ENOENT/);
      assert.deepEqual(calls.splice(0), ["reload", "reconfigure eth0"]);
      // Off the image the command line means nothing.
      const offImage = new OsNetwork(join(scratch, "rescue"), undefined, host);
      assert.deepEqual(
        [(await offImage.status()).served, (await offImage.status()).overridden],
        [false, false],
      );
    } finally {
      await writeFile(cmdline, "boot=live quiet\n");
    }
  });

  it("reports a failed apply in its status until one works", async () => {
    let fail = true;
    const network = new OsNetwork(join(scratch, "failing"), join(scratch, "failing-networkd"), {
      ...host,
      networkctl: () =>
        fail ? Promise.reject(new TownError("io", "networkctl reload: no bus")) : Promise.resolve(),
    });
    await network.replace(STATIC);
    await assert.rejects(network.apply(), /no bus/);
    assert.equal((await network.status()).error, "networkctl reload: no bus");
    fail = false;
    await network.replace({ ...STATIC, gateway: "192.168.1.254" });
    await network.apply();
    assert.equal((await network.status()).error, null);
  });

  it("distrusts the file on the pool: checked again, bounded, never a link", async () => {
    const dataDir = join(scratch, "tampered");
    const network = new OsNetwork(dataDir, undefined, host);
    await mkdir(join(dataDir, NETWORK_DIR), { recursive: true });
    await writeFile(network.path, JSON.stringify({ ...STATIC, interface: "../x" }));
    await assert.rejects(network.read(), /unusable: network settings: interface/);
    await writeFile(network.path, "{");
    await assert.rejects(network.read(), /unusable/);
    await writeFile(network.path, " ".repeat(5000));
    await assert.rejects(network.read(), /at most 4096 bytes/);
    await rm(network.path);
    const elsewhere = join(scratch, "elsewhere.json");
    await writeFile(elsewhere, JSON.stringify(STATIC));
    await symlink(elsewhere, network.path);
    await assert.rejects(network.read(), /not a regular file/);
    // Saving replaces the link, never writes through it.
    await network.replace({ mode: "dhcp" });
    assert.equal((await lstat(network.path)).isFile(), true);
    assert.equal(await readFile(elsewhere, "utf8"), JSON.stringify(STATIC));

    const linkedDir = join(scratch, "linked-dir");
    await mkdir(join(linkedDir, "os"), { recursive: true });
    await symlink(join(scratch, "outside"), join(linkedDir, NETWORK_DIR));
    await mkdir(join(scratch, "outside"));
    await assert.rejects(
      new OsNetwork(linkedDir, undefined, host).replace(STATIC),
      /not a directory/,
    );
  });
});
