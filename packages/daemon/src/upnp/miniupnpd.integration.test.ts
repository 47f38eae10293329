import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { IgdClient } from "./igd.js";
import { PortMappingManager, mappingDescription, type DesiredMapping } from "./mappings.js";
import { discoverGateway } from "./ssdp.js";
import type { TestNetns } from "../../test/netns.js";
import {
  EXTERNAL_IP,
  routerMissing,
  startTestRouter,
  type TestRouter,
} from "../../test/upnp-router.js";

const missing = routerMissing;

async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("UPnP against miniupnpd in a network namespace", { skip: missing }, () => {
  let testRouter: TestRouter;
  let netns: TestNetns;
  let descriptionUrl: string;
  const managers: PortMappingManager[] = [];

  before(async () => {
    testRouter = await startTestRouter(0);
    netns = testRouter.netns;
    descriptionUrl = testRouter.descriptionUrl;
  });

  after(async () => {
    for (const manager of managers) await manager.stop();
    await testRouter.stop();
  });

  const leases = (): Promise<string[]> => testRouter.leases();

  function leaseEnd(lines: string[], protocol: string, port: number): number | undefined {
    const line = lines.find((entry) => entry.startsWith(`${protocol}:${port}:`));
    return line === undefined ? undefined : Number(line.split(":")[4]);
  }

  const tcp: DesiredMapping = {
    externalPort: 18080,
    internalPort: 8080,
    protocol: "TCP",
    internalClient: "",
    description: mappingDescription("default", "wiki", 8080),
  };
  const udp: DesiredMapping = {
    externalPort: 18081,
    internalPort: 8081,
    protocol: "UDP",
    internalClient: "",
    description: mappingDescription("default", "game", 8081),
  };

  it("finds the router by SSDP over the veth and reads its external address", async () => {
    const client = await discoverGateway({ interfaceAddress: netns.hostAddress, searchMs: 3000 });
    assert.equal(client.service.descriptionUrl, descriptionUrl);
    assert.equal(client.service.serviceType, "urn:schemas-upnp-org:service:WANIPConnection:2");
    assert.equal(client.service.controlUrl, `http://${new URL(descriptionUrl).host}/ctl/IPConn`);
    assert.equal(await client.getExternalIPAddress(), EXTERNAL_IP);
    // The configured URL leads to the same service.
    const configured = await discoverGateway({ descriptionUrl });
    assert.deepEqual(configured.service, client.service);
  });

  it("adds, renews and deletes mappings, and a successor sweeps what is left", async () => {
    const client = await IgdClient.fromDescriptionUrl(descriptionUrl);
    const mine = { ...tcp, internalClient: netns.hostAddress };
    const other = { ...udp, internalClient: netns.hostAddress };
    const manager = new PortMappingManager({
      locate: () => discoverGateway({ interfaceAddress: netns.hostAddress, searchMs: 2000 }),
      leaseSeconds: 4,
    });
    managers.push(manager);
    manager.setDesired([mine, other]);
    manager.start();

    const status = await until("both mappings active", () => {
      const now = manager.status();
      return now.mappings.every((mapping) => mapping.state === "active") ? now : undefined;
    });
    assert.equal(status.router.state, "ok");
    assert.equal(status.router.externalAddress, EXTERNAL_IP);
    assert.equal(status.mappings.length, 2);

    // The router lists them, keeps a lease for each, and has forwarding rules.
    const listed = await client.listPortMappings();
    assert.deepEqual(
      listed
        .map((entry) => [
          entry.protocol,
          entry.externalPort,
          entry.internalPort,
          entry.internalClient,
          entry.description,
        ])
        .sort(),
      [
        ["TCP", 18080, 8080, netns.hostAddress, "town default/wiki 8080"],
        ["UDP", 18081, 8081, netns.hostAddress, "town default/game 8081"],
      ],
    );
    const firstEnd = leaseEnd(await leases(), "TCP", 18080);
    assert.ok(firstEnd !== undefined, (await leases()).join("\n"));
    const rules = await netns.exec([
      "nft",
      "list",
      "chain",
      "inet",
      "filter",
      "prerouting_miniupnpd",
    ]);
    assert.match(rules, /dport 18080 dnat ip to [\d.]+:8080/);

    // Renewed at half its 4 s lease: the router's lease end moves forward,
    // and the mapping outlives its first lease.
    await until("a renewal", async () => {
      const end = leaseEnd(await leases(), "TCP", 18080);
      return end !== undefined && end > firstEnd ? end : undefined;
    });
    // The control: a mapping nobody renews lapses on this router.
    await client.addPortMapping({
      ...other,
      externalPort: 18083,
      description: "unrenewed",
      leaseSeconds: 2,
    });
    assert.ok(await client.getSpecificPortMappingEntry("UDP", 18083));
    await new Promise((resolve) => setTimeout(resolve, 5000));
    assert.ok(Date.now() / 1000 > firstEnd + 0.5);
    assert.equal(await client.getSpecificPortMappingEntry("UDP", 18083), undefined);
    assert.ok(await client.getSpecificPortMappingEntry("TCP", 18080), "lapsed despite renewals");

    // No longer desired: deleted from the router.
    manager.setDesired([mine]);
    await until("the UDP mapping to go", async () =>
      (await client.getSpecificPortMappingEntry("UDP", 18081)) === undefined ? true : undefined,
    );
    assert.equal(leaseEnd(await leases(), "UDP", 18081), undefined);
    assert.doesNotMatch(
      await netns.exec(["nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd"]),
      /dport 18081/,
    );

    // A daemon restart: the successor wants another port; the old mapping,
    // recognised by its description and client, goes.
    await manager.stop();
    const successor = new PortMappingManager({
      locate: () => IgdClient.fromDescriptionUrl(descriptionUrl),
      leaseSeconds: 60,
    });
    managers.push(successor);
    const moved = { ...mine, externalPort: 18082 };
    successor.setDesired([moved]);
    await successor.sync();
    assert.deepEqual(
      (await client.listPortMappings()).map((entry) => entry.externalPort),
      [18082],
    );
    assert.equal(successor.status().mappings[0]?.state, "active");

    // Taken down with the box: nothing left on the router.
    await successor.stop({ removeMappings: true });
    assert.deepEqual(await client.listPortMappings(), []);
    assert.deepEqual(await leases(), []);
  });

  it("shows a refusal as status, never as an exception", async () => {
    const manager = new PortMappingManager({
      locate: () => IgdClient.fromDescriptionUrl(descriptionUrl),
    });
    managers.push(manager);
    manager.setDesired([
      // Below the allowed range, and for another host than the one asking.
      { ...tcp, externalPort: 80, internalPort: 80, internalClient: netns.hostAddress },
      { ...tcp, externalPort: 18090, internalClient: "10.213.0.99" },
      { ...tcp, externalPort: 70000, internalClient: netns.hostAddress },
    ]);
    await manager.sync();
    const status = manager.status();
    assert.deepEqual(
      status.mappings.map((mapping) => [mapping.externalPort, mapping.state]),
      [
        [80, "failed"],
        [18090, "failed"],
        [70000, "failed"],
      ],
    );
    // miniupnpd's permission rules say 606; secure mode's "not for yourself" says 718.
    assert.match(status.mappings[0]?.error ?? "", /the router refused: 606 /);
    assert.match(status.mappings[1]?.error ?? "", /the router refused: 718 /);
    assert.equal(status.router.state, "refused");
    assert.equal(status.router.externalAddress, EXTERNAL_IP);
    assert.match(status.mappings[2]?.error ?? "", /bad external port/);
    assert.deepEqual(
      await (await IgdClient.fromDescriptionUrl(descriptionUrl)).listPortMappings(),
      [],
    );
  });

  it("reports a missing router", async () => {
    const unreachable = new PortMappingManager({
      locate: () =>
        IgdClient.fromDescriptionUrl(`http://${netns.namespaceAddress}:5999/rootDesc.xml`, {
          timeoutMs: 2000,
        }),
    });
    managers.push(unreachable);
    unreachable.setDesired([{ ...tcp, internalClient: netns.hostAddress }]);
    await unreachable.sync();
    assert.equal(unreachable.status().router.state, "unreachable");
    assert.equal(unreachable.status().mappings[0]?.state, "failed");

    // Nobody answers SSDP on this interface once the router is gone.
    await testRouter.kill();
    const lonely = new PortMappingManager({
      locate: () => discoverGateway({ interfaceAddress: netns.hostAddress, searchMs: 1500 }),
    });
    managers.push(lonely);
    lonely.setDesired([{ ...tcp, internalClient: netns.hostAddress }]);
    await lonely.sync();
    assert.equal(lonely.status().router.state, "not_found");
    assert.match(lonely.status().router.error ?? "", /no router answered/);
  });
});
