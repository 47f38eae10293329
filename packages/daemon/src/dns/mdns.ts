/**
 * Announces the box on the LAN by multicast DNS (RFC 6762) as
 * `town-os.local`, so a browser finds the dashboard before anyone has set up
 * DNS. A small responder for one name: it answers A (and AAAA) questions for
 * that name with the box's LAN addresses and announces them at start; other
 * names are left to whatever else answers mDNS on the box (the socket shares
 * port 5353 with Avahi, if present).
 */
import dgram from "node:dgram";
import { isIPv4, isIPv6 } from "node:net";
import packet, { type Answer, type Question } from "dns-packet";
import { TownError } from "@townos/format";

export const MDNS_GROUP = "224.0.0.251";
export const MDNS_PORT = 5353;

export interface MdnsResponderOptions {
  /** The name answered, ending in `.local`. */
  name: string;
  /** The box's LAN addresses; read for every answer, so they may change. */
  addresses: () => readonly string[];
  /**
   * IPv4 address of the LAN interface to serve on; the system's default
   * multicast interface when absent. One responder per interface.
   */
  interfaceAddress?: string;
  /** 5353; another port only for tests. */
  port?: number;
  /** Seconds; RFC 6762 recommends 120 for address records. */
  ttl?: number;
}

export interface MdnsStatus {
  state: "stopped" | "running" | "failed";
  name: string;
  error?: string;
  /** Questions for our name answered since start. */
  answered: number;
}

/** Legacy (one-shot) resolvers get short TTLs: they do not see goodbye packets. */
const LEGACY_TTL = 10;
const ANNOUNCE_INTERVAL_MS = 1000;
/** The QU bit rides in the class field; dns-packet 5 reports such classes as UNKNOWN_<n>. */
const QU_BIT = 0x8000;
const CLASS_IN = 1;
const CLASS_ANY = 255;
const NAME = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+local$/;

export class MdnsResponder {
  private readonly name: string;
  private socket: dgram.Socket | undefined;
  private announceTimer: NodeJS.Timeout | undefined;
  private state: MdnsStatus["state"] = "stopped";
  private error: string | undefined;
  private answered = 0;

  /** @throws TownError `invalid_argument` for a name outside `.local` or a bad interface address. */
  constructor(private readonly options: MdnsResponderOptions) {
    this.name = options.name.toLowerCase();
    if (this.name.length > 253 || !NAME.test(this.name))
      throw new TownError(
        "invalid_argument",
        `mdns: not a .local name: ${options.name.slice(0, 80)}`,
      );
    if (options.interfaceAddress !== undefined && !isIPv4(options.interfaceAddress))
      throw new TownError("invalid_argument", "mdns: the interface address must be IPv4");
  }

  /** Binds and announces. Failure (port taken, no such interface) is kept in `status()`, not thrown. */
  async start(): Promise<void> {
    if (this.socket !== undefined) return;
    const socket = dgram.createSocket({ type: "udp4", reuseAddr: true });
    this.socket = socket;
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(this.options.port ?? MDNS_PORT, () => {
          socket.off("error", reject);
          resolve();
        });
      });
      socket.addMembership(MDNS_GROUP, this.options.interfaceAddress);
      if (this.options.interfaceAddress !== undefined)
        socket.setMulticastInterface(this.options.interfaceAddress);
      socket.setMulticastTTL(255);
    } catch (error) {
      socket.close();
      this.socket = undefined;
      this.state = "failed";
      this.error = `mdns: ${(error as Error).message}`;
      return;
    }
    socket.on("error", (error) => {
      this.state = "failed";
      this.error = `mdns: ${error.message}`;
    });
    socket.on("message", (message, from) => {
      this.onMessage(message, from);
    });
    this.state = "running";
    this.error = undefined;
    // RFC 6762 §8.3: announce twice, a second apart.
    this.announce();
    this.announceTimer = setTimeout(() => {
      this.announce();
    }, ANNOUNCE_INTERVAL_MS);
    this.announceTimer.unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.announceTimer);
    const socket = this.socket;
    this.socket = undefined;
    this.state = "stopped";
    if (socket !== undefined) await new Promise<void>((resolve) => socket.close(resolve));
  }

  status(): MdnsStatus {
    const status: MdnsStatus = { state: this.state, name: this.name, answered: this.answered };
    if (this.error !== undefined) status.error = this.error;
    return status;
  }

  private onMessage(message: Buffer, from: dgram.RemoteInfo): void {
    let query: packet.DecodedPacket;
    try {
      query = packet.decode(message);
    } catch {
      return; // Not DNS: nothing to answer.
    }
    if (query.type !== "query" || query.questions === undefined) return;
    const legacy = from.port !== (this.options.port ?? MDNS_PORT);
    const answers: Answer[] = [];
    let unicast = legacy;
    for (const question of query.questions) {
      const match = this.matches(question);
      if (match === undefined) continue;
      unicast ||= match.unicast;
      answers.push(...this.records(question.type, legacy ? LEGACY_TTL : undefined));
    }
    if (answers.length === 0) return;
    this.answered++;
    const reply = packet.encode({
      type: "response",
      // Legacy resolvers match replies by id and question (RFC 6762 §6.7).
      id: legacy ? (query.id ?? 0) : 0,
      flags: packet.AUTHORITATIVE_ANSWER,
      questions: legacy ? query.questions.filter((q) => this.matches(q) !== undefined) : [],
      answers,
    });
    if (unicast) this.send(reply, from.port, from.address);
    else this.send(reply, MDNS_PORT, MDNS_GROUP);
  }

  /** Whether a question is for our name in class IN/ANY, and whether it asks a unicast reply. */
  private matches(question: Question): { unicast: boolean } | undefined {
    if (question.name.toLowerCase() !== this.name) return undefined;
    if (!["A", "AAAA", "ANY"].includes(question.type)) return undefined;
    const klass = classNumber(question.class);
    if (klass === undefined) return undefined;
    const plain = klass & ~QU_BIT;
    if (plain !== CLASS_IN && plain !== CLASS_ANY) return undefined;
    return { unicast: (klass & QU_BIT) !== 0 };
  }

  private records(type: string, legacyTtl?: number): Answer[] {
    const ttl = legacyTtl ?? this.options.ttl ?? 120;
    // Cache-flush: these are all our addresses, a peer should drop older ones.
    const flush = legacyTtl === undefined;
    const answers: Answer[] = [];
    for (const address of this.options.addresses()) {
      if (isIPv4(address) && (type === "A" || type === "ANY"))
        answers.push({ type: "A", name: this.name, ttl, class: "IN", flush, data: address });
      if (isIPv6(address) && (type === "AAAA" || type === "ANY"))
        answers.push({ type: "AAAA", name: this.name, ttl, class: "IN", flush, data: address });
    }
    return answers;
  }

  private announce(): void {
    const answers = this.records("ANY");
    if (answers.length === 0) return;
    this.send(
      packet.encode({ type: "response", id: 0, flags: packet.AUTHORITATIVE_ANSWER, answers }),
      MDNS_PORT,
      MDNS_GROUP,
    );
  }

  private send(message: Buffer, port: number, address: string): void {
    this.socket?.send(message, port, address, (error) => {
      if (error) this.error = `mdns: send to ${address}: ${error.message}`;
    });
  }
}

function classNumber(value: string | undefined): number | undefined {
  if (value === undefined || value === "IN") return CLASS_IN;
  if (value === "ANY") return CLASS_ANY;
  const unknown = /^UNKNOWN_(\d+)$/.exec(value);
  return unknown?.[1] === undefined ? undefined : Number(unknown[1]);
}
