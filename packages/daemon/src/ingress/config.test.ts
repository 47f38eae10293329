import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import {
  compileIngress,
  configHash,
  LAN_SOURCE_RANGES,
  type IngressInput,
  type JsonObject,
} from "./config.js";

const base: IngressInput = {
  routes: [
    { host: "wiki.default.home", upstream: "127.0.0.1:10002" },
    { host: "gitea.default.home", upstream: "127.0.0.1:10001" },
  ],
  publicDomains: [{ host: "git.example.org", upstream: "127.0.0.1:10001" }],
  sites: [],
  publicSites: [],
  sitesRoot: "/proc/self/cwd/sites",
  dashboard: { host: "town.home", upstream: "127.0.0.1:5309" },
  httpsPort: 443,
  httpPort: 80,
  adminAddress: "unix//var/lib/town/ingress/admin.sock",
  storageDir: "/var/lib/town/ingress/storage",
  sitesAddress: "127.0.0.1:9181",
  acmeChallengeAddress: "127.0.0.1:9182",
  haproxyDir: "/var/lib/town/ingress/haproxy",
};

const VERSION = "blog/20261203T101010000Z-ab12";
const withSites: IngressInput = {
  ...base,
  sites: [
    { host: "notes.home", root: "notes/20261201T000000000Z-00ff" },
    { host: "blog.home", root: VERSION },
  ],
  publicSites: [{ host: "blog.example.org", root: VERSION }],
};

function path(config: JsonObject, ...keys: (string | number)[]): unknown {
  let value: unknown = config;
  for (const key of keys) value = (value as Record<string | number, unknown>)[key];
  return value;
}

function compileFails(input: IngressInput, field: string, pattern: RegExp): void {
  assert.throws(
    () => compileIngress(input),
    (error: unknown) => {
      assert.ok(error instanceof TownError);
      assert.equal(error.code, "invalid_argument");
      const issue = error.issues.find((candidate) => candidate.field === field);
      assert.ok(issue, `no issue for ${field}: ${JSON.stringify(error.issues)}`);
      assert.match(issue.message, pattern);
      return true;
    },
  );
}

