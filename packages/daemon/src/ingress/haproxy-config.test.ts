import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { after, describe, it } from "node:test";
import { TownError } from "@townos/format";
import { haproxyCheck, haproxyDir, haproxyMissing, writeHaproxyFiles } from "../../test/haproxy.js";
import { HAPROXY_CONFIG_FILE, haproxyFiles, type HaproxyInput } from "./haproxy-config.js";
import { LAN_SOURCE_RANGES } from "./lan.js";

const base: HaproxyInput = {
  local: [
    { host: "blog.home", root: "blog/20261203T101010000Z-ab12" },
    { host: "gitea.default.home", upstream: "127.0.0.1:10001" },
    { host: "town.home", upstream: "127.0.0.1:5309" },
    { host: "wiki.default.home", upstream: "127.0.0.1:10002" },
  ],
  publicRoutes: [
    { host: "blog.example.org", root: "blog/20261203T101010000Z-ab12" },
    { host: "git.example.org", upstream: "127.0.0.1:10001" },
  ],
  httpsPort: 443,
  httpPort: 80,
  sitesAddress: "127.0.0.1:10080",
  acmeChallengeAddress: "127.0.0.1:10081",
  dir: "/var/lib/town/haproxy",
};

function cfg(input: HaproxyInput): string {
  const text = haproxyFiles(input)[HAPROXY_CONFIG_FILE];
  assert.ok(text !== undefined);
  return text;
}

/** The config's lines, without indentation. */
function cfgLines(input: HaproxyInput): string[] {
  return cfg(input)
    .split("\n")
    .map((line) => line.trim());
}

