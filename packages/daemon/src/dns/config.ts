/**
 * The box's DNS server configuration, compiled from records and settings into
 * the files dnsmasq reads. Pure: no I/O, the same input gives the same bytes
 * (sorted, deduplicated) and the same hash, so the supervisor applies only on
 * change.
 *
 * Three files, split by how dnsmasq takes changes:
 * - the main configuration (listen addresses, port, file paths): read only at
 *   start, so a change means a restart;
 * - the hosts file (`addn-hosts`) and the servers file (`servers-file`, which
 *   also holds the local-only domains): re-read on SIGHUP, so record, TLD and
 *   upstream changes are a reload that keeps the process and its sockets.
 */
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { packageDnsName, TownError, type Issue } from "@townos/format";

/** One name the box answers: `<instance>.<repo>.<tld>`, `town.<tld>`, … */
export interface DnsRecord {
  name: string;
  address: string;
}

/** A resolver that dnsmasq forwards other names to. */
export interface DnsUpstream {
  address: string;
  /** 53 when absent. */
  port?: number;
}

export interface DnsListen {
  /** Addresses to bind; dnsmasq binds exactly these and no wildcard. */
  addresses: readonly string[];
  port: number;
}

export interface DnsConfigInput {
  records: readonly DnsRecord[];
  upstreams: readonly DnsUpstream[];
  listen: DnsListen;
  /**
   * Domains answered from the records only, never forwarded (the TLD): a name
   * of ours that has no record gets NXDOMAIN instead of leaking upstream.
   */
  localDomains: readonly string[];
}

/** Where the main configuration points dnsmasq for the reloadable files. */
export interface DnsmasqPaths {
  hostsFile: string;
  serversFile: string;
}

export interface CompiledDnsConfig {
  conf: string;
  hosts: string;
  servers: string;
  /** Of all three files: unchanged hash, nothing to do. */
  hash: string;
  /** Of the main configuration alone: it names the configuration file, see the supervisor. */
  confHash: string;
  /** Distinct (name, address) pairs in the hosts file. */
  recordCount: number;
  /** `address#port` as dnsmasq names them, sorted. */
  upstreams: string[];
}

export const MAX_RECORDS = 10_000;
export const MAX_UPSTREAMS = 16;
export const MAX_LISTEN_ADDRESSES = 16;
const MAX_NAME_LENGTH = 253;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const CACHE_SIZE = 1000;

/** @throws TownError `invalid_argument` listing every bad field. */
export function compileDnsConfig(input: DnsConfigInput, paths: DnsmasqPaths): CompiledDnsConfig {
  const issues: Issue[] = [];
  const problem = (field: string, message: string): void => {
    issues.push({ field, message });
  };

  if (input.records.length > MAX_RECORDS)
    problem("records", `at most ${MAX_RECORDS} records, got ${input.records.length}`);
  const hostLines = new Set<string>();
  input.records.slice(0, MAX_RECORDS).forEach((record, index) => {
    const name = checkName(record.name, `records.${index}.name`, problem);
    const address = checkAddress(record.address, `records.${index}.address`, problem);
    if (name !== undefined && address !== undefined) hostLines.add(`${address} ${name}`);
  });

  if (input.upstreams.length > MAX_UPSTREAMS)
    problem("upstreams", `at most ${MAX_UPSTREAMS} upstream resolvers`);
  const upstreams = new Set<string>();
  input.upstreams.slice(0, MAX_UPSTREAMS).forEach((upstream, index) => {
    const address = checkAddress(upstream.address, `upstreams.${index}.address`, problem);
    const port = checkPort(upstream.port ?? 53, `upstreams.${index}.port`, problem);
    if (address !== undefined && port !== undefined) upstreams.add(`${address}#${port}`);
  });

  const domains = new Set<string>();
  input.localDomains.forEach((domain, index) => {
    const checked = checkName(domain, `localDomains.${index}`, problem);
    if (checked !== undefined) domains.add(checked);
  });

  const { addresses, port } = input.listen;
  if (addresses.length === 0) problem("listen.addresses", "at least one listen address");
  if (addresses.length > MAX_LISTEN_ADDRESSES)
    problem("listen.addresses", `at most ${MAX_LISTEN_ADDRESSES} listen addresses`);
  const listen = new Set<string>();
  addresses.slice(0, MAX_LISTEN_ADDRESSES).forEach((address, index) => {
    const checked = checkAddress(address, `listen.addresses.${index}`, problem);
    if (checked !== undefined) listen.add(checked);
  });
  checkPort(port, "listen.port", problem);
  for (const [field, path] of [
    ["hostsFile", paths.hostsFile],
    ["serversFile", paths.serversFile],
  ] as const) {
    // Paths land in a line-based configuration file.
    if (!path.startsWith("/") || /[\s\p{Cc}]/u.test(path))
      problem(field, "must be an absolute path without spaces or control characters");
  }
  if (issues.length > 0)
    throw new TownError("invalid_argument", "dns: invalid configuration", { issues });

  const conf = lines([
    "# Written by the Town OS daemon; changes here are overwritten.",
    `port=${port}`,
    ...sorted(listen).map((address) => `listen-address=${address}`),
    // Exactly the addresses above: no wildcard socket that would collide with
    // other resolvers on the box (Podman's aardvark-dns).
    "bind-interfaces",
    // Only our records and our upstreams: not the host's /etc/hosts or resolv.conf.
    "no-hosts",
    "no-resolv",
    `addn-hosts=${paths.hostsFile}`,
    `servers-file=${paths.serversFile}`,
    // Plain names and private reverse lookups stay home. No dhcp-range: no DHCP.
    "domain-needed",
    "bogus-priv",
    `cache-size=${CACHE_SIZE}`,
    // Logs go to standard error, which the supervisor keeps in a file.
    "log-facility=-",
  ]);
  const hosts = lines(sortedHostLines(hostLines));
  const servers = lines([
    ...sorted(domains).map((domain) => `server=/${domain}/`),
    ...sorted(upstreams).map((upstream) => `server=${upstream}`),
  ]);
  return {
    conf,
    hosts,
    servers,
    hash: sha256(`${conf}\0${hosts}\0${servers}`),
    confHash: sha256(conf).slice(0, 16),
    recordCount: hostLines.size,
    upstreams: sorted(upstreams),
  };
}

