/**
 * The box's networking as one service: HTTPS ingress (Caddy), names (dnsmasq
 * and mDNS) and router port mappings (UPnP), all fed from one input that the
 * daemon derives from the installs. Each part fails on its own: a part that
 * cannot run shows why in `status()` while the others serve.
 *
 * Networking is a kind of the reconcile manager with one object,
 * `network/box`: `update` writes the desired inputs and enqueues it, so a
 * burst of updates is applied once, with the newest inputs.
 *
 * Caddy and dnsmasq outlive the daemon (`close()` leaves them serving, the
 * next daemon adopts them), so names and HTTPS keep working while it restarts.
 */
import { mkdir } from "node:fs/promises";
import { isIPv4 } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { periodic, type Manager } from "../reconcile/manager.js";
import { DnsmasqSupervisor, hostUpstreams, type DnsStatus } from "../dns/dnsmasq.js";
import { MdnsResponder, type MdnsStatus } from "../dns/mdns.js";
import { Ingress, type IngressServiceStatus } from "../ingress/ingress.js";
import { PortMappingManager, type UpnpStatus } from "../upnp/mappings.js";
import { discoverGateway } from "../upnp/ssdp.js";
import {
  compileIngressLeniently,
  planNetwork,
  withoutRefusedRecords,
  type AppUrls,
  type NetworkInputs,
  type PageUrls,
} from "./plan.js";

export type { NetworkApp, NetworkInputs } from "./plan.js";

export interface NetworkLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface NetworkOptions {
  /** Kept across restarts: Caddy's local CA and certificates live here. */
  dataDir: string;
  /**
   * dnsmasq's files. dnsmasq re-reads them as `nobody`, so this directory and
   * its parents must be traversable by everyone (the data directory is not).
   * Default `/run/town/dns`.
   */
  dnsDir?: string;
  httpsPort: number;
  httpPort: number;
  dnsPort: number;
  /** Loopback ports of Caddy's static sites server and ACME solver, behind HAProxy. */
  sitesPort: number;
  acmeChallengePort: number;
  /** Caddy's Prometheus metrics on `127.0.0.1:<port>`; absent: none. */
  metricsPort?: number;
  /** Announced by mDNS; default `town-os.local`. */
  mdnsName?: string;
  /** The router's description URL; absent: found by SSDP. */
  gatewayUrl?: string;
  /** The box's IPv4 LAN addresses, read at every update (they may change). */
  lanAddresses: () => string[];
  /** How often the addresses are compared with the applied ones; default ADDRESS_CHECK_MS. */
  addressCheckMs?: number;
  log: NetworkLog;
  /** Runs the `network` kind: the updates, one at a time. */
  manager: Manager;
}

export interface NetworkStatus {
  /** `off` when this daemon runs without networking; the parts are null then. */
  state: "on" | "off";
  ingress: IngressServiceStatus | null;
  dns: DnsStatus | null;
  mdns: MdnsStatus | null;
  upnp: UpnpStatus | null;
  /** Where the dashboard is served through the ingress; null before the first update. */
  dashboardUrl: string | null;
  /** The router forwards 443 and 80 to the ingress for public domains (setting `upnp.forward_https`). */
  forwardHttps: boolean;
  apps: AppUrls[];
  pages: PageUrls[];
  /** What the last update left out or could not apply, and why. */
  problems: string[];
  /** Epoch ms of the last update. */
  updatedAt: number | null;
}

/** What the status route shows when networking is turned off. */
export const NETWORK_OFF: NetworkStatus = {
  state: "off",
  ingress: null,
  dns: null,
  mdns: null,
  upnp: null,
  dashboardUrl: null,
  forwardHttps: false,
  apps: [],
  pages: [],
  problems: [],
  updatedAt: null,
};

export const DEFAULT_MDNS_NAME = "town-os.local";
/**
 * A new DHCP lease (or a daemon started before the network was up: the image
 * does not wait for it) is applied within this long: DNS answers and
 * dnsmasq's listening addresses follow the box's address.
 */
export const ADDRESS_CHECK_MS = 5_000;
export const DEFAULT_DNS_DIR = "/run/town/dns";

/** The manager's kind of networking, and the key of its only object (the box). */
export const NETWORK = "network";
const NETWORK_KEY = `${NETWORK}/box`;

interface Applied {
  dashboardUrl: string;
  forwardHttps: boolean;
  apps: AppUrls[];
  pages: PageUrls[];
  problems: string[];
  at: number;
}

