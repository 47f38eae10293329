import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { compileDnsConfig } from "../dns/config.js";
import {
  compileIngressLeniently,
  issueIndexes,
  planNetwork,
  withoutRefusedRecords,
  type NetworkApp,
  type NetworkContext,
  type NetworkInputs,
} from "./plan.js";
import type { NetworkPage } from "../pages/types.js";

const context: NetworkContext = {
  httpsPort: 443,
  httpPort: 80,
  dnsPort: 53,
  lanAddresses: ["192.168.1.20", "fd00::20"],
  adminAddress: "unix//var/lib/town/network/ingress/admin.sock",
  storageDir: "/var/lib/town/network/ingress/storage",
  sitesRoot: "/proc/self/cwd/sites",
  haproxyDir: "/var/lib/town/network/ingress/haproxy",
  sitesPort: 9181,
  acmeChallengePort: 9182,
};

function app(overrides: Partial<NetworkApp> & Pick<NetworkApp, "name">): NetworkApp {
  return {
    repo: "default",
    names: [`${overrides.name}.default.home`],
    ingress: { host: `${overrides.name}.default.home`, port: 20000 },
    domains: [],
    ports: [],
    ...overrides,
  };
}

const gitea = app({
  name: "gitea",
  names: ["gitea.default.home", "gitea-db.default.home"],
  ingress: { host: "gitea.default.home", port: 20001 },
  domains: ["git.example.org"],
  ports: [
    { host: 2222, protocol: "tcp", exposure: "internet", instance: "gitea" },
    { host: 5432, protocol: "tcp", exposure: "lan", instance: "gitea-db" },
  ],
});
const game = app({
  name: "game",
  names: [],
  ingress: null,
  ports: [
    { host: 27015, protocol: "udp", exposure: "internet", instance: "game" },
    { host: 27016, protocol: "tcp", exposure: "local", instance: "game" },
  ],
});

const inputs: NetworkInputs = {
  tld: "home",
  dashboardPort: 5309,
  apps: [gitea, game],
  pages: [],
  forwardHttps: true,
};

const BLOG_VERSION = "blog/20261203T101010000Z-ab12";
const blog: NetworkPage = {
  name: "blog",
  host: "blog.home",
  domains: ["Blog.Example.org"],
  root: BLOG_VERSION,
};
/** Created, not deployed yet. */
const draft: NetworkPage = { name: "draft", host: "draft.home", domains: [], root: null };

