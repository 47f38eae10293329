/**
 * The box's own address on the LAN, chosen by its owner: DHCP (the image's
 * default) or a fixed IPv4 address on one wired interface. Pure: checking
 * settings (they come from the API and from a file on the data pool, both
 * untrusted) and compiling them to a systemd-networkd `.network` file.
 */
import { findControlCharacter, TownError, type Issue } from "@townos/format";

export interface StaticNetwork {
  mode: "static";
  interface: string;
  /** IPv4 CIDR, e.g. `192.168.1.50/24`. */
  address: string;
  gateway: string;
  /** 0 to 3 servers; none: the gateway answers DNS. */
  dns: string[];
}
export type NetworkSettings = { mode: "dhcp" } | StaticNetwork;

export const DHCP: NetworkSettings = { mode: "dhcp" };
export const MAX_DNS_SERVERS = 3;
/** Longer than any address or interface name: anything beyond is refused unread. */
const MAX_FIELD_LENGTH = 64;
/** Linux's IFNAMSIZ less the terminating zero. */
const MAX_INTERFACE_LENGTH = 15;
const INTERFACE_NAME = /^[A-Za-z0-9_.-]+$/;
const OCTETS = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

/** Ranges no box's own address, gateway or DNS server can be in: [first, prefix, what]. */
const UNUSABLE: readonly (readonly [number, number, string])[] = [
  [0x00000000, 8, "in 0.0.0.0/8 (this network)"],
  [0x7f000000, 8, "a loopback address"],
  [0xa9fe0000, 16, "a link-local address"],
  [0xe0000000, 4, "a multicast address"],
  [0xf0000000, 4, "a reserved or broadcast address"],
];

/**
 * Checks settings as given (JSON of unknown shape) and returns them in
 * canonical form; every problem is reported together, each at its field.
 * @throws TownError `invalid_argument` with `issues`
 */
export function parseNetworkSettings(input: unknown): NetworkSettings {
  const given = (typeof input === "object" && input !== null ? input : {}) as Record<
    string,
    unknown
  >;
  if (given["mode"] === "dhcp") return DHCP;
  const issues: Issue[] = [];
  const field = <T>(name: string, check: (value: string) => T): T | undefined => {
    const value = given[name];
    try {
      if (typeof value !== "string" || value.trim() === "")
        throw refusal("required for a fixed address");
      return check(value.trim());
    } catch (error) {
      if (!(error instanceof TownError)) throw error;
      issues.push({ field: name, message: error.message });
      return undefined;
    }
  };
  if (given["mode"] !== "static") {
    issues.push({ field: "mode", message: 'must be "dhcp" or "static"' });
    throw invalid(issues);
  }
  const name = field("interface", checkInterfaceName);
  const address = field("address", parseCidr);
  const gateway = field("gateway", (text) => parseGateway(text, address));
  const dns = parseDnsServers(given["dns"], issues);
  if (issues.length > 0 || !name || !address || gateway === undefined) throw invalid(issues);
  return {
    mode: "static",
    interface: name,
    address: `${format(address.ip)}/${address.prefix}`,
    gateway: format(gateway),
    dns,
  };
}

/** A Linux interface name: it becomes a line of a networkd file and an argument of networkctl. */
export function checkInterfaceName(name: string): string {
  const control = findControlCharacter(name);
  if (control) throw refusal(`it holds a control character (${control})`);
  if (name.length > MAX_INTERFACE_LENGTH)
    throw refusal(`an interface name has at most ${MAX_INTERFACE_LENGTH} characters`);
  if (!INTERFACE_NAME.test(name) || name === "." || name === "..")
    throw refusal("an interface name has only letters, digits, _ . and -");
  return name;
}

interface Cidr {
  ip: number;
  prefix: number;
  mask: number;
}

function parseCidr(text: string): Cidr {
  const match = /^([^/]*)\/(\d{1,2})$/.exec(text);
  if (!match) throw refusal("give the address with its prefix length, e.g. 192.168.1.50/24");
  const ip = parseUnicast(match[1] ?? "");
  const prefix = Number(match[2]);
  if (prefix < 8 || prefix > 30) throw refusal("the prefix length must be from 8 to 30");
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  if ((ip & ~mask) >>> 0 === 0) throw refusal("that is the network's own address, not a host's");
  if ((ip | mask) >>> 0 === 0xffffffff) throw refusal("that is the network's broadcast address");
  return { ip, prefix, mask };
}