describe("compileIngress", () => {
  it("has Caddy obtain a certificate for every name from the right issuer, serving no HTTPS itself", () => {
    const { config, localHosts, publicHosts } = compileIngress(base);
    assert.deepEqual(localHosts, ["gitea.default.home", "town.home", "wiki.default.home"]);
    assert.deepEqual(publicHosts, ["git.example.org"]);
    assert.deepEqual(path(config, "apps", "tls", "certificates", "automate"), [
      ...localHosts,
      ...publicHosts,
    ]);
    assert.deepEqual(path(config, "apps", "tls", "automation", "policies"), [
      { subjects: localHosts, issuers: [{ module: "internal" }] },
      {
        subjects: publicHosts,
        // HTTP-01 through HAProxy's HTTP port to the loopback solver; TLS-ALPN would need 443.
        issuers: [
          {
            module: "acme",
            challenges: {
              bind_host: "127.0.0.1",
              http: { alternate_port: 9182 },
              "tls-alpn": { disabled: true },
            },
          },
        ],
      },
    ]);
    assert.equal(
      path(config, "apps", "pki", "certificate_authorities", "local", "install_trust"),
      false,
    );
    assert.deepEqual(path(config, "storage"), {
      module: "file_system",
      root: "/var/lib/town/ingress/storage",
    });
    assert.equal(path(config, "admin", "listen"), base.adminAddress);
    // One server only, plain HTTP on loopback: the sites, behind HAProxy.
    const servers = path(config, "apps", "http", "servers") as JsonObject;
    assert.deepEqual(Object.keys(servers), ["sites"]);
    assert.deepEqual(path(servers, "sites", "listen"), ["127.0.0.1:9181"]);
    assert.deepEqual(path(servers, "sites", "automatic_https"), { disable: true });
    assert.deepEqual(path(servers, "sites", "routes"), []);
  });

  it("routes every name through HAProxy, local names marked LAN-only", () => {
    const { haproxy } = compileIngress(base);
    assert.equal(
      haproxy["hosts.map"],
      [
        "git.example.org up_127.0.0.1:10001",
        "gitea.default.home up_127.0.0.1:10001",
        "town.home up_127.0.0.1:5309",
        "wiki.default.home up_127.0.0.1:10002",
        "",
      ].join("\n"),
    );
    assert.equal(haproxy["local-hosts.lst"], "gitea.default.home\ntown.home\nwiki.default.home\n");
    assert.equal(
      haproxy["lan-sources.lst"],
      LAN_SOURCE_RANGES.map((range) => `${range}\n`).join(""),
    );
    assert.match(
      haproxy["haproxy.cfg"] ?? "",
      /^ {4}bind 0\.0\.0\.0:443 ssl crt-list \/var\/lib\/town\/ingress\/haproxy\/certs\.list /m,
    );
    // The ACME challenges HAProxy passes on go where Caddy's solver listens.
    assert.match(
      haproxy["haproxy.cfg"] ?? "",
      /^backend acme\n {4}server caddy 127\.0\.0\.1:9182$/m,
    );
    for (const range of ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8"])
      assert.ok(LAN_SOURCE_RANGES.includes(range), range);
    for (const range of ["::1/128", "fc00::/7", "fe80::/10"])
      assert.ok(LAN_SOURCE_RANGES.includes(range), range);
    // Carrier-grade NAT's neighbours are not the home network.
    assert.ok(!LAN_SOURCE_RANGES.includes("100.64.0.0/10"));
  });

  it("leaves out the ACME policy when there are no public names", () => {
    const { config } = compileIngress({ ...base, publicDomains: [] });
    assert.equal((path(config, "apps", "tls", "automation", "policies") as unknown[]).length, 1);
  });

  it("gives the same config and hash whatever the input order, and a new hash on change", () => {
    const first = compileIngress(base);
    const reordered = compileIngress({ ...base, routes: [...base.routes].reverse() });
    assert.equal(JSON.stringify(reordered.config), JSON.stringify(first.config));
    assert.equal(reordered.hash, first.hash);
    assert.equal(configHash(JSON.parse(JSON.stringify(first.config))), first.caddyHash);
    const changed = compileIngress({
      ...base,
      routes: [...base.routes, { host: "new.default.home", upstream: "127.0.0.1:10003" }],
    });
    assert.notEqual(changed.hash, first.hash);
    const moved = compileIngress({
      ...base,
      routes: base.routes.map((route, i) =>
        i === 0 ? { ...route, upstream: "127.0.0.1:10009" } : route,
      ),
    });
    assert.notEqual(moved.hash, first.hash);
    assert.match(first.hash, /^[0-9a-f]{64}$/);
  });

  it("lower-cases names", () => {
    const { localHosts } = compileIngress({
      ...base,
      routes: [{ host: "Wiki.Default.HOME", upstream: "127.0.0.1:1" }],
    });
    assert.ok(localHosts.includes("wiki.default.home"));
  });

  it("refuses hosts that are not DNS names", () => {
    const route = (host: string): IngressInput => ({
      ...base,
      routes: [{ host, upstream: "127.0.0.1:10001" }],
    });
    compileFails(route("bad\u0000.home"), "routes[0].host", /control character U\+0000/);
    compileFails(route("bad\n.home"), "routes[0].host", /control character U\+000A/);
    compileFails(route("under_score.home"), "routes[0].host", /not a DNS name/);
    compileFails(route("-x.home"), "routes[0].host", /not a DNS name/);
    compileFails(route("a..home"), "routes[0].host", /not a DNS name/);
    compileFails(route("localhost"), "routes[0].host", /with a domain/);
    compileFails(route("10.0.0.1"), "routes[0].host", /IP address/);
    compileFails(route("*.example.org"), "routes[0].host", /not a DNS name/);
    compileFails(route(`${"a".repeat(63)}.`.repeat(4) + "home"), "routes[0].host", /longer/);
    compileFails(route("{http.request.host}.home"), "routes[0].host", /not a DNS name/);
  });

  it("refuses a name served twice", () => {
    compileFails(
      { ...base, publicDomains: [{ host: "Gitea.default.home", upstream: "127.0.0.1:1" }] },
      "publicDomains[0].host",
      /already served by routes\[1\]/,
    );
    compileFails(
      { ...base, routes: [{ host: "town.home", upstream: "127.0.0.1:1" }] },
      "routes[0].host",
      /already served by dashboard/,
    );
  });

  it("refuses upstreams that are not HOST:PORT", () => {
    const upstream = (value: string): IngressInput => ({
      ...base,
      routes: [{ host: "a.default.home", upstream: value }],
    });
    compileFails(upstream("127.0.0.1"), "routes[0].upstream", /not HOST:PORT/);
    compileFails(upstream("127.0.0.1:0"), "routes[0].upstream", /invalid port/);
    compileFails(upstream("127.0.0.1:65536"), "routes[0].upstream", /invalid port/);
    compileFails(upstream("127.0.0.1:080"), "routes[0].upstream", /invalid port/);
    compileFails(upstream("http://x:1"), "routes[0].upstream", /not HOST:PORT|neither/);
    compileFails(upstream("[1::2::3]:80"), "routes[0].upstream", /IPv6/);
    compileFails(upstream("bad host:80"), "routes[0].upstream", /neither an IP address nor/);
    compileFails(upstream("127.0.0.1:80\r"), "routes[0].upstream", /control character/);
    for (const good of ["[::1]:8080", "localhost:80", "10.88.0.4:3000", "db.internal.home:5432"])
      assert.doesNotThrow(() => compileIngress(upstream(good)), good);
  });

  it("refuses bad ports, a non-loopback admin endpoint and a relative storage path", () => {
    compileFails({ ...base, httpsPort: 0 }, "httpsPort", /not a port/);
    compileFails({ ...base, httpPort: 70000 }, "httpPort", /not a port/);
    compileFails({ ...base, httpPort: 443 }, "httpPort", /must differ/);
    compileFails({ ...base, adminAddress: "0.0.0.0:2019" }, "adminAddress", /loopback/);
    compileFails({ ...base, adminAddress: "192.168.1.2:2019" }, "adminAddress", /loopback/);
    compileFails({ ...base, adminAddress: "unix/relative.sock" }, "adminAddress", /absolute/);
    compileFails({ ...base, storageDir: "data/caddy" }, "storageDir", /absolute/);
    compileFails({ ...base, storageDir: "/data/../etc" }, "storageDir", /normalized/);
    for (const good of ["127.0.0.1:2019", "localhost:2019", "[::1]:2019"])
      assert.doesNotThrow(() => compileIngress({ ...base, adminAddress: good }), good);
  });

  it("reports every problem at once", () => {
    assert.throws(
      () =>
        compileIngress({
          ...base,
          httpsPort: -1,
          routes: [{ host: "x", upstream: "y" }],
        }),
      (error: unknown) => error instanceof TownError && error.issues.length === 3,
    );
  });
});

describe("compileIngress with Caddy's metrics", () => {
  it("adds a plain-HTTP loopback server answering with Caddy's metrics, counting the others' requests", () => {
    const without = compileIngress(base);
    const withMetrics = compileIngress({ ...base, metricsAddress: "127.0.0.1:9180" });
    assert.deepEqual(path(withMetrics.config, "apps", "http", "servers", "metrics"), {
      listen: ["127.0.0.1:9180"],
      automatic_https: { disable: true },
      read_header_timeout: "30s",
      routes: [{ handle: [{ handler: "metrics" }], terminal: true }],
    });
    const servers = path(withMetrics.config, "apps", "http", "servers") as Record<
      string,
      Record<string, unknown>
    >;
    delete servers["metrics"];
    const sites = servers["sites"];
    assert.ok(sites);
    assert.deepEqual(sites["metrics"], {});
    delete sites["metrics"];
    assert.deepEqual(withMetrics.config, without.config);
    assert.deepEqual(Object.keys(path(without.config, "apps", "http", "servers") as object), [
      "sites",
    ]);
    assert.notEqual(
      compileIngress({ ...base, metricsAddress: "127.0.0.1:9180" }).hash,
      without.hash,
    );
  });

  it("refuses an address that is not 127.0.0.1:PORT, or that takes another listener's port", () => {
    for (const bad of [
      "0.0.0.0:9180",
      ":9180",
      "localhost:9180",
      "[::1]:9180",
      "127.0.0.1:0",
      "127.0.0.1:70000",
      "127.0.0.1:09180",
      "unix//run/m.sock",
      "127.0.0.1:9180\n",
    ])
      compileFails({ ...base, metricsAddress: bad }, "metricsAddress", /127\.0\.0\.1:PORT|control/);
    compileFails(
      { ...base, metricsAddress: "127.0.0.1:443" },
      "metricsAddress",
      /port another listener of the ingress has/,
    );
    compileFails(
      { ...base, metricsAddress: "127.0.0.1:9181" },
      "metricsAddress",
      /port another listener of the ingress has/,
    );
    compileFails({ ...base, sitesAddress: "0.0.0.0:9181" }, "sitesAddress", /127\.0\.0\.1:PORT/);
    compileFails(
      { ...base, acmeChallengeAddress: "127.0.0.1:80" },
      "acmeChallengeAddress",
      /port another listener/,
    );
  });
});

describe("compileIngress with static sites", () => {
  const server = (input: IngressInput): JsonObject =>
    path(compileIngress(input).config, "apps", "http", "servers", "sites") as JsonObject;

  it("serves each site's version directory: compressed, revalidated, never sniffed, no listings", () => {
    const routes = path(server(withSites), "routes") as JsonObject[];
    const blog = routes.find((route) => path(route, "match", 0, "host", 0) === "blog.home");
    assert.deepEqual(blog, {
      match: [{ host: ["blog.home"] }],
      handle: [
        {
          handler: "encode",
          encodings: { gzip: {}, zstd: {} },
          prefer: ["zstd", "gzip"],
          minimum_length: 1024,
        },
        {
          handler: "headers",
          response: {
            set: {
              "Cache-Control": ["public, max-age=0, must-revalidate"],
              "X-Content-Type-Options": ["nosniff"],
            },
          },
        },
        {
          handler: "file_server",
          root: `/proc/self/cwd/sites/${VERSION}`,
          index_names: ["index.html"],
        },
      ],
      terminal: true,
    });
  });

  it("serves every site from Caddy behind HAProxy, local ones LAN-only with the local CA", () => {
    const { config, localHosts, publicHosts } = compileIngress(withSites);
    assert.deepEqual(localHosts, [
      "blog.home",
      "gitea.default.home",
      "notes.home",
      "town.home",
      "wiki.default.home",
    ]);
    assert.deepEqual(publicHosts, ["blog.example.org", "git.example.org"]);
    const routes = path(server(withSites), "routes") as JsonObject[];
    // Only the sites: HAProxy sends the apps' names straight to the apps.
    assert.deepEqual(
      routes.map((route) => path(route, "match", 0)),
      [{ host: ["blog.example.org"] }, { host: ["blog.home"] }, { host: ["notes.home"] }],
    );
    assert.equal(path(routes[0] as JsonObject, "handle", 2, "handler"), "file_server");
    const policies = path(config, "apps", "tls", "automation", "policies") as JsonObject[];
    assert.deepEqual(path(policies[0] as JsonObject, "subjects"), localHosts);
    assert.deepEqual(path(policies[1] as JsonObject, "subjects"), publicHosts);
    const { haproxy } = compileIngress(withSites);
    assert.match(haproxy["hosts.map"] ?? "", /^blog\.home sites$/m);
    assert.match(haproxy["hosts.map"] ?? "", /^blog\.example\.org sites$/m);
    assert.match(haproxy["local-hosts.lst"] ?? "", /^blog\.home$/m);
    assert.doesNotMatch(haproxy["local-hosts.lst"] ?? "", /^blog\.example\.org$/m);
  });

  it("answers a site's 404 with its /404.html when it has one, from the same version", () => {
    const errors = path(server(withSites), "errors", "routes") as JsonObject[];
    assert.deepEqual(
      errors.map((route) => path(route, "match", 0)),
      [{ host: ["blog.example.org"] }, { host: ["blog.home"] }, { host: ["notes.home"] }],
    );
    const root = `/proc/self/cwd/sites/${VERSION}`;
    assert.deepEqual(path(errors[1] as JsonObject, "handle"), [
      {
        handler: "subroute",
        routes: [
          {
            match: [
              {
                expression: "{http.error.status_code} == 404",
                file: { root, try_files: ["/404.html"] },
              },
            ],
            handle: [
              { handler: "rewrite", uri: "/404.html" },
              {
                handler: "headers",
                request: {
                  delete: [
                    "If-Match",
                    "If-None-Match",
                    "If-Modified-Since",
                    "If-Unmodified-Since",
                    "If-Range",
                    "Range",
                  ],
                },
              },
              { handler: "file_server", root, status_code: 404 },
            ],
          },
        ],
      },
    ]);
    assert.equal(path(errors[1] as JsonObject, "terminal"), true);
    // Without sites the config is what it was before sites existed.
    assert.equal(path(server(base), "errors"), undefined);
  });

  it("gives the same config whatever the order of the sites", () => {
    const reordered = compileIngress({ ...withSites, sites: [...withSites.sites].reverse() });
    assert.equal(reordered.hash, compileIngress(withSites).hash);
    const moved = compileIngress({
      ...withSites,
      sites: [{ host: "blog.home", root: "blog/20261204T000000000Z-cd34" }],
    });
    assert.notEqual(moved.hash, compileIngress(withSites).hash);
  });

  it("refuses a root that is not plain relative names inside the sites directory", () => {
    const site = (root: string): IngressInput => ({
      ...base,
      sites: [{ host: "blog.home", root }],
    });
    compileFails(site("../x"), "sites[0].root", /not starting with '\.'/);
    compileFails(site("blog/.."), "sites[0].root", /not starting with '\.'/);
    compileFails(site("a//b"), "sites[0].root", /no empty ones/);
    compileFails(site("a/"), "sites[0].root", /no empty ones/);
    compileFails(site("/abs"), "sites[0].root", /relative/);
    compileFails(site("a/.git"), "sites[0].root", /not starting with '\.'/);
    compileFails(site(""), "sites[0].root", /empty/);
    compileFails(site("a/{http.request.host}"), "sites[0].root", /letters, digits/);
    compileFails(site("a b"), "sites[0].root", /letters, digits/);
    compileFails(site("a\\b"), "sites[0].root", /letters, digits/);
    compileFails(site("a/b\u0000"), "sites[0].root", /control character U\+0000/);
    compileFails(site(`a/${"b".repeat(1024)}`), "sites[0].root", /longer than 1024/);
    compileFails(
      { ...base, publicSites: [{ host: "blog.example.org", root: "../etc" }] },
      "publicSites[0].root",
      /not starting/,
    );
    for (const good of [VERSION, "a", "a/b/c", "x_y-z.1/v2"])
      assert.doesNotThrow(() => compileIngress(site(good)), good);
  });

  it("refuses a site's name that is not a DNS name or that something else serves", () => {
    compileFails(
      { ...base, sites: [{ host: "bad_name.home", root: VERSION }] },
      "sites[0].host",
      /not a DNS name/,
    );
    compileFails(
      { ...base, sites: [{ host: "Gitea.default.home", root: VERSION }] },
      "sites[0].host",
      /already served by routes\[1\]/,
    );
    compileFails(
      { ...base, sites: [{ host: "town.home", root: VERSION }] },
      "sites[0].host",
      /already served by dashboard/,
    );
    compileFails(
      { ...base, publicSites: [{ host: "git.example.org", root: VERSION }] },
      "publicSites[0].host",
      /already served by publicDomains\[0\]/,
    );
    compileFails(
      { ...withSites, publicSites: [{ host: "blog.home", root: VERSION }] },
      "publicSites[0].host",
      /already served by sites\[1\]/,
    );
  });

  it("refuses a relative sites directory", () => {
    compileFails({ ...base, sitesRoot: "sites" }, "sitesRoot", /absolute/);
    compileFails({ ...base, sitesRoot: "/proc/self/cwd/../sites" }, "sitesRoot", /normalized/);
  });
});