export interface BoxNames {
  tld: string;
  /** The box's LAN addresses: every name points at the box, where the ingress answers. */
  addresses: readonly string[];
  /** Installed apps whose name is published. */
  apps: readonly { repo: string; instance: string }[];
  /** The box's own full names, e.g. the dashboard's `town.<tld>`. */
  boxNames: readonly string[];
}

/** The records for `compileDnsConfig`: every app name and box name, at every box address. */
export function boxDnsRecords(names: BoxNames): DnsRecord[] {
  const all = [
    ...names.boxNames,
    ...names.apps.map((app) => packageDnsName(app.instance, app.repo, names.tld)),
  ];
  return all.flatMap((name) => names.addresses.map((address) => ({ name, address })));
}

/**
 * The nameservers of a resolv.conf, less the ones that are this DNS server
 * itself (forwarding to ourselves would loop). resolv.conf has no ports, so
 * an address is ourselves only when we listen on it at port 53.
 */
export function upstreamsFromResolvConf(text: string, listen: DnsListen): DnsUpstream[] {
  const ours = new Set(listen.port === 53 ? listen.addresses.map(normalAddress) : []);
  const found: DnsUpstream[] = [];
  for (const line of text.split("\n").slice(0, 1000)) {
    const match = /^\s*nameserver\s+(\S+)\s*$/.exec(line);
    const address = match?.[1];
    if (address === undefined || isIP(address) === 0) continue;
    if (ours.has(normalAddress(address)) || isUnspecified(address)) continue;
    if (found.length < MAX_UPSTREAMS) found.push({ address });
  }
  return found;
}

function checkName(
  value: string,
  field: string,
  problem: (field: string, message: string) => void,
): string | undefined {
  const name = value.toLowerCase().replace(/\.$/, "");
  if (
    name.length === 0 ||
    name.length > MAX_NAME_LENGTH ||
    !name.split(".").every((label) => LABEL.test(label))
  ) {
    problem(field, `not a DNS name: ${JSON.stringify(value.slice(0, 80))}`);
    return undefined;
  }
  return name;
}

function checkAddress(
  value: string,
  field: string,
  problem: (field: string, message: string) => void,
): string | undefined {
  if (isIP(value) === 0) {
    problem(field, `not an IP address: ${JSON.stringify(value.slice(0, 80))}`);
    return undefined;
  }
  return normalAddress(value);
}

function checkPort(
  value: number,
  field: string,
  problem: (field: string, message: string) => void,
): number | undefined {
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    problem(field, `not a port: ${value}`);
    return undefined;
  }
  return value;
}

/** One spelling per address (IPv6 case), so equal sets compile to equal bytes. */
function normalAddress(address: string): string {
  return address.toLowerCase();
}

function isUnspecified(address: string): boolean {
  return address === "0.0.0.0" || /^[0:]+$/.test(address);
}

/** By name, then address: a name's addresses stay together. */
function sortedHostLines(hostLines: Set<string>): string[] {
  return [...hostLines]
    .map((line) => line.split(" ") as [string, string])
    .sort(([a1, n1], [a2, n2]) => compare(n1, n2) || compare(a1, a2))
    .map(([address, name]) => `${address} ${name}`);
}

function sorted(values: Iterable<string>): string[] {
  return [...values].sort(compare);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function lines(values: readonly string[]): string {
  return values.map((line) => `${line}\n`).join("");
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
