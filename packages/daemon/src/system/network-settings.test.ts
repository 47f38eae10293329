import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import {
  compileNetworkdFile,
  dhcpForced,
  matchedInterface,
  parseNetworkSettings,
} from "./network-settings.js";

const STATIC = {
  mode: "static",
  interface: "enp1s0",
  address: "192.168.1.50/24",
  gateway: "192.168.1.1",
  dns: [],
};

/** The fields the refusal of `input` names, each with its message. */
function issues(input: unknown): Record<string, string> {
  try {
    parseNetworkSettings(input);
  } catch (error) {
    assert.ok(error instanceof TownError && error.code === "invalid_argument", String(error));
    return Object.fromEntries(
      error.issues.map((issue) => [issue.field ?? "", issue.message] as const),
    );
  }
  assert.fail(`accepted ${JSON.stringify(input)}`);
}

describe("network settings", () => {
  it("accepts DHCP and a fixed address, in canonical form", () => {
    assert.deepEqual(parseNetworkSettings({ mode: "dhcp", address: "ignored" }), { mode: "dhcp" });
    assert.deepEqual(parseNetworkSettings(STATIC), STATIC);
    assert.deepEqual(
      parseNetworkSettings({
        ...STATIC,
        address: " 10.0.0.2/8 ",
        gateway: "10.200.0.1",
        dns: ["1.1.1.1", "9.9.9.9", "1.1.1.1"],
      }),
      { ...STATIC, address: "10.0.0.2/8", gateway: "10.200.0.1", dns: ["1.1.1.1", "9.9.9.9"] },
    );
    assert.deepEqual(parseNetworkSettings({ ...STATIC, dns: undefined }), STATIC);
  });

  it("names every missing or wrong field", () => {
    assert.deepEqual(issues({ mode: "manual" }), { mode: 'must be "dhcp" or "static"' });
    assert.deepEqual(issues(null), { mode: 'must be "dhcp" or "static"' });
    assert.deepEqual(Object.keys(issues({ mode: "static" })), ["interface", "address", "gateway"]);
    assert.match(issues({ ...STATIC, address: "192.168.1.50" }).address ?? "", /prefix length/);
    assert.match(issues({ ...STATIC, address: "192.168.1.50/31" }).address ?? "", /8 to 30/);
    assert.match(issues({ ...STATIC, address: "192.168.1.50/7" }).address ?? "", /8 to 30/);
    assert.match(issues({ ...STATIC, address: "192.168.1.0/24" }).address ?? "", /network's own/);
    assert.match(issues({ ...STATIC, address: "192.168.1.255/24" }).address ?? "", /broadcast/);
    assert.match(issues({ ...STATIC, address: "192.168.1.256/24" }).address ?? "", /not an IPv4/);
    assert.match(issues({ ...STATIC, address: "192.168.01.5/24" }).address ?? "", /not an IPv4/);
    assert.match(issues({ ...STATIC, address: "127.0.0.5/8" }).address ?? "", /loopback/);
    assert.match(issues({ ...STATIC, address: "169.254.3.4/16" }).address ?? "", /link-local/);
    assert.match(issues({ ...STATIC, address: "224.0.0.5/24" }).address ?? "", /multicast/);
    assert.match(issues({ ...STATIC, address: "0.0.0.1/8" }).address ?? "", /0\.0\.0\.0\/8/);
    assert.match(issues({ ...STATIC, gateway: "192.168.2.1" }).gateway ?? "", /inside 192.168.1.0/);
    assert.match(issues({ ...STATIC, gateway: "192.168.1.50" }).gateway ?? "", /own address/);
    assert.match(issues({ ...STATIC, gateway: "192.168.1.255" }).gateway ?? "", /broadcast/);
    assert.match(issues({ ...STATIC, dns: ["1.1.1.1", "nope"] })["dns.1"] ?? "", /not an IPv4/);
    assert.match(issues({ ...STATIC, dns: ["127.0.0.1"] })["dns.0"] ?? "", /loopback/);
    assert.match(
      issues({ ...STATIC, dns: ["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"] }).dns ?? "",
      /at most 3/,
    );
    assert.match(issues({ ...STATIC, dns: "1.1.1.1" }).dns ?? "", /at most 3/);
  });

  it("refuses hostile interface names and input", () => {
    for (const name of ["../x", "eth0/..", "..", ".", "eth 0", "eth0\nName=*", "a".repeat(16)]) {
      assert.ok(issues({ ...STATIC, interface: name }).interface, JSON.stringify(name));
    }
    assert.match(issues({ ...STATIC, interface: "eth0\u001b" }).interface ?? "", /U\+001B/);
    // A line break would add a networkd directive of the sender's choosing.
    assert.ok(issues({ ...STATIC, gateway: "192.168.1.1\nDNS=6.6.6.6" }).gateway);
    const huge = "1".repeat(1_000_000);
    const message = issues({ ...STATIC, address: `${huge}/24`, gateway: huge }).gateway ?? "";
    assert.ok(message.length < 200, "a huge value is not echoed whole");
  });

  it("compiles a fixed address to a networkd file, DHCP to none", () => {
    assert.equal(compileNetworkdFile({ mode: "dhcp" }), null);
    assert.equal(
      compileNetworkdFile(parseNetworkSettings(STATIC)),
      `# Written by the Town OS daemon from the network settings on the data pool.
[Match]
Name=enp1s0

[Network]
DHCP=no
Address=192.168.1.50/24
Gateway=192.168.1.1
DNS=192.168.1.1
IPv6AcceptRA=yes
`,
    );
    const twoServers = compileNetworkdFile(
      parseNetworkSettings({ ...STATIC, dns: ["9.9.9.9", "1.1.1.1"] }),
    );
    assert.match(twoServers ?? "", /\nDNS=9\.9\.9\.9\nDNS=1\.1\.1\.1\n/);
    assert.equal(matchedInterface(twoServers ?? ""), "enp1s0");
    assert.equal(matchedInterface("[Match]\nName=../x\n"), undefined);
  });

  it("reads town.network=dhcp from the kernel command line", () => {
    assert.equal(dhcpForced("BOOT_IMAGE=/vmlinuz boot=live town.network=dhcp quiet\n"), true);
    assert.equal(dhcpForced("boot=live town.network=static town.network=dhcpx"), false);
  });
});