function parseGateway(text: string, address: Cidr | undefined): number {
  const ip = parseUnicast(text);
  if (address === undefined) return ip;
  const network = (address.ip & address.mask) >>> 0;
  if ((ip & address.mask) >>> 0 !== network)
    throw refusal(`it must be inside ${format(network)}/${address.prefix}, the address's network`);
  if (ip === address.ip) throw refusal("it is the box's own address");
  if ((ip | address.mask) >>> 0 === 0xffffffff || ip === network)
    throw refusal("it is the network's own or broadcast address");
  return ip;
}

function parseDnsServers(value: unknown, issues: Issue[]): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > MAX_DNS_SERVERS) {
    issues.push({ field: "dns", message: `at most ${MAX_DNS_SERVERS} DNS servers` });
    return [];
  }
  const servers = new Set<string>();
  value.forEach((entry, index) => {
    try {
      if (typeof entry !== "string") throw refusal("not an IPv4 address");
      servers.add(format(parseUnicast(entry.trim())));
    } catch (error) {
      if (!(error instanceof TownError)) throw error;
      issues.push({ field: `dns.${index}`, message: error.message });
    }
  });
  return [...servers];
}

/** An IPv4 address a host may have (dotted quad, no leading zeros), as a 32-bit number. */
function parseUnicast(text: string): number {
  const shown = text.length > MAX_FIELD_LENGTH ? `${text.slice(0, MAX_FIELD_LENGTH)}…` : text;
  const match = OCTETS.exec(text);
  const octets = match ? match.slice(1).map(Number) : [];
  if (octets.length !== 4 || octets.some((octet) => octet > 255))
    throw refusal(
      findControlCharacter(shown) ? "not an IPv4 address" : `"${shown}" is not an IPv4 address`,
    );
  const ip = octets.reduce((sum, octet) => sum * 256 + octet, 0);
  for (const [first, prefix, what] of UNUSABLE) {
    if (ip >>> (32 - prefix) === first >>> (32 - prefix)) throw refusal(`${text} is ${what}`);
  }
  return ip;
}

function format(ip: number): string {
  return [24, 16, 8, 0].map((shift) => (ip >>> shift) & 0xff).join(".");
}

function refusal(message: string): TownError {
  return new TownError("invalid_argument", message);
}

function invalid(issues: Issue[]): TownError {
  return new TownError(
    "invalid_argument",
    `network settings: ${issues.map((issue) => `${issue.field}: ${issue.message}`).join("; ")}`,
    { issues },
  );
}

/**
 * The systemd-networkd file for a fixed address; null for DHCP, where the
 * image's own `80-town-os-dhcp.network` applies. Its name sorts first, so
 * networkd picks it over the DHCP file for that interface.
 */
export function compileNetworkdFile(settings: NetworkSettings): string | null {
  if (settings.mode === "dhcp") return null;
  const dns = settings.dns.length > 0 ? settings.dns : [settings.gateway];
  return [
    "# Written by the Town OS daemon from the network settings on the data pool.",
    "[Match]",
    `Name=${settings.interface}`,
    "",
    "[Network]",
    "DHCP=no",
    `Address=${settings.address}`,
    `Gateway=${settings.gateway}`,
    ...dns.map((server) => `DNS=${server}`),
    // IPv6 keeps working by router advertisements. Spelled out: networkd's
    // default is off once IP forwarding is on, as it is for the containers.
    // Link-local addressing stays networkd's default (IPv6), as in the DHCP file.
    "IPv6AcceptRA=yes",
    "",
  ].join("\n");
}

/** The interface a file of `compileNetworkdFile` matched, read back to reconfigure it when it goes. */
export function matchedInterface(text: string): string | undefined {
  const name = /^Name=(.*)$/m.exec(text)?.[1];
  try {
    return name === undefined ? undefined : checkInterfaceName(name);
  } catch {
    return undefined;
  }
}

/** Whether the kernel command line holds `town.network=dhcp` (the owner's rescue at boot). */
export function dhcpForced(cmdline: string): boolean {
  return cmdline.split(/\s+/).includes("town.network=dhcp");
}
