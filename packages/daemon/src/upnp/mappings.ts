/**
 * Keeps the router's port mappings equal to the desired ones: adds the
 * missing, renews each at half its lease, checks that active ones are still
 * there, and deletes the ones no longer desired. Everything that goes wrong
 * (no router, a router that refuses, a conflict) becomes status, never an
 * exception for the caller: an install does not wait on or fail by UPnP.
 *
 * Mappings this manager made are recognised on the router by their
 * description (`town …`) and internal client, so a restarted daemon also
 * removes what its predecessor left behind.
 */
import { isIPv4 } from "node:net";
import { isTownError } from "@townos/format";
import { systemClock, type Clock } from "../clock.js";
import {
  MAX_DESCRIPTION_LENGTH,
  MAX_LEASE_SECONDS,
  upnpErrorCode,
  type Gateway,
  type Protocol,
} from "./igd.js";

export interface DesiredMapping {
  externalPort: number;
  internalPort: number;
  protocol: Protocol;
  /** The box's LAN IPv4 address. */
  internalClient: string;
  /** Made with `mappingDescription`. */
  description: string;
}

export type MappingState = "pending" | "active" | "failed";

export interface MappingStatus extends DesiredMapping {
  state: MappingState;
  error?: string;
  /** Epoch ms when the lease ends; absent for leases without expiry. */
  expiresAt?: number;
}

export type RouterState = "unknown" | "not_found" | "unreachable" | "refused" | "ok";

export interface UpnpStatus {
  router: {
    state: RouterState;
    externalAddress?: string;
    /** The connection service in use. */
    controlUrl?: string;
    error?: string;
    /** Epoch ms of the last pass that reached the router. */
    checkedAt?: number;
  };
  mappings: MappingStatus[];
}

export interface PortMappingManagerOptions {
  /** Finds the router (see `discoverGateway`); called again after the router stops answering. */
  locate: () => Promise<Gateway>;
  /** Default 3600; renewed at half. */
  leaseSeconds?: number;
  /** Passes run at least this often to notice a rebooted router; default 5 min. */
  checkIntervalMs?: number;
  /** After a failure (no router, refusal) the next pass comes this soon; default 1 min. */
  retryMs?: number;
  clock?: Clock;
}

const DESCRIPTION_PREFIX = "town ";
const MAX_MAPPINGS = 256;

/** `town <repo>/<instance> <port>`, cut to what routers keep. */
export function mappingDescription(repo: string, instance: string, port: number): string {
  return `${DESCRIPTION_PREFIX}${repo}/${instance} ${port}`
    .replace(/\p{Cc}/gu, "")
    .slice(0, MAX_DESCRIPTION_LENGTH);
}

interface Tracked {
  desired: DesiredMapping;
  state: MappingState;
  error?: string;
  expiresAt?: number;
  renewAt: number;
  /** The router took it at least once: it may still be there. */
  made: boolean;
}

export class PortMappingManager {
  private readonly leaseSeconds: number;
  private readonly checkIntervalMs: number;
  private readonly retryMs: number;
  private readonly clock: Clock;
  private desired = new Map<string, DesiredMapping>();
  /** Mappings we want or made, by `PROTO:port`. */
  private tracked = new Map<string, Tracked>();
  /** Made by us, no longer desired, not yet deleted. */
  private leftovers = new Map<string, DesiredMapping>();
  private invalid: MappingStatus[] = [];
  private client: Gateway | undefined;
  private swept = false;
  private router: UpnpStatus["router"] = { state: "unknown" };
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private pass: Promise<void> | undefined;
  private again = false;

