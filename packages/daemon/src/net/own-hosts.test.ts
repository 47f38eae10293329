import assert from "node:assert/strict";
import type { NetworkInterfaceInfo } from "node:os";
import { describe, it } from "node:test";
import { OWN_HOSTS_TTL_MS, ownHostsReader, readOwnHosts } from "./own-hosts.js";

const lease = (address: string): NetworkInterfaceInfo => ({
  address,
  netmask: "255.255.255.0",
  family: "IPv4",
  mac: "52:54:00:12:34:56",
  internal: false,
  cidr: `${address}/24`,
});

describe("the box's own hosts", () => {
  it("are its names, its addresses and the extra hosts it was given", () => {
    const hosts = readOwnHosts(
      ["Town.Example"],
      {
        enp1s0: [
          lease("192.168.1.20"),
          {
            address: "FE80::5054:FF:FE12:3456",
            netmask: "ffff:ffff:ffff:ffff::",
            family: "IPv6",
            mac: "52:54:00:12:34:56",
            internal: false,
            cidr: "fe80::5054:ff:fe12:3456/64",
            scopeid: 2,
          },
        ],
      },
      "Town-OS",
    );
    for (const host of [
      "localhost",
      "town-os",
      "town-os.local",
      "192.168.1.20",
      "[fe80::5054:ff:fe12:3456]",
      "town.example",
    ]) {
      assert.ok(hosts.has(host), host);
    }
    assert.equal(hosts.has("192.168.1.21"), false);
  });

  it("follow a new DHCP lease within seconds", () => {
    let now = 0;
    let address = "192.168.1.20";
    const hosts = ownHostsReader(
      () => readOwnHosts([], { enp1s0: [lease(address)] }, "town-os"),
      () => now,
    );
    assert.ok(hosts().has("192.168.1.20"));
    address = "192.168.1.57";
    now += OWN_HOSTS_TTL_MS - 1;
    // Read at most once per period: a flood of requests costs no interface listing each.
    assert.equal(hosts().has("192.168.1.57"), false);
    now += 1;
    assert.ok(hosts().has("192.168.1.57"));
    assert.equal(hosts().has("192.168.1.20"), false);
  });
});