function rejects(input: HaproxyInput, pattern: RegExp): void {
  assert.throws(
    () => haproxyFiles(input),
    (error: unknown) => {
      assert.ok(error instanceof TownError);
      assert.equal(error.code, "invalid_argument");
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe("haproxyFiles", () => {
  it("maps every name, sorted, to its upstream's backend or to the sites backend", () => {
    assert.equal(
      haproxyFiles(base)["hosts.map"],
      [
        "blog.example.org sites",
        "blog.home sites",
        "git.example.org up_127.0.0.1:10001",
        "gitea.default.home up_127.0.0.1:10001",
        "town.home up_127.0.0.1:5309",
        "wiki.default.home up_127.0.0.1:10002",
        "",
      ].join("\n"),
    );
  });

  it("has one backend per distinct upstream, and the sites and ACME backends on Caddy", () => {
    const text = cfg(base);
    const backends = [...text.matchAll(/^backend (\S+)\n {4}(.*)$/gm)].map(
      ([, name, server]) => `${name} ${server}`,
    );
    assert.deepEqual(backends, [
      'unknown_host http-request return status 404 content-type text/plain string "No site has this name here.\\n"',
      "acme server caddy 127.0.0.1:10081",
      "sites server caddy 127.0.0.1:10080",
      "up_127.0.0.1:10001 server s 127.0.0.1:10001 init-addr last,libc,none",
      "up_127.0.0.1:10002 server s 127.0.0.1:10002 init-addr last,libc,none",
      "up_127.0.0.1:5309 server s 127.0.0.1:5309 init-addr last,libc,none",
    ]);
    assert.ok(
      text.includes(
        "    use_backend %[req.hdr(host),lower,field(1,:),map(/var/lib/town/haproxy/hosts.map)]\n",
      ),
    );
  });

  it("gives an IPv6 upstream unbracketed with its family, a DNS name as it is", () => {
    const text = cfg({
      ...base,
      local: [
        { host: "a.home", upstream: "[::1]:8080" },
        { host: "b.home", upstream: "localhost:8081" },
      ],
    });
    assert.match(text, /^backend up_::1:8080\n {4}server s ipv6@::1:8080 init-addr/m);
    assert.match(text, /^backend up_localhost:8081\n {4}server s localhost:8081 init-addr/m);
  });

  it("redirects HTTP to HTTPS, naming the HTTPS port only when it is not 443", () => {
    const redirect = (input: HaproxyInput): string | undefined =>
      cfgLines(input).find((line) => line.startsWith("http-request redirect"));
    assert.equal(
      redirect(base),
      "http-request redirect code 308 location https://%[req.hdr(host),field(1,:)]%[capture.req.uri] unless { path_beg /.well-known/acme-challenge/ }",
    );
    assert.equal(
      redirect({ ...base, httpsPort: 8443 }),
      "http-request redirect code 308 location https://%[req.hdr(host),field(1,:)]:8443%[capture.req.uri] unless { path_beg /.well-known/acme-challenge/ }",
    );
    assert.ok(
      cfgLines(base).includes("use_backend acme if { path_beg /.well-known/acme-challenge/ }"),
    );
  });

  it("lists exactly the local names as local, and the LAN ranges as the LAN", () => {
    const files = haproxyFiles(base);
    assert.equal(
      files["local-hosts.lst"],
      "blog.home\ngitea.default.home\ntown.home\nwiki.default.home\n",
    );
    assert.equal(files["lan-sources.lst"], LAN_SOURCE_RANGES.map((range) => `${range}\n`).join(""));
    const lines = cfgLines(base);
    assert.ok(
      lines.includes(
        "tcp-request session reject if { ssl_fc_sni,lower -m str -f /var/lib/town/haproxy/local-hosts.lst } !{ src -f /var/lib/town/haproxy/lan-sources.lst }",
      ),
    );
    assert.ok(
      lines.some(
        (line) =>
          line.startsWith("http-request return status 403 ") &&
          line.endsWith(
            "if !{ src -f /var/lib/town/haproxy/lan-sources.lst } { req.hdr(host),lower,field(1,:) -m str -f /var/lib/town/haproxy/local-hosts.lst }",
          ),
      ),
    );
  });

  it("replaces the client's forwarding headers with its own, and drops the others", () => {
    const lines = cfgLines(base);
    for (const line of [
      "http-request set-header X-Forwarded-For %[src]",
      "http-request set-header X-Forwarded-Proto https",
      "http-request set-header X-Forwarded-Host %[req.hdr(host)]",
      "http-request del-header X-Forwarded-Port",
      "http-request del-header Forwarded",
    ])
      assert.ok(lines.includes(line), line);
    // forwardfor would add a second X-Forwarded-For beside the client's.
    assert.ok(!lines.includes("option forwardfor"));
  });

  it("drops to the user and sets the threads only when given; never logs", () => {
    const plain = cfgLines(base);
    assert.ok(!plain.some((line) => /^(user|group|nbthread|log) /.test(line)));
    const given = cfgLines({ ...base, user: { name: "town", group: "town" }, threads: 4 });
    for (const line of ["user town", "group town", "nbthread 4"])
      assert.ok(given.includes(line), line);
    assert.ok(
      plain.includes(
        "stats socket /var/lib/town/haproxy/admin.sock mode 600 level admin expose-fd listeners",
      ),
    );
  });

  it("gives the same files for the same input", () => {
    assert.deepEqual(haproxyFiles(base), haproxyFiles(structuredClone(base)));
  });

  it("refuses whatever could break a line of HAProxy's syntax", () => {
    const local = (entry: HaproxyInput["local"][number]): HaproxyInput => ({
      ...base,
      local: [entry],
    });
    rejects(
      local({ host: "evil.home\nuser root", upstream: "127.0.0.1:1" }),
      /host "evil\.home\\u000auser root"/,
    );
    rejects(local({ host: "evil.home x", upstream: "127.0.0.1:1" }), /host/);
    rejects(local({ host: "evil.home#", upstream: "127.0.0.1:1" }), /host/);
    rejects(local({ host: "a.home", upstream: "127.0.0.1:1 backup" }), /is not HOST:PORT/);
    rejects(local({ host: "a.home", upstream: "[::1 ]:1" }), /is not HOST:PORT/);
    rejects({ ...base, sitesAddress: "127.0.0.1:1\n" }, /is not HOST:PORT/);
    rejects({ ...base, dir: "/var/lib/town haproxy" }, /dir/);
    rejects({ ...base, dir: "relative" }, /not absolute/);
    rejects({ ...base, user: { name: "town\ngroup root", group: "town" } }, /user/);
    rejects({ ...base, httpPort: 0 }, /not a port/);
    rejects({ ...base, threads: 1.5 }, /threads/);
    rejects(
      { ...base, publicRoutes: [{ host: "town.home", upstream: "127.0.0.1:1" }] },
      /listed twice/,
    );
  });
});

describe("haproxy -c accepts the config", { skip: haproxyMissing() }, () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  const cases: [string, Partial<HaproxyInput>][] = [
    ["as it is", {}],
    [
      "with a user, threads and another HTTPS port",
      { user: { name: "nobody", group: "nogroup" }, threads: 2, httpsPort: 8443 },
    ],
    [
      "with IPv6 and DNS-name upstreams, one that does not resolve",
      {
        publicRoutes: [
          { host: "a.example.org", upstream: "[::1]:8080" },
          { host: "b.example.org", upstream: "localhost:8081" },
          { host: "c.example.org", upstream: "nowhere.invalid:8082" },
        ],
      },
    ],
    ["with no names at all", { local: [], publicRoutes: [] }],
  ];
  for (const [what, change] of cases) {
    it(what, async () => {
      const { dir } = await haproxyDir(["town.home"]);
      dirs.push(dir);
      const output = await haproxyCheck(
        await writeHaproxyFiles(dir, haproxyFiles({ ...base, ...change, dir })),
      );
      assert.match(output, /Configuration file is valid/);
      // The only warning allowed: the name that does not resolve.
      const warnings = output.split("\n").filter((line) => line.includes("[WARNING]"));
      assert.deepEqual(
        warnings.filter((line) => !line.includes("could not resolve address 'nowhere.invalid'")),
        [],
      );
    });
  }
});