export class Network {
  /** Where the pages' versions live (the ingress serves them from there); exists once `start()` ran. */
  readonly sitesDir: string;
  private readonly ingress: Ingress;
  private readonly dns: DnsmasqSupervisor;
  private readonly dnsDir: string;
  private readonly upnp: PortMappingManager;
  private mdns: MdnsResponder | undefined;
  private mdnsProblem: string | undefined;
  private mdnsInterface: string | undefined;
  private started: Promise<void> | undefined;
  private applied: Applied | undefined;
  /** The newest inputs: each reconcile applies them. */
  private desired: NetworkInputs | undefined;
  /** The LAN addresses the last update applied. */
  private appliedAddresses: string | undefined;
  private closed = false;

  constructor(private readonly options: NetworkOptions) {
    const log = options.log;
    this.ingress = new Ingress({ dataDir: join(options.dataDir, "ingress"), log });
    this.sitesDir = this.ingress.paths.sitesDir;
    this.dnsDir = options.dnsDir ?? DEFAULT_DNS_DIR;
    this.dns = new DnsmasqSupervisor({ dir: this.dnsDir });
    this.upnp = new PortMappingManager({
      locate: () =>
        discoverGateway(
          options.gatewayUrl !== undefined
            ? { descriptionUrl: options.gatewayUrl }
            : withInterface(this.firstIpv4()),
        ),
    });
    options.manager.register(NETWORK, { reconcile: () => this.reconcile() });
    options.manager.watch(
      NETWORK,
      periodic(options.addressCheckMs ?? ADDRESS_CHECK_MS, (enqueue) => {
        const now = options.lanAddresses().join(" ");
        if (this.appliedAddresses !== undefined && now !== this.appliedAddresses) {
          options.log.info(`network: the box's addresses are now ${now || "none"}`);
          enqueue(NETWORK_KEY);
        }
      }),
    );
  }

  /**
   * Starts Caddy (or adopts it), mDNS and the UPnP manager; dnsmasq starts
   * with the first update, which it needs a configuration for. Never throws.
   */
  start(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.started ??= this.startParts();
    return this.started;
  }

  /**
   * Makes the parts serve `inputs`, resolving once they do. Idempotent
   * (unchanged configurations are not applied again) and serialized; calls
   * during an update coalesce into one more update with the newest inputs.
   * Never throws: what fails shows in `status()`.
   */
  async update(inputs: NetworkInputs): Promise<void> {
    if (this.closed) return;
    this.desired = inputs;
    await this.options.manager.requestAndWait(NETWORK_KEY);
  }

  /** Where Caddy serves its metrics (`127.0.0.1:PORT`); null when it does not. */
  get metricsAddress(): string | null {
    return this.options.metricsPort === undefined ? null : `127.0.0.1:${this.options.metricsPort}`;
  }

  status(): NetworkStatus {
    const mdns = this.mdns?.status() ?? null;
    return {
      state: "on",
      ingress: this.ingress.status(),
      dns: this.dns.status(),
      mdns,
      upnp: this.upnp.status(),
      dashboardUrl: this.applied?.dashboardUrl ?? null,
      forwardHttps: this.applied?.forwardHttps ?? false,
      apps: this.applied?.apps ?? [],
      pages: this.applied?.pages ?? [],
      problems: [
        ...(this.mdnsProblem === undefined ? [] : [this.mdnsProblem]),
        ...(this.applied?.problems ?? []),
      ],
      updatedAt: this.applied?.at ?? null,
    };
  }

  /**
   * The local CA's root certificate (PEM).
   * @throws TownError `unavailable` while Caddy has not made its CA yet.
   */
  rootCertificate(): Promise<string> {
    return this.ingress.rootCertificate();
  }

  /** Leaves Caddy and dnsmasq serving; stops mDNS and the UPnP passes (mappings stay until their lease ends). */
  async close(): Promise<void> {
    await this.quiesce();
    this.ingress.close();
    this.dns.detach();
    await this.upnp.stop();
    await this.mdns?.stop();
  }

  /** Tests only: `close()`, and stops Caddy and dnsmasq too, waiting until they are gone. */
  async stopForTests(): Promise<void> {
    await this.close();
    await this.ingress.stop();
    await this.dns.stop();
  }

  private async startParts(): Promise<void> {
    await this.ingress.start().catch((error: unknown) => {
      // Caddy's own failures are in its status; this is the directory or the like.
      this.options.log.warn(`network: ingress: ${message(error)}`);
    });
    await this.followMdnsInterface();
    if (!this.closed) this.upnp.start();
  }