  constructor(private readonly options: PortMappingManagerOptions) {
    this.leaseSeconds = Math.min(Math.max(options.leaseSeconds ?? 3600, 0), MAX_LEASE_SECONDS);
    this.checkIntervalMs = options.checkIntervalMs ?? 300_000;
    this.retryMs = options.retryMs ?? 60_000;
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Replaces the desired mappings and schedules a pass at once. Never throws:
   * a mapping that is malformed or collides with another shows as failed.
   */
  setDesired(mappings: readonly DesiredMapping[]): void {
    const next = new Map<string, DesiredMapping>();
    this.invalid = [];
    for (const mapping of mappings.slice(0, MAX_MAPPINGS)) {
      const problem = checkMapping(mapping);
      const key = keyOf(mapping);
      const error = problem ?? (next.has(key) ? `${key} is asked for twice` : undefined);
      if (error !== undefined) this.invalid.push({ ...mapping, state: "failed", error });
      else next.set(key, { ...mapping });
    }
    for (const mapping of mappings.slice(MAX_MAPPINGS))
      this.invalid.push({
        ...mapping,
        state: "failed",
        error: `more than ${MAX_MAPPINGS} mappings`,
      });
    for (const [key, tracked] of this.tracked) {
      if (sameMapping(tracked.desired, next.get(key))) continue;
      this.tracked.delete(key);
      if (tracked.made) this.leftovers.set(key, tracked.desired);
    }
    for (const [key, mapping] of next) {
      // A leftover with other values than wanted now is deleted first, then added anew.
      if (sameMapping(mapping, this.leftovers.get(key))) this.leftovers.delete(key);
      if (!this.tracked.has(key))
        this.tracked.set(key, { desired: mapping, state: "pending", renewAt: 0, made: false });
    }
    this.desired = next;
    if (this.running) this.schedule(0);
  }

  /** Starts passes: now, then whenever a lease, a retry or a check is due. */
  start(): void {
    this.running = true;
    this.schedule(0);
  }

  /**
   * Stops the passes. With `removeMappings`, first deletes every mapping it
   * made (best effort) — for a box going offline, not for a daemon restart.
   */
  async stop(options: { removeMappings?: boolean } = {}): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.pass;
    if (options.removeMappings !== true) return;
    this.setDesired([]);
    await this.sync();
  }

  status(): UpnpStatus {
    const mappings: MappingStatus[] = [...this.tracked.values()].map((tracked) => {
      const status: MappingStatus = { ...tracked.desired, state: tracked.state };
      if (tracked.error !== undefined) status.error = tracked.error;
      if (tracked.expiresAt !== undefined) status.expiresAt = tracked.expiresAt;
      return status;
    });
    mappings.push(...this.invalid);
    mappings.sort(
      (a, b) => a.externalPort - b.externalPort || a.protocol.localeCompare(b.protocol),
    );
    return { router: { ...this.router }, mappings };
  }

  /** One pass now (passes never overlap). Never throws. */
  async sync(): Promise<void> {
    if (this.pass !== undefined) {
      this.again = true;
      return this.pass;
    }
    this.pass = this.runPass().finally(() => {
      this.pass = undefined;
    });
    await this.pass;
    if (this.again) {
      this.again = false;
      await this.sync();
    }
  }

  private async runPass(): Promise<void> {
    const client = await this.reachRouter();
    if (client === undefined) {
      for (const tracked of this.tracked.values()) {
        tracked.state = "failed";
        tracked.error = this.router.error ?? "no router";
      }
      return;
    }
    if (!this.swept) await this.sweep(client);
    for (const [key, mapping] of this.leftovers) {
      try {
        await client.deletePortMapping(mapping.protocol, mapping.externalPort);
        this.leftovers.delete(key);
      } catch (error) {
        this.noteRouterError(error);
      }
    }
    for (const tracked of this.tracked.values()) await this.reconcile(client, tracked);
  }

  /** The router's client with a fresh external address, or undefined (status says why). */
  private async reachRouter(): Promise<Gateway | undefined> {
    try {
      this.client ??= await this.options.locate();
    } catch (error) {
      this.router = {
        state: isTownError(error) && error.code === "not_found" ? "not_found" : "unreachable",
        error: message(error),
      };
      return undefined;
    }
    try {
      const externalAddress = await this.client.getExternalIPAddress();
      this.router = {
        state: "ok",
        externalAddress,
        controlUrl: this.client.service.controlUrl,
        checkedAt: this.clock(),
      };
      return this.client;
    } catch (error) {
      // Maybe the router moved or rebooted with another address: look again next pass.
      this.router = {
        state: upnpErrorCode(error) === 606 ? "refused" : "unreachable",
        controlUrl: this.client.service.controlUrl,
        error: message(error),
      };
      if (upnpErrorCode(error) === undefined) this.client = undefined;
      return undefined;
    }
  }

