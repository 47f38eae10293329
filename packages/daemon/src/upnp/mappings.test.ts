import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { TownError } from "@townos/format";
import {
  UpnpFault,
  type Gateway,
  type PortMappingEntry,
  type PortMappingRequest,
  type Protocol,
} from "./igd.js";
import { PortMappingManager, mappingDescription, type DesiredMapping } from "./mappings.js";

const BOX = "192.168.1.20";

function refusal(action: string, code: number): TownError {
  return new TownError("conflict", `upnp: ${action}: the router refused: ${code} Nope`, {
    cause: new UpnpFault(code, "Nope"),
  });
}

/** A router in memory: mappings with leases that lapse by the test's clock. */
class FakeRouter implements Gateway {
  readonly service = {
    descriptionUrl: "http://192.168.1.1/desc.xml",
    controlUrl: "http://192.168.1.1/ctl",
    serviceType: "urn:schemas-upnp-org:service:WANIPConnection:1",
  };
  entries = new Map<string, PortMappingEntry & { expiresAt: number }>();
  calls: string[] = [];
  refuse = new Map<number, number>();
  permanentOnly = false;
  down = false;

  constructor(private readonly now: () => number) {}

  private live(): void {
    if (this.down) throw new TownError("unavailable", "upnp: 192.168.1.1: no answer in time");
    for (const [key, entry] of this.entries)
      if (entry.leaseSeconds > 0 && entry.expiresAt <= this.now()) this.entries.delete(key);
  }

  getExternalIPAddress(): Promise<string> {
    this.live();
    return Promise.resolve("198.51.100.7");
  }

  addPortMapping(request: PortMappingRequest): Promise<void> {
    this.live();
    this.calls.push(`add ${request.protocol}:${request.externalPort}/${request.leaseSeconds}`);
    const code = this.refuse.get(request.externalPort);
    if (code !== undefined) return Promise.reject(refusal("AddPortMapping", code));
    if (this.permanentOnly && request.leaseSeconds !== 0)
      return Promise.reject(refusal("AddPortMapping", 725));
    this.entries.set(`${request.protocol}:${request.externalPort}`, {
      ...request,
      enabled: true,
      remoteHost: "",
      expiresAt: this.now() + request.leaseSeconds * 1000,
    });
    return Promise.resolve();
  }

  deletePortMapping(protocol: Protocol, externalPort: number): Promise<void> {
    this.live();
    this.calls.push(`delete ${protocol}:${externalPort}`);
    this.entries.delete(`${protocol}:${externalPort}`);
    return Promise.resolve();
  }

  getSpecificPortMappingEntry(
    protocol: Protocol,
    externalPort: number,
  ): Promise<PortMappingEntry | undefined> {
    this.live();
    return Promise.resolve(this.entries.get(`${protocol}:${externalPort}`));
  }

  listPortMappings(): Promise<PortMappingEntry[]> {
    this.live();
    this.calls.push("list");
    return Promise.resolve([...this.entries.values()]);
  }
}

const wiki: DesiredMapping = {
  externalPort: 8080,
  internalPort: 18080,
  protocol: "TCP",
  internalClient: BOX,
  description: mappingDescription("default", "wiki", 8080),
};
const game: DesiredMapping = {
  externalPort: 27015,
  internalPort: 27015,
  protocol: "UDP",
  internalClient: BOX,
  description: mappingDescription("default", "game", 27015),
};