  /**
   * mDNS joins its group on the box's first IPv4 address: started again when
   * that address changes (a new lease, or none yet at the first start), and
   * tried again at each update while it fails.
   */
  private async followMdnsInterface(): Promise<void> {
    const interfaceAddress = this.firstIpv4();
    const running = this.mdns?.status().state === "running";
    if (this.closed || (running && this.mdnsInterface === interfaceAddress)) return;
    await this.mdns?.stop();
    this.mdnsInterface = interfaceAddress;
    this.mdnsProblem = undefined;
    try {
      this.mdns = new MdnsResponder({
        name: this.options.mdnsName ?? DEFAULT_MDNS_NAME,
        addresses: () => this.options.lanAddresses(),
        ...(interfaceAddress === undefined ? {} : { interfaceAddress }),
      });
      await this.mdns.start();
    } catch (error) {
      this.mdnsProblem = `mdns: ${message(error)}`;
    }
  }

  /** The `network/box` reconcile: applies the newest inputs. Never fails. */
  private async reconcile(): Promise<undefined> {
    await this.start();
    const inputs = this.desired;
    if (inputs === undefined || this.closed) return undefined;
    try {
      await this.apply(inputs);
    } catch (error) {
      // Every step catches its own failures; this is a bug, kept visible all the same.
      this.options.log.warn(`network: update failed: ${message(error)}`);
    }
    return undefined;
  }

  private async apply(inputs: NetworkInputs): Promise<void> {
    const lanAddresses = this.options.lanAddresses();
    this.appliedAddresses = lanAddresses.join(" ");
    await this.followMdnsInterface();
    const plan = planNetwork(inputs, {
      httpsPort: this.options.httpsPort,
      httpPort: this.options.httpPort,
      dnsPort: this.options.dnsPort,
      lanAddresses,
      sitesPort: this.options.sitesPort,
      acmeChallengePort: this.options.acmeChallengePort,
      ...this.ingress.locations(),
      ...(this.options.metricsPort === undefined ? {} : { metricsPort: this.options.metricsPort }),
    });
    const problems = [...plan.problems];

    try {
      const { compiled, problems: leftOut } = compileIngressLeniently(plan.ingress);
      problems.push(...leftOut);
      // A refusal is in the ingress status (lastError); the old config keeps serving.
      await this.ingress.apply(compiled).catch(() => undefined);
    } catch (error) {
      problems.push(`ingress: ${message(error)}`);
    }

    try {
      await mkdir(this.dnsDir, { recursive: true, mode: 0o755 });
      const upstreams = await hostUpstreams(plan.dns.listen);
      const input = { ...plan.dns, upstreams };
      await this.dns.apply(input).catch(async (error: unknown) => {
        const kept = withoutRefusedRecords(input.records, error);
        if (kept === undefined) throw error;
        problems.push(...kept.problems);
        await this.dns.apply({ ...input, records: kept.records });
      });
    } catch (error) {
      problems.push(`dns: ${message(error)}`);
    }

    this.upnp.setDesired(plan.mappings);
    this.applied = {
      dashboardUrl: plan.dashboardUrl,
      forwardHttps: inputs.forwardHttps === true,
      apps: plan.apps,
      pages: plan.pages,
      problems,
      at: Date.now(),
    };
  }

  /** Lets the running update finish and refuses new ones (the kind's sources stop too). */
  private async quiesce(): Promise<void> {
    this.closed = true;
    this.desired = undefined;
    await this.started;
    await this.options.manager.stop(NETWORK);
  }

  private firstIpv4(): string | undefined {
    return this.options.lanAddresses().find((address) => isIPv4(address));
  }
}

/**
 * The host's IPv4 LAN addresses: every non-loopback interface except the
 * bridges and tunnels of containers and VMs, which LAN clients cannot reach.
 */
export function hostLanAddresses(): string[] {
  const addresses: string[] = [];
  for (const [name, list] of Object.entries(networkInterfaces())) {
    if (VIRTUAL_INTERFACE.test(name)) continue;
    for (const address of list ?? [])
      if (address.family === "IPv4" && !address.internal) addresses.push(address.address);
  }
  return addresses;
}

const VIRTUAL_INTERFACE = /^(podman|cni|veth|docker|br-|virbr|vnet|tap|tun|ifb)/;

function withInterface(address: string | undefined): { interfaceAddress?: string } {
  return address === undefined ? {} : { interfaceAddress: address };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
