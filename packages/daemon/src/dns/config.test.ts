import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import {
  boxDnsRecords,
  compileDnsConfig,
  upstreamsFromResolvConf,
  type DnsConfigInput,
} from "./config.js";

const paths = { hostsFile: "/var/lib/town/dns/hosts", serversFile: "/var/lib/town/dns/servers" };

const input: DnsConfigInput = {
  records: [
    { name: "wiki.default.home", address: "192.168.1.20" },
    { name: "town.home", address: "192.168.1.20" },
    { name: "App.Default.Home.", address: "192.168.1.20" },
    { name: "town.home", address: "FD00::20" },
    { name: "town.home", address: "192.168.1.20" },
  ],
  upstreams: [{ address: "9.9.9.9" }, { address: "127.0.0.1", port: 5300 }],
  listen: { addresses: ["192.168.1.20", "127.0.0.1"], port: 53 },
  localDomains: ["home"],
};

describe("compileDnsConfig", () => {
  it("writes sorted, deduplicated files", () => {
    const compiled = compileDnsConfig(input, paths);
    assert.equal(
      compiled.hosts,
      [
        "192.168.1.20 app.default.home",
        "192.168.1.20 town.home",
        "fd00::20 town.home",
        "192.168.1.20 wiki.default.home",
        "",
      ].join("\n"),
    );
    assert.equal(compiled.servers, "server=/home/\nserver=127.0.0.1#5300\nserver=9.9.9.9#53\n");
    assert.match(compiled.conf, /^port=53$/m);
    assert.match(compiled.conf, /^listen-address=127\.0\.0\.1\nlisten-address=192\.168\.1\.20$/m);
    assert.match(compiled.conf, /^addn-hosts=\/var\/lib\/town\/dns\/hosts$/m);
    assert.match(compiled.conf, /^no-resolv$/m);
    assert.match(compiled.conf, /^no-hosts$/m);
    assert.doesNotMatch(compiled.conf, /dhcp-range/);
    assert.equal(compiled.recordCount, 4);
    assert.deepEqual(compiled.upstreams, ["127.0.0.1#5300", "9.9.9.9#53"]);
  });

  it("hashes content, not order; records leave the main configuration alone", () => {
    const a = compileDnsConfig(input, paths);
    const b = compileDnsConfig({ ...input, records: [...input.records].reverse() }, paths);
    assert.equal(a.hash, b.hash);
    const c = compileDnsConfig({ ...input, records: input.records.slice(1) }, paths);
    assert.notEqual(a.hash, c.hash);
    assert.equal(a.confHash, c.confHash);
    const d = compileDnsConfig({ ...input, listen: { ...input.listen, port: 5353 } }, paths);
    assert.notEqual(a.confHash, d.confHash);
  });

  it("refuses bad names, addresses, ports and paths, naming each", () => {
    let caught: unknown;
    try {
      compileDnsConfig(
        {
          records: [
            { name: "bad name.home", address: "192.168.1.20" },
            { name: "ok.home", address: "192.168.1.300" },
            { name: `${"a".repeat(64)}.home`, address: "192.168.1.20" },
          ],
          upstreams: [{ address: "9.9.9.9", port: 70000 }],
          listen: { addresses: [], port: 0 },
          localDomains: ["home\nserver=1.2.3.4"],
        },
        { hostsFile: "/tmp/x\nport=1", serversFile: "relative" },
      );
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof TownError);
    assert.equal(caught.code, "invalid_argument");
    assert.deepEqual(
      caught.issues.map((issue) => issue.field),
      [
        "records.0.name",
        "records.1.address",
        "records.2.name",
        "upstreams.0.port",
        "localDomains.0",
        "listen.addresses",
        "listen.port",
        "hostsFile",
        "serversFile",
      ],
    );
  });
});

describe("upstreamsFromResolvConf", () => {
  const resolv = [
    "# generated",
    "search lan",
    "nameserver 192.168.1.1",
    "nameserver 127.0.0.1",
    "nameserver not-an-address",
    "  nameserver 2001:db8::1  ",
    "nameserver 0.0.0.0",
  ].join("\n");

  it("skips the box itself when it listens on port 53", () => {
    assert.deepEqual(
      upstreamsFromResolvConf(resolv, { addresses: ["127.0.0.1"], port: 53 }).map(
        (upstream) => upstream.address,
      ),
      ["192.168.1.1", "2001:db8::1"],
    );
  });

  it("keeps a local resolver on port 53 when the box listens elsewhere", () => {
    assert.deepEqual(
      upstreamsFromResolvConf(resolv, { addresses: ["127.0.0.1"], port: 5353 }).map(
        (upstream) => upstream.address,
      ),
      ["192.168.1.1", "127.0.0.1", "2001:db8::1"],
    );
  });
});

describe("boxDnsRecords", () => {
  it("points every app name and box name at every box address", () => {
    assert.deepEqual(
      boxDnsRecords({
        tld: "home",
        addresses: ["192.168.1.20", "fd00::20"],
        apps: [{ repo: "default", instance: "wiki" }],
        boxNames: ["town.home"],
      }),
      [
        { name: "town.home", address: "192.168.1.20" },
        { name: "town.home", address: "fd00::20" },
        { name: "wiki.default.home", address: "192.168.1.20" },
        { name: "wiki.default.home", address: "fd00::20" },
      ],
    );
  });
});