describe("PortMappingManager", () => {
  let now: number;
  let router: FakeRouter;
  let located: number;
  let manager: PortMappingManager;

  beforeEach(() => {
    now = 1_000_000;
    router = new FakeRouter(() => now);
    located = 0;
    manager = new PortMappingManager({
      locate: () => {
        located++;
        return Promise.resolve(router);
      },
      leaseSeconds: 600,
      clock: () => now,
    });
  });

  it("adds what is missing, checks it while the lease is young, renews it at half", async () => {
    manager.setDesired([wiki, game]);
    await manager.sync();
    assert.deepEqual(router.calls, ["list", "add TCP:8080/600", "add UDP:27015/600"]);
    const status = manager.status();
    assert.equal(status.router.state, "ok");
    assert.equal(status.router.externalAddress, "198.51.100.7");
    assert.deepEqual(
      status.mappings.map((mapping) => [mapping.externalPort, mapping.state, mapping.expiresAt]),
      [
        [8080, "active", now + 600_000],
        [27015, "active", now + 600_000],
      ],
    );

    router.calls = [];
    now += 299_000;
    await manager.sync();
    assert.deepEqual(router.calls, []);

    now += 1_000;
    await manager.sync();
    assert.deepEqual(router.calls, ["add TCP:8080/600", "add UDP:27015/600"]);
    // Renewed before the first lease ran out: never gone.
    now += 400_000;
    assert.ok(await router.getSpecificPortMappingEntry("TCP", 8080));
  });

  it("puts back what a rebooted router forgot", async () => {
    manager.setDesired([wiki]);
    await manager.sync();
    router.entries.clear();
    router.calls = [];
    await manager.sync();
    assert.deepEqual(router.calls, ["add TCP:8080/600"]);
  });

  it("deletes mappings no longer desired, and replaces changed ones", async () => {
    manager.setDesired([wiki, game]);
    await manager.sync();
    router.calls = [];
    manager.setDesired([{ ...wiki, internalPort: 18081 }]);
    await manager.sync();
    assert.deepEqual(router.calls.sort(), [
      "add TCP:8080/600",
      "delete TCP:8080",
      "delete UDP:27015",
    ]);
    assert.equal(router.entries.get("TCP:8080")?.internalPort, 18081);
    assert.deepEqual(
      manager.status().mappings.map((mapping) => mapping.externalPort),
      [8080],
    );
  });

  it("on its first pass, sweeps what an earlier daemon made and nobody wants", async () => {
    const entry = (port: number, description: string, client = BOX) => ({
      externalPort: port,
      internalPort: port,
      protocol: "TCP" as const,
      internalClient: client,
      description,
      enabled: true,
      leaseSeconds: 0,
      remoteHost: "",
      expiresAt: 0,
    });
    router.entries.set("TCP:9000", entry(9000, "town default/old 9000"));
    router.entries.set("TCP:9001", entry(9001, "Skype"));
    router.entries.set("TCP:9002", entry(9002, "town default/x 9002", "192.168.1.30"));
    manager.setDesired([wiki]);
    await manager.sync();
    assert.deepEqual([...router.entries.keys()].sort(), ["TCP:8080", "TCP:9001", "TCP:9002"]);
  });

  it("falls back to a lease without expiry for routers that take nothing else", async () => {
    router.permanentOnly = true;
    manager.setDesired([wiki]);
    await manager.sync();
    assert.deepEqual(router.calls, ["list", "add TCP:8080/600", "add TCP:8080/0"]);
    const [mapping] = manager.status().mappings;
    assert.equal(mapping?.state, "active");
    assert.equal(mapping.expiresAt, undefined);
  });

  it("shows refusals and bad mappings per mapping, and carries on with the rest", async () => {
    router.refuse.set(8080, 606);
    manager.setDesired([wiki, game, { ...game, internalPort: 1 }, { ...wiki, externalPort: 0 }]);
    await manager.sync();
    const status = manager.status();
    assert.equal(status.router.state, "refused");
    assert.deepEqual(
      status.mappings.map((mapping) => [mapping.externalPort, mapping.state, mapping.error]),
      [
        [0, "failed", "bad external port 0"],
        [8080, "failed", "upnp: AddPortMapping: the router refused: 606 Nope"],
        [27015, "active", undefined],
        [27015, "failed", "UDP:27015 is asked for twice"],
      ],
    );
  });

  it("without a router, every mapping fails with the reason, and it looks again later", async () => {
    let findable = false;
    const lonely = new PortMappingManager({
      locate: () =>
        findable
          ? Promise.resolve(router)
          : Promise.reject(new TownError("not_found", "upnp: no router answered within 3000 ms")),
      clock: () => now,
    });
    lonely.setDesired([wiki]);
    await lonely.sync();
    assert.equal(lonely.status().router.state, "not_found");
    assert.deepEqual(
      lonely.status().mappings.map((mapping) => [mapping.state, mapping.error]),
      [["failed", "upnp: no router answered within 3000 ms"]],
    );
    findable = true;
    await lonely.sync();
    assert.equal(lonely.status().router.state, "ok");
    assert.equal(lonely.status().mappings[0]?.state, "active");
  });

  it("finds the router again after it stopped answering", async () => {
    manager.setDesired([wiki]);
    await manager.sync();
    router.down = true;
    await manager.sync();
    assert.equal(manager.status().router.state, "unreachable");
    assert.equal(manager.status().mappings[0]?.state, "failed");
    router.down = false;
    await manager.sync();
    assert.equal(located, 2);
    assert.equal(manager.status().router.state, "ok");
    assert.equal(manager.status().mappings[0]?.state, "active");
  });
});
