/**
 * Networking against the real Caddy and dnsmasq, on free high ports and
 * loopback only (mDNS and SSDP go out on 127.0.0.1, the only "LAN address"
 * given): first the Network service on its own (an app reached by name over
 * HTTPS, idempotent updates, close() leaving both serving, adoption by the
 * next daemon), then wired into a real daemon (the CA download, the
 * dashboard and an installed app through Caddy, names in dnsmasq, the TLD
 * setting, `town net status`). The UPnP router cannot be reached here: the
 * status shows that, which is what an install must survive.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TownClient } from "@townos/client";
import { runTownCaptured } from "../../../cli/test/run-town.js";
import {
  dig,
  eventually,
  freeNetworkPorts,
  type NetworkPorts,
  networkMissing,
  scratchDir,
  viaCaddy,
} from "../../test/net.js";
import {
  EXTERNAL_IP,
  routerMissing,
  startNetworkBehind,
  startTestRouter,
  type TestRouter,
} from "../../test/upnp-router.js";
import { compileExample } from "../../test/runtime/examples.js";
import { freePort } from "../../test/runtime/podman-host.js";
import { processesMentioning } from "../../test/processes.js";
import { startDaemon, type RunningDaemon } from "../daemon.js";
import { Manager } from "../reconcile/manager.js";
import { Network, type NetworkInputs } from "./network.js";

const missing = networkMissing();

/** An HTTP server on loopback standing in for an app's published `http` port. */
async function fakeApp(body: string): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((_request, response) => {
    response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** A scratch directory dnsmasq (running as nobody) can reach its files in. */
const quietLog = { info: () => undefined, warn: () => undefined };

describe("the Network service with the real Caddy and dnsmasq", { skip: missing }, () => {
  let scratch = "";
  let app: { server: http.Server; port: number };
  let ports: NetworkPorts;
  let routerPort = 0;
  const networks: Network[] = [];
  let caFile = "";

  const options = () => ({
    dataDir: join(scratch, "data"),
    dnsDir: join(scratch, "dns"),
    ...ports,
    // A router that does not answer: mappings fail, nothing else does.
    gatewayUrl: `http://127.0.0.1:${routerPort}/rootDesc.xml`,
    lanAddresses: () => ["127.0.0.1"],
    log: quietLog,
    manager: new Manager(),
  });
  const inputs = (appPort: number): NetworkInputs => ({
    tld: "home",
    dashboardPort: appPort,
    pages: [],
    apps: [
      {
        repo: "default",
        name: "wiki",
        names: ["wiki.default.home", "wiki-db.default.home"],
        ingress: { host: "wiki.default.home", port: appPort },
        domains: [],
        ports: [{ host: 27015, protocol: "udp", exposure: "internet", instance: "wiki" }],
      },
    ],
  });

  before(async () => {
    scratch = await scratchDir("town-net-it-");
    app = await fakeApp("hello from wiki");
    ports = await freeNetworkPorts();
    routerPort = await freePort();
    caFile = join(scratch, "ca.crt");
  });

  after(async () => {
    for (const network of networks) await network.stopForTests();
    assert.deepEqual(await processesMentioning(scratch), [], "Caddy, HAProxy and dnsmasq are gone");
    await new Promise((resolve) => app.server.close(resolve));
    await rm(scratch, { recursive: true, force: true });
  });

  it("serves an app by name over HTTPS and in DNS; mappings fail without a router", async () => {
    const network = new Network(options());
    networks.push(network);
    await network.start();
    await network.update(inputs(app.port));
    const status = network.status();
    assert.equal(status.ingress?.state, "running");
    assert.equal(status.ingress.configCurrent, true, JSON.stringify(status.ingress.lastError));
    assert.equal(status.dns?.state, "running", status.dns?.error);
    assert.equal(status.dns.records, 3);
    assert.equal(status.mdns?.state, "running", status.mdns?.error);
    assert.deepEqual(status.problems, []);
    assert.equal(
      (await processesMentioning(scratch)).length,
      4,
      "one Caddy, one HAProxy (master and worker), one dnsmasq",
    );
    assert.deepEqual(status.apps, [
      { repo: "default", name: "wiki", urls: [`https://wiki.default.home:${ports.httpsPort}/`] },
    ]);

    await writeFile(caFile, await network.rootCertificate());
    assert.equal(
      await eventually("the app's certificate", () =>
        viaCaddy(caFile, "wiki.default.home", ports.httpsPort),
      ),
      "hello from wiki",
    );
    assert.equal(await dig(ports.dnsPort, "wiki-db.default.home"), "127.0.0.1");
    assert.equal(await dig(ports.dnsPort, "town.home"), "127.0.0.1");

    const upnp = await eventually("the UPnP pass", () => {
      const seen = network.status().upnp;
      return seen?.router.state === "unknown"
        ? Promise.reject(new Error("no pass yet"))
        : Promise.resolve(seen);
    });
    assert.equal(upnp?.router.state, "unreachable");
    assert.deepEqual(
      upnp.mappings.map((m) => [m.protocol, m.externalPort, m.internalClient, m.state]),
      [["UDP", 27015, "127.0.0.1", "failed"]],
    );
  });

  it("applies unchanged inputs as a no-op, and a burst of updates ends at the last", async () => {
    const network = networks[0];
    assert.ok(network);
    const before = network.status();
    await network.update(inputs(app.port));
    const again = network.status();
    assert.equal(again.ingress?.appliedHash, before.ingress?.appliedHash);
    assert.equal(again.dns?.pid, before.dns?.pid);
    assert.equal(again.dns?.restarts, 0);

    const other = await fakeApp("hello from the new port");
    try {
      const burst = [inputs(app.port), inputs(app.port), inputs(other.port)];
      await Promise.all(burst.map((next) => network.update(next)));
      assert.equal(
        await viaCaddy(caFile, "wiki.default.home", ports.httpsPort),
        "hello from the new port",
      );
      await network.update(inputs(app.port));
      assert.equal(await viaCaddy(caFile, "wiki.default.home", ports.httpsPort), "hello from wiki");
    } finally {
      await new Promise((resolve) => other.server.close(resolve));
    }
  });

  /** A Network of its own that reads `addresses` (changed by the test) every 50 ms, started and updated once. */
  const updatedNetworkOn = async (addresses: string[], name: string): Promise<Network> => {
    const network = new Network({
      ...options(),
      dataDir: join(scratch, `data-${name}`),
      dnsDir: join(scratch, `dns-${name}`),
      ...(await freeNetworkPorts()),
      lanAddresses: () => [...addresses],
      addressCheckMs: 50,
    });
    await network.start();
    await network.update(inputs(app.port));
    return network;
  };

  it("follows a change of the box's addresses without an update (a new DHCP lease)", async () => {
    const addresses = ["127.0.0.1"];
    const network = await updatedNetworkOn(addresses, "addresses");
    try {
      const port = network.status().dns?.listen?.port;
      assert.ok(port);
      assert.equal(await dig(port, "town.home"), "127.0.0.1");
      addresses.push("127.0.0.2");
      const answer = await eventually("the new address in DNS", async () => {
        const seen = await dig(port, "town.home");
        if (!seen.includes("127.0.0.2")) throw new Error(`still ${seen}`);
        return seen;
      });
      assert.deepEqual(answer.split("\n").sort(), ["127.0.0.1", "127.0.0.2"]);
    } finally {
      await network.stopForTests();
    }
  });

  it("starts mDNS again once the box has a usable address (started before DHCP)", async () => {
    // 192.0.2.10 (TEST-NET-1) is no address of this host: joining the group on it fails.
    const addresses = ["192.0.2.10"];
    const network = await updatedNetworkOn(addresses, "mdns");
    try {
      assert.equal(network.status().mdns?.state, "failed");
      addresses.splice(0, 1, "127.0.0.1");
      await eventually("mDNS on the new address", () => {
        const state = network.status().mdns?.state;
        return state === "running"
          ? Promise.resolve(state)
          : Promise.reject(new Error(`mdns ${state}`));
      });
    } finally {
      await network.stopForTests();
    }
  });

  it("leaves Caddy and dnsmasq serving on close; the next Network adopts them", async () => {
    const first = networks[0];
    assert.ok(first);
    const pids = [first.status().ingress?.pid, first.status().dns?.pid];
    await first.close();
    assert.equal(first.status().mdns?.state, "stopped");
    assert.equal(await viaCaddy(caFile, "wiki.default.home", ports.httpsPort), "hello from wiki");
    assert.equal(await dig(ports.dnsPort, "wiki.default.home"), "127.0.0.1");

    const next = new Network(options());
    networks.push(next);
    await next.start();
    await next.update(inputs(app.port));
    const status = next.status();
    assert.equal(status.ingress?.state, "adopted");
    assert.equal(status.ingress.configCurrent, true);
    assert.equal(status.dns?.state, "running");
    assert.deepEqual([status.ingress.pid, status.dns.pid], pids);
    assert.equal(await viaCaddy(caFile, "wiki.default.home", ports.httpsPort), "hello from wiki");
  });
});

describe("networking in a real daemon", { skip: missing }, () => {
  let scratch = "";
  let daemon: RunningDaemon;
  let ports: NetworkPorts;
  let app: { server: http.Server; port: number };
  let caFile = "";
  let admin: TownClient;

  const network = (): Network => {
    const found = daemon.boot.services?.network;
    assert.ok(found, "the daemon runs networking");
    return found;
  };
  const town = (...argv: string[]) =>
    runTownCaptured(argv, {
      cwd: scratch,
      env: {
        TOWN_SERVER: daemon.url,
        XDG_CONFIG_HOME: join(scratch, "config"),
        // town setup reads the setup code from the data dir, as on the box.
        TOWN_DATA_DIR: join(scratch, "data"),
      },
    });

  before(async () => {
    scratch = await scratchDir("town-net-daemon-");
    app = await fakeApp("hello from the hello app");
    ports = await freeNetworkPorts();
    caFile = join(scratch, "ca.crt");
    daemon = await startDaemon({
      dataDir: join(scratch, "data"),
      host: "127.0.0.1",
      port: 0,
      defaultRepositoryUrl: "",
      logLevel: "warn",
      extraHosts: [],
      version: "test",
      checkResponses: true,
      apps: false,
      // No gateway URL: SSDP searches on the given "LAN", loopback.
      network: { ...ports, lanAddresses: ["127.0.0.1"], dnsDir: join(scratch, "dns") },
    });
    await daemon.booted;
    admin = new TownClient({ baseUrl: daemon.url });
  });

  after(async () => {
    const running = daemon.boot.services?.network;
    await daemon.stop();
    await running?.stopForTests();
    assert.deepEqual(await processesMentioning(scratch), [], "Caddy, HAProxy and dnsmasq are gone");
    await new Promise((resolve) => app.server.close(resolve));
    await rm(scratch, { recursive: true, force: true });
  });

  it("gives out the CA root without login, as a PEM attachment", async () => {
    const response = await eventually("the local CA", async () => {
      const answer = await fetch(`${daemon.url}/tls/ca.crt`);
      if (answer.status !== 200) throw new Error(`status ${answer.status}`);
      return answer;
    });
    assert.equal(response.headers.get("content-type"), "application/x-pem-file");
    assert.equal(
      response.headers.get("content-disposition"),
      'attachment; filename="town-os-ca.crt"',
    );
    const pem = await response.text();
    assert.match(pem, /^-----BEGIN CERTIFICATE-----\n/);
    await writeFile(caFile, pem);
    assert.equal(await admin.caCertificate(), pem);

    // A browser request naming a foreign host is refused, like on every route (DNS rebinding).
    const rebound = await new Promise<number>((resolve, reject) => {
      const url = new URL("/tls/ca.crt", daemon.url);
      http
        .get(
          url,
          { headers: { host: "evil.example", origin: "http://evil.example" } },
          (answer) => {
            answer.resume();
            resolve(answer.statusCode ?? 0);
          },
        )
        .on("error", reject);
    });
    assert.equal(rebound, 403);
  });

  it("serves the dashboard at town.<tld> through Caddy and names it in DNS", async () => {
    const body = await eventually("the dashboard through Caddy", () =>
      viaCaddy(caFile, "town.home", ports.httpsPort, "/api/v1/status"),
    );
    assert.equal((JSON.parse(body) as { state: string }).state, "ready");
    // The first update applies Caddy before it starts dnsmasq: the name may come a moment later.
    await eventually("town.home in DNS", async () => {
      assert.equal(await dig(ports.dnsPort, "town.home"), "127.0.0.1");
    });
  });

  it("prints the parts in `town net status` and saves the CA with `town net ca`", async () => {
    const setup = await town("setup", "--username", "alice", "--password", "alice-secret-4f1e");
    assert.equal(setup.code, 0, setup.stderr);
    const status = await town("net", "status");
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      // HAProxy's workers and Caddy never run as root: the daemon (root here) runs them as Debian's users.
      /^ingress: running \(pid \d+, user haproxy\), https :\d+, http :\d+, config current$/m,
    );
    assert.match(
      status.stdout,
      /^ {2}certificates: running \(pid \d+, user caddy\), 1 name served$/m,
    );
    assert.match(status.stdout, /^dns: running on 127\.0\.0\.1 port \d+, 1 records$/m);
    assert.match(status.stdout, /^mdns: town-os\.local running$/m);
    assert.match(status.stdout, /^upnp: router /m);
    assert.match(
      status.stdout,
      new RegExp(`^dashboard: https://town\\.home:${ports.httpsPort}/$`, "m"),
    );

    const json = await town("net", "status", "--json");
    assert.equal((JSON.parse(json.stdout) as { state: string }).state, "on");

    const saved = await town("net", "ca", "saved.crt");
    assert.equal(saved.code, 0, saved.stderr);
    assert.equal(
      await readFile(join(scratch, "saved.crt"), "utf8"),
      await readFile(caFile, "utf8"),
    );
  });

  it("routes an installed app, and moves it and the dashboard with the TLD setting", async () => {
    const services = daemon.boot.services;
    assert.ok(services);
    // Apps are off here: the install record stands for one whose `http` port the runtime published.
    const plan = compileExample("hello", "1.0");
    services.installs.put({
      repo: "default",
      name: "hello",
      version: "1.0",
      definitionHash: "test",
      answers: {},
      enabled: true,
      plan,
      ingressPorts: { hello: app.port },
    });
    const signedIn = await admin.login({ username: "alice", password: "alice-secret-4f1e" });
    admin.token = signedIn.token;
    // Setting the TLD (even to its value) updates the network at once.
    await admin.setSetting("dns.tld", "home");
    assert.equal(
      await eventually("the app through Caddy", () =>
        viaCaddy(caFile, "hello.default.home", ports.httpsPort),
      ),
      "hello from the hello app",
    );
    // dnsmasq rereads its hosts file on SIGHUP, which may land after Caddy already serves.
    await eventually("hello.default.home in DNS", async () => {
      assert.equal(await dig(ports.dnsPort, "hello.default.home"), "127.0.0.1");
    });
    assert.deepEqual((await admin.netStatus()).apps, [
      {
        repo: "default",
        name: "hello",
        urls: [`https://hello.default.home:${ports.httpsPort}/`],
      },
    ]);

    await admin.setSetting("dns.tld", "lan");
    await eventually("town.lan in DNS", async () => {
      assert.equal(await dig(ports.dnsPort, "town.lan"), "127.0.0.1");
    });
    const body = await eventually("the dashboard at town.lan", () =>
      viaCaddy(caFile, "town.lan", ports.httpsPort, "/api/v1/status"),
    );
    assert.equal((JSON.parse(body) as { state: string }).state, "ready");
    assert.equal(network().status().dashboardUrl, `https://town.lan:${ports.httpsPort}/`);
    // The app's name, route and certificate moved with the TLD.
    assert.equal(
      await eventually("the app at its new name", () =>
        viaCaddy(caFile, "hello.default.lan", ports.httpsPort),
      ),
      "hello from the hello app",
    );
    assert.equal(await dig(ports.dnsPort, "hello.default.lan"), "127.0.0.1");
  });
});

describe("a daemon without networking", () => {
  let scratch = "";
  let daemon: RunningDaemon;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-net-off-"));
    daemon = await startDaemon({
      dataDir: join(scratch, "data"),
      host: "127.0.0.1",
      port: 0,
      defaultRepositoryUrl: "",
      logLevel: "warn",
      extraHosts: [],
      version: "test",
      apps: false,
    });
    await daemon.booted;
  });

  after(async () => {
    await daemon.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it("says networking is off, and has no CA to give out", async () => {
    const client = new TownClient({ baseUrl: daemon.url });
    const { token } = await client.setup({
      username: "alice",
      password: "alice-secret-4f1e",
      setupCode: daemon.setupCode,
    });
    client.token = token;
    const status = await client.netStatus();
    assert.equal(status.state, "off");
    assert.equal(status.ingress, null);
    const response = await fetch(`${daemon.url}/tls/ca.crt`);
    assert.equal(response.status, 503);
    assert.equal(((await response.json()) as { code: string }).code, "unavailable");
  });
});

describe(
  "internet exposures become router port forwards, against miniupnpd",
  { skip: missing || routerMissing },
  () => {
    let router: TestRouter;
    let scratch: string;
    let network: Network;

    const inputs = (exposure: "local" | "lan" | "internet"): NetworkInputs => ({
      tld: "home",
      dashboardPort: 5309,
      pages: [],
      apps: [
        {
          repo: "default",
          name: "game",
          names: ["game.default.home"],
          ingress: null,
          domains: [],
          ports: [{ host: 27016, protocol: "tcp", exposure, instance: "game" }],
        },
      ],
    });
    /** The router's lease for the game's port: its line, or undefined. */
    const lease = async (): Promise<string | undefined> =>
      (await router.leases()).find((line) => line.startsWith("TCP:27016:"));

    before(async () => {
      router = await startTestRouter(1);
      scratch = await scratchDir("town-net-upnp-");
      network = await startNetworkBehind(router, scratch);
    });

    after(async () => {
      await network.stopForTests();
      await router.stop();
      await rm(scratch, { recursive: true, force: true });
    });

    it("adds the mapping for an internet port, reports the router, and removes it at lan", async () => {
      await network.update(inputs("internet"));
      const line = await eventually("the router's lease", async () => {
        const found = await lease();
        assert.ok(found, router.log());
        return found;
      });
      // PROTO:EXTPORT:CLIENT:INTPORT:END:DESCRIPTION
      assert.equal(line.split(":")[2], router.netns.hostAddress);
      assert.match(line, /town default\/game 27016/);
      const upnp = network.status().upnp;
      assert.equal(upnp?.router.state, "ok");
      assert.equal(upnp.router.externalAddress, EXTERNAL_IP);
      assert.equal(upnp.mappings[0]?.state, "active");

      await network.update(inputs("lan"));
      await eventually("the mapping to go", async () => {
        assert.equal(await lease(), undefined);
      });
      assert.deepEqual(network.status().upnp?.mappings, []);
    });
  },
);
