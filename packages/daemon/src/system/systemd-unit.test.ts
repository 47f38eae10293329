import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runsUnderSystemd, systemdRunArgv, unitName } from "./systemd-unit.js";

describe("helpers as systemd units", () => {
  it("names a helper's unit with letters, digits and dashes only", () => {
    assert.equal(unitName("caddy"), "town-caddy.service");
    assert.equal(unitName("Node Exporter"), "town-node-exporter.service");
    assert.equal(unitName("vm family.photos--x"), "town-vm-family-photos-x.service");
    assert.throws(() => unitName("…"), /no unit name/);
  });

  it("runs the launch with its environment, directory and log, as a unit collected when it ends", () => {
    assert.deepEqual(
      systemdRunArgv(
        "town-haproxy.service",
        {
          argv: ["/usr/sbin/haproxy", "-W", "-f", "/var/lib/town/network/haproxy.cfg"],
          cwd: "/var/lib/town/network",
          env: { PATH: "/usr/sbin:/usr/bin", NOTHING: undefined },
        },
        { path: "/var/lib/town/network/haproxy.log" },
      ),
      [
        "--unit=town-haproxy.service",
        "--collect",
        "--quiet",
        "--property=Type=exec",
        "--property=StandardOutput=append:/var/lib/town/network/haproxy.log",
        "--property=StandardError=append:/var/lib/town/network/haproxy.log",
        "--working-directory=/var/lib/town/network",
        "--setenv=PATH=/usr/sbin:/usr/bin",
        "--",
        "/usr/sbin/haproxy",
        "-W",
        "-f",
        "/var/lib/town/network/haproxy.cfg",
      ],
    );
  });

  it("passes the daemon's environment by default, without what systemd set for the daemon's own service", () => {
    const argv = systemdRunArgv("town-caddy.service", { argv: ["caddy", "run"] }, undefined, {
      HOME: "/root",
      INVOCATION_ID: "0f3c",
      NOTIFY_SOCKET: "/run/systemd/notify",
      TOWN_DATA_DIR: "/var/lib/town",
    });
    assert.deepEqual(
      argv.filter((part) => part.startsWith("--setenv=")),
      ["--setenv=HOME=/root", "--setenv=TOWN_DATA_DIR=/var/lib/town"],
    );
    assert.ok(argv.includes("--property=StandardOutput=null"));
    assert.ok(argv.includes("--property=StandardError=null"));
  });

  it("leaves stdout out when the owner asks, keeping stderr", () => {
    const argv = systemdRunArgv(
      "town-dnsmasq.service",
      { argv: ["dnsmasq"], env: {} },
      { path: "/tmp/dnsmasq.log", stdout: false },
    );
    assert.ok(argv.includes("--property=StandardOutput=null"));
    assert.ok(argv.includes("--property=StandardError=append:/tmp/dnsmasq.log"));
  });

  it("is used only by a daemon that systemd runs as a service", () => {
    assert.equal(runsUnderSystemd({ INVOCATION_ID: "0f3c" }, true), true);
    assert.equal(runsUnderSystemd({}, true), false);
    // An invocation id alone is not systemd: the machine must have booted with it.
    assert.equal(runsUnderSystemd({ INVOCATION_ID: "0f3c" }, false), false);
  });
});