describe("planNetwork", () => {
  it("routes each app's name and public domains, and the dashboard at town.<tld>", () => {
    const plan = planNetwork(inputs, context);
    assert.deepEqual(plan.ingress, {
      routes: [{ host: "gitea.default.home", upstream: "127.0.0.1:20001" }],
      publicDomains: [{ host: "git.example.org", upstream: "127.0.0.1:20001" }],
      sites: [],
      publicSites: [],
      sitesRoot: "/proc/self/cwd/sites",
      dashboard: { host: "town.home", upstream: "127.0.0.1:5309" },
      httpsPort: 443,
      httpPort: 80,
      adminAddress: context.adminAddress,
      storageDir: context.storageDir,
      sitesAddress: "127.0.0.1:9181",
      acmeChallengeAddress: "127.0.0.1:9182",
      haproxyDir: context.haproxyDir,
    });
    assert.equal(plan.dashboardUrl, "https://town.home/");
    assert.deepEqual(plan.apps, [
      { repo: "default", name: "game", urls: [] },
      {
        repo: "default",
        name: "gitea",
        urls: ["https://gitea.default.home/", "https://git.example.org/"],
      },
    ]);
    assert.deepEqual(plan.problems, []);
  });

  it("gives Caddy a loopback metrics address only with a metrics port", () => {
    assert.equal(planNetwork(inputs, context).ingress.metricsAddress, undefined);
    const plan = planNetwork(inputs, { ...context, metricsPort: 9180 });
    assert.equal(plan.ingress.metricsAddress, "127.0.0.1:9180");
  });

  it("publishes town.<tld> and every app name at every LAN address, local to the TLD", () => {
    const { dns } = planNetwork(inputs, context);
    const pairs = dns.records.map((record) => `${record.name} ${record.address}`);
    assert.deepEqual(pairs.sort(), [
      "gitea-db.default.home 192.168.1.20",
      "gitea-db.default.home fd00::20",
      "gitea.default.home 192.168.1.20",
      "gitea.default.home fd00::20",
      "town.home 192.168.1.20",
      "town.home fd00::20",
    ]);
    assert.deepEqual(dns.listen, { addresses: ["192.168.1.20", "fd00::20"], port: 53 });
    assert.deepEqual(dns.localDomains, ["home"]);
  });

  it("maps exactly the internet ports to the first IPv4 LAN address", () => {
    const { mappings } = planNetwork(inputs, context);
    assert.deepEqual(mappings, [
      {
        externalPort: 27015,
        internalPort: 27015,
        protocol: "UDP",
        internalClient: "192.168.1.20",
        description: "town default/game 27015",
      },
      {
        externalPort: 2222,
        internalPort: 2222,
        protocol: "TCP",
        internalClient: "192.168.1.20",
        description: "town default/gitea 2222",
      },
      // gitea's public domain needs the ingress reachable: HTTPS, and HTTP for ACME.
      {
        externalPort: 443,
        internalPort: context.httpsPort,
        protocol: "TCP",
        internalClient: "192.168.1.20",
        description: "town town/ingress 443",
      },
      {
        externalPort: 80,
        internalPort: context.httpPort,
        protocol: "TCP",
        internalClient: "192.168.1.20",
        description: "town town/ingress 80",
      },
    ]);
    // Without public domains the ingress stays on the home network.
    const home = planNetwork({ ...inputs, apps: [game] }, context);
    assert.deepEqual(
      home.mappings.map((m) => m.externalPort),
      [27015],
    );
  });

  it("forwards 443 and 80 for public domains only when the administrator opted in", () => {
    const unset: NetworkInputs = {
      tld: "home",
      dashboardPort: 5309,
      apps: [gitea, game],
      pages: [],
    };
    for (const off of [unset, { ...inputs, forwardHttps: false }]) {
      const plan = planNetwork(off, context);
      assert.deepEqual(
        plan.mappings.map((m) => m.externalPort),
        [27015, 2222],
      );
      // The domain is still served (on the LAN), and the status says why the router is not told.
      assert.deepEqual(
        plan.ingress.publicDomains.map((route) => route.host),
        ["git.example.org"],
      );
      assert.match(plan.problems.join("\n"), /forwarding the router's 443 and 80 is off/);
    }
  });

  it("gives the same plan whatever order the apps come in", () => {
    const reversed = planNetwork({ ...inputs, apps: [game, gitea] }, context);
    assert.deepEqual(reversed, planNetwork(inputs, context));
  });

  it("shows the HTTPS port in URLs when it is not 443, and follows the TLD", () => {
    const plan = planNetwork(
      {
        tld: "lan",
        dashboardPort: 5309,
        apps: [app({ name: "wiki", ingress: { host: "wiki.default.lan", port: 20002 } })],
        pages: [],
      },
      { ...context, httpsPort: 8443 },
    );
    assert.equal(plan.dashboardUrl, "https://town.lan:8443/");
    assert.deepEqual(plan.apps[0]?.urls, ["https://wiki.default.lan:8443/"]);
    assert.equal(plan.ingress.dashboard.host, "town.lan");
    assert.deepEqual(plan.dns.localDomains, ["lan"]);
  });

  it("leaves out a name claimed twice and domains without an http port, saying why", () => {
    const plan = planNetwork(
      {
        tld: "home",
        dashboardPort: 5309,
        apps: [
          app({ name: "a", ingress: { host: "town.home", port: 20003 } }),
          app({ name: "b", domains: ["shared.example.org"] }),
          app({ name: "c", domains: ["Shared.Example.org"] }),
          app({ name: "d", ingress: null, domains: ["d.example.org"] }),
        ],
        pages: [],
        forwardHttps: true,
      },
      context,
    );
    assert.deepEqual(
      plan.ingress.routes.map((route) => route.host),
      ["b.default.home", "c.default.home"],
    );
    assert.deepEqual(
      plan.ingress.publicDomains.map((route) => route.host),
      ["shared.example.org"],
    );
    assert.deepEqual(plan.problems, [
      "default/a: town.home is already served for the dashboard; left out",
      "default/c: shared.example.org is already served for default/b; left out",
      "default/d: has public domains but no http port to serve them; left out",
    ]);
  });

  it("forwards nothing without an IPv4 LAN address, and says so", () => {
    const plan = planNetwork(inputs, { ...context, lanAddresses: ["fd00::20"] });
    assert.deepEqual(plan.mappings, []);
    assert.equal(plan.problems.length, 3);
    assert.match(plan.problems.join("\n"), /public domains are not reachable/);
    assert.match(plan.problems[0] ?? "", /27015\/udp is not forwarded: the box has no LAN IPv4/);
  });
});

describe("planNetwork with pages", () => {
  it("serves a page's live version at its name and public domains", () => {
    const plan = planNetwork({ ...inputs, pages: [blog] }, context);
    assert.deepEqual(plan.ingress.sites, [{ host: "blog.home", root: BLOG_VERSION }]);
    assert.deepEqual(plan.ingress.publicSites, [{ host: "blog.example.org", root: BLOG_VERSION }]);
    assert.equal(plan.ingress.sitesRoot, context.sitesRoot);
    assert.deepEqual(plan.pages, [
      { name: "blog", urls: ["https://blog.home/", "https://blog.example.org/"] },
    ]);
    const names = plan.dns.records.map((record) => `${record.name} ${record.address}`);
    assert.ok(names.includes("blog.home 192.168.1.20"), names.join("\n"));
    assert.deepEqual(plan.problems, []);
    const { compiled } = compileIngressLeniently(plan.ingress);
    assert.ok(compiled.localHosts.includes("blog.home"));
    assert.ok(compiled.publicHosts.includes("blog.example.org"));
  });

  it("gives a page without a version its DNS name but no route", () => {
    const plan = planNetwork({ ...inputs, pages: [draft] }, context);
    assert.deepEqual(plan.ingress.sites, []);
    assert.deepEqual(plan.pages, [{ name: "draft", urls: [] }]);
    const names = plan.dns.records.map((record) => record.name);
    assert.ok(names.includes("draft.home"), names.join("\n"));
  });

  it("counts a page's public domains for forwarding 443 and 80", () => {
    const plan = planNetwork({ ...inputs, apps: [game], pages: [blog] }, context);
    assert.deepEqual(
      plan.mappings.map((m) => m.externalPort),
      [27015, 443, 80],
    );
    const off = planNetwork({ ...inputs, apps: [], pages: [blog], forwardHttps: false }, context);
    assert.match(off.problems.join("\n"), /forwarding the router's 443 and 80 is off/);
  });

  it("leaves out a page's names that an app or the dashboard has, saying why", () => {
    const plan = planNetwork(
      {
        ...inputs,
        pages: [
          { ...blog, domains: ["git.example.org", "blog.example.org"] },
          { name: "town", host: "town.home", domains: [], root: "town/v1" },
        ],
      },
      context,
    );
    assert.deepEqual(plan.ingress.sites, [{ host: "blog.home", root: BLOG_VERSION }]);
    assert.deepEqual(plan.ingress.publicSites, [{ host: "blog.example.org", root: BLOG_VERSION }]);
    assert.deepEqual(plan.ingress.publicDomains, [
      { host: "git.example.org", upstream: "127.0.0.1:20001" },
    ]);
    assert.deepEqual(plan.pages, [
      { name: "blog", urls: ["https://blog.home/", "https://blog.example.org/"] },
      { name: "town", urls: [] },
    ]);
    assert.deepEqual(plan.problems, [
      "page blog: git.example.org is already served for default/gitea; left out",
      "page town: town.home is already served for the dashboard; left out",
    ]);
    // The dashboard's name is published once.
    const town = plan.dns.records.filter((record) => record.name === "town.home");
    assert.equal(town.length, context.lanAddresses.length);
  });

  it("gives the same plan whatever order the pages come in", () => {
    const pages = [blog, draft, { ...blog, name: "alpha", host: "alpha.home", domains: [] }];
    assert.deepEqual(
      planNetwork({ ...inputs, pages: [...pages].reverse() }, context),
      planNetwork({ ...inputs, pages }, context),
    );
  });
});

describe("compileIngressLeniently", () => {
  it("compiles a good input as compileIngress does", () => {
    const { compiled, problems } = compileIngressLeniently(planNetwork(inputs, context).ingress);
    assert.deepEqual(compiled.localHosts, ["gitea.default.home", "town.home"]);
    assert.deepEqual(compiled.publicHosts, ["git.example.org"]);
    assert.deepEqual(problems, []);
  });

  it("leaves out the routes Caddy's compiler refuses and serves the rest", () => {
    const input = planNetwork(inputs, context).ingress;
    const { compiled, problems } = compileIngressLeniently({
      ...input,
      routes: [...input.routes, { host: "bad_name.default.home", upstream: "127.0.0.1:1" }],
      publicDomains: [...input.publicDomains, { host: "x.example.org", upstream: "nope" }],
    });
    assert.deepEqual(compiled.localHosts, ["gitea.default.home", "town.home"]);
    assert.deepEqual(compiled.publicHosts, ["git.example.org"]);
    assert.equal(problems.length, 2);
    assert.match(problems[0] ?? "", /^ingress: left out: "bad_name\.default\.home" is not a DNS/);
  });

  it("leaves out the sites Caddy's compiler refuses and serves the rest", () => {
    const input = planNetwork({ ...inputs, pages: [blog] }, context).ingress;
    const { compiled, problems } = compileIngressLeniently({
      ...input,
      sites: [...input.sites, { host: "bad.home", root: "../etc" }],
      publicSites: [...input.publicSites, { host: "bad_name.example.org", root: BLOG_VERSION }],
    });
    assert.deepEqual(compiled.localHosts, ["blog.home", "gitea.default.home", "town.home"]);
    assert.deepEqual(compiled.publicHosts, ["blog.example.org", "git.example.org"]);
    assert.equal(problems.length, 2);
    assert.match(problems.join("\n"), /"\.\.\/etc" must be/);
  });

  it("throws when the ingress settings themselves are refused", () => {
    const input = planNetwork(inputs, context).ingress;
    assert.throws(
      () => compileIngressLeniently({ ...input, httpPort: 443 }),
      (error) => error instanceof TownError && error.code === "invalid_argument",
    );
  });
});

describe("withoutRefusedRecords", () => {
  const paths = { hostsFile: "/run/town/dns/hosts", serversFile: "/run/town/dns/servers" };
  const listen = { addresses: ["192.168.1.20"], port: 53 };

  it("takes out the records dnsmasq's compiler names", () => {
    const records = [
      { name: "good.default.home", address: "192.168.1.20" },
      { name: "bad name.default.home", address: "192.168.1.20" },
      { name: "also.default.home", address: "192.168.1.20" },
    ];
    let refusal: unknown;
    try {
      compileDnsConfig({ records, upstreams: [], listen, localDomains: ["home"] }, paths);
    } catch (error) {
      refusal = error;
    }
    const kept = withoutRefusedRecords(records, refusal);
    assert.deepEqual(
      kept?.records.map((record) => record.name),
      ["good.default.home", "also.default.home"],
    );
    assert.match(kept.problems[0] ?? "", /^dns: left out: not a DNS name: "bad name/);
  });

  it("keeps nothing back when something else was refused", () => {
    const refusal = new TownError("invalid_argument", "dns: invalid configuration", {
      issues: [{ field: "listen.addresses", message: "at least one listen address" }],
    });
    assert.equal(withoutRefusedRecords([], refusal), undefined);
    assert.equal(withoutRefusedRecords([], new Error("disk full")), undefined);
  });
});

describe("issueIndexes", () => {
  it("reads both index styles", () => {
    const issues = [
      { field: "routes[3].host", message: "" },
      { field: "routes[3].upstream", message: "" },
      { field: "records.12.name", message: "" },
      { field: "routesX[1]", message: "" },
    ];
    assert.deepEqual([...issueIndexes(issues, "routes")], [3]);
    assert.deepEqual([...issueIndexes(issues, "records")], [12]);
  });
});