  /** Deletes mappings a previous daemon made that nobody wants any more. */
  private async sweep(client: Gateway): Promise<void> {
    const ours = new Set([...this.desired.values()].map((mapping) => mapping.internalClient));
    try {
      for (const entry of await client.listPortMappings()) {
        const key = keyOf(entry);
        if (
          entry.description.startsWith(DESCRIPTION_PREFIX) &&
          ours.has(entry.internalClient) &&
          !this.desired.has(key)
        )
          this.leftovers.set(key, { ...entry });
      }
      this.swept = true;
    } catch (error) {
      this.noteRouterError(error);
    }
  }

  private async reconcile(client: Gateway, tracked: Tracked): Promise<void> {
    const now = this.clock();
    const { desired } = tracked;
    try {
      if (tracked.state === "active" && now < tracked.renewAt) {
        // Not due: just check that the router still has it (it may have rebooted).
        const entry = await client.getSpecificPortMappingEntry(
          desired.protocol,
          desired.externalPort,
        );
        if (
          entry !== undefined &&
          entry.internalClient === desired.internalClient &&
          entry.internalPort === desired.internalPort
        )
          return;
      }
      let lease = this.leaseSeconds;
      try {
        await client.addPortMapping({ ...desired, leaseSeconds: lease });
      } catch (error) {
        // Old routers take only leases without expiry.
        if (upnpErrorCode(error) !== 725 || lease === 0) throw error;
        lease = 0;
        await client.addPortMapping({ ...desired, leaseSeconds: 0 });
      }
      tracked.state = "active";
      tracked.made = true;
      delete tracked.error;
      if (lease === 0) {
        delete tracked.expiresAt;
        tracked.renewAt = Number.POSITIVE_INFINITY;
      } else {
        tracked.expiresAt = now + lease * 1000;
        tracked.renewAt = now + (lease * 1000) / 2;
      }
    } catch (error) {
      tracked.state = "failed";
      tracked.error = message(error);
      tracked.renewAt = 0;
      delete tracked.expiresAt;
      this.noteRouterError(error);
    }
  }

  /** An authorization refusal says something about the router as a whole. */
  private noteRouterError(error: unknown): void {
    const code = upnpErrorCode(error);
    if (code === 606) this.router = { ...this.router, state: "refused", error: message(error) };
    else if (code === undefined && isTownError(error) && error.code === "unavailable") {
      this.router = { ...this.router, state: "unreachable", error: message(error) };
      this.client = undefined;
    }
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.sync().then(() => {
        if (this.running) this.schedule(this.nextDelay());
      });
    }, delayMs);
    this.timer.unref();
  }

  /** Until the earliest renewal, retry or periodic check. */
  private nextDelay(): number {
    const now = this.clock();
    let next = now + this.checkIntervalMs;
    const failing =
      this.router.state !== "ok" ||
      this.leftovers.size > 0 ||
      [...this.tracked.values()].some((tracked) => tracked.state !== "active");
    if (failing) next = Math.min(next, now + this.retryMs);
    for (const tracked of this.tracked.values())
      if (tracked.state === "active") next = Math.min(next, tracked.renewAt);
    return Math.max(0, next - now);
  }
}

function checkMapping(mapping: DesiredMapping): string | undefined {
  const port = (value: number): boolean => Number.isInteger(value) && value >= 1 && value <= 65535;
  if (!port(mapping.externalPort)) return `bad external port ${mapping.externalPort}`;
  if (!port(mapping.internalPort)) return `bad internal port ${mapping.internalPort}`;
  // Typed, but it may come from stored data: check anyway.
  const protocol: string = mapping.protocol;
  if (protocol !== "TCP" && protocol !== "UDP") return "protocol must be TCP or UDP";
  if (!isIPv4(mapping.internalClient)) return "the internal client must be an IPv4 address";
  if (mapping.description.length > MAX_DESCRIPTION_LENGTH || /\p{Cc}/u.test(mapping.description))
    return "bad description";
  return undefined;
}

function keyOf(mapping: { protocol: Protocol; externalPort: number }): string {
  return `${mapping.protocol}:${mapping.externalPort}`;
}

function sameMapping(a: DesiredMapping, b: DesiredMapping | undefined): boolean {
  return (
    b !== undefined &&
    a.internalPort === b.internalPort &&
    a.internalClient === b.internalClient &&
    a.description === b.description
  );
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
