/**
 * A real router for UPnP tests: miniupnpd in a network namespace the test
 * makes, joined to the host by a veth pair, with nftables rules of its own.
 * SSDP, SOAP and the router's rules all stay inside. `startNetworkBehind`
 * starts the box's Network with the router as its gateway.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Network } from "../src/net/network.js";
import { Manager } from "../src/reconcile/manager.js";
import { freeNetworkPorts } from "./net.js";
import { createTestNetns, netnsMissing, type TestNetns } from "./netns.js";

/** Why a test router cannot run here, or false. */
export const routerMissing: string | false =
  netnsMissing || programMissing("miniupnpd") || programMissing("nft");

function programMissing(name: string): string | false {
  try {
    execFileSync("sh", ["-c", `command -v ${name} || test -x /usr/sbin/${name}`], {
      stdio: "ignore",
    });
    return false;
  } catch {
    return `${name} is not installed`;
  }
}

/**
 * What the router reports as its external address. miniupnpd refuses
 * private and documentation addresses; this one is only reported, never
 * routed: no interface holds it and nothing is sent to it.
 */
export const EXTERNAL_IP = "198.20.0.1";
const HTTP_PORT = 5000;

/** The chains miniupnpd 2.3's nftables backend fills (its defaults). */
const NFT_TABLES = `
table inet filter {
  chain forward { type filter hook forward priority 0; policy drop; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
`;

export interface TestRouter {
  netns: TestNetns;
  /** Where the router's description is, for a configured gateway URL. */
  descriptionUrl: string;
  /** The lease file's lines: `PROTO:EXTPORT:CLIENT:INTPORT:END:DESC`. */
  leases(): Promise<string[]>;
  /** What miniupnpd printed so far. */
  log(): string;
  /** Ends miniupnpd, keeping the namespace: a router that went away. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts miniupnpd in a new namespace (`index` tells namespaces of one process apart). */
export async function startTestRouter(index: number): Promise<TestRouter> {
  const netns = await createTestNetns("town-upnp", index);
  const dir = await mkdtemp(join(tmpdir(), "town-upnp-"));
  let output = "";
  let router: ChildProcess | undefined;
  try {
    // The router's WAN side: a veth pair that never leaves the namespace.
    await netns.exec(["ip", "link", "add", "wan0", "type", "veth", "peer", "name", "wan0p"]);
    await netns.exec([
      "ip",
      "addr",
      "add",
      `10.214.${(process.pid + index) % 256}.1/24`,
      "dev",
      "wan0",
    ]);
    await netns.exec(["ip", "link", "set", "wan0", "up"]);
    await netns.exec(["ip", "link", "set", "wan0p", "up"]);
    await writeFile(join(dir, "tables.nft"), NFT_TABLES);
    await netns.exec(["nft", "-f", join(dir, "tables.nft")]);
    await writeFile(
      join(dir, "miniupnpd.conf"),
      [
        "ext_ifname=wan0",
        `ext_ip=${EXTERNAL_IP}`,
        `listening_ip=${netns.namespaceInterface}`,
        `http_port=${HTTP_PORT}`,
        "enable_upnp=yes",
        "enable_natpmp=no",
        // Clients may map only to themselves, and only the host side may ask.
        "secure_mode=yes",
        "system_uptime=yes",
        `lease_file=${join(dir, "leases")}`,
        "uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b",
        `allow 1024-65535 ${netns.hostAddress}/32 1024-65535`,
        // The ingress's HTTPS and HTTP, which a home router lets its owner forward.
        `allow 443 ${netns.hostAddress}/32 1024-65535`,
        `allow 80 ${netns.hostAddress}/32 1024-65535`,
        "deny 0-65535 0.0.0.0/0 0-65535",
        "",
      ].join("\n"),
    );
    const started = netns.spawn([
      "miniupnpd",
      "-d",
      "-f",
      join(dir, "miniupnpd.conf"),
      "-P",
      join(dir, "miniupnpd.pid"),
    ]);
    router = started;
    started.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    started.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 15_000;
    while (!output.includes("HTTP listening")) {
      if (Date.now() > deadline) throw new Error(`miniupnpd did not start; it said: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    router?.kill();
    await netns.remove();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    netns,
    descriptionUrl: `http://${netns.namespaceAddress}:${HTTP_PORT}/rootDesc.xml`,
    async leases() {
      const text = await readFile(join(dir, "leases"), "utf8").catch(() => "");
      return text.split("\n").filter((line) => line !== "");
    },
    log: () => output,
    async kill() {
      const running = router;
      if (running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once("exit", resolve));
      running.kill("SIGTERM");
      await exited;
    },
    async stop() {
      router.kill();
      await netns.remove();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A started Network on free ports with its files in `scratch`, behind `router` (its gateway and LAN). */
export async function startNetworkBehind(router: TestRouter, scratch: string): Promise<Network> {
  const network = new Network({
    dataDir: join(scratch, "data"),
    dnsDir: join(scratch, "dns"),
    ...(await freeNetworkPorts()),
    gatewayUrl: router.descriptionUrl,
    // The box's "LAN" is the host side of the router's veth.
    lanAddresses: () => [router.netns.hostAddress],
    log: { info: () => undefined, warn: () => undefined },
    manager: new Manager(),
  });
  await network.start();
  return network;
}
