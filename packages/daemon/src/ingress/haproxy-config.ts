/**
 * Compiles the ingress into the files of HAProxy 2.6, the HTTPS data plane:
 * `haproxy.cfg` plus the map and lists it reads. Pure: no I/O; the same
 * input always gives the same files. Caddy stays the certificate manager
 * (HAProxy reads the certificates it lists in `certs.list`, written at run
 * time by someone else), answers ACME HTTP-01 challenges and serves the
 * static sites on loopback; HAProxy terminates TLS and routes.
 *
 * - HTTPS: TLS 1.2 and up, h2 and HTTP/1.1, only for names with a
 *   certificate (`strict-sni`). The Host (lower-cased, port stripped) picks
 *   the backend through `hosts.map`; an unknown name gets a plain 404.
 * - Local names (the dashboard, apps under the local TLD, local sites) answer
 *   only sources in `LAN_SOURCE_RANGES`, checked twice: a handshake for a
 *   local SNI from elsewhere is cut right after it (HAProxy cannot refuse it
 *   before the certificate), and a request with a local Host from elsewhere
 *   (under a public SNI) gets 403 and a closed connection, never the app. The
 *   source is the TCP peer: forwarding headers are never consulted.
 * - The client's forwarding headers are dropped; upstreams get
 *   X-Forwarded-For (the TCP peer), X-Forwarded-Proto and X-Forwarded-Host.
 * - One backend per distinct upstream; all sites share the `sites` backend,
 *   Caddy's plain-HTTP server that matches the unchanged Host itself.
 * - HTTP: ACME challenge paths go to Caddy's solver; everything else is a
 *   308 to the same URL over HTTPS.
 * - No logging (access logs cost throughput); an old worker left by a reload
 *   stops after `hard-stop-after` at the latest.
 */
import { TownError } from "@townos/format";
import { printable } from "../storage/names.js";
import type { IngressRoute, IngressSite } from "./routes.js";
import { LAN_SOURCE_RANGES } from "./lan.js";

export interface HaproxyInput {
  /** LAN-only names (dashboard, apps under the local TLD, local sites), sorted by host, validated. */
  local: readonly (IngressRoute | IngressSite)[];
  /** Public domains (routes and sites), any source, sorted, validated. */
  publicRoutes: readonly (IngressRoute | IngressSite)[];
  httpsPort: number;
  httpPort: number;
  /** `127.0.0.1:PORT`: Caddy's plain-HTTP server for static sites (it matches the Host itself). */
  sitesAddress: string;
  /** `127.0.0.1:PORT`: Caddy's ACME HTTP-01 challenge solver. */
  acmeChallengeAddress: string;
  /** Absolute directory of HAProxy's files: the maps, lists and crt-list are read from here. */
  dir: string;
  /** User/group the workers drop to (HAProxy starts as root to bind 80/443); undefined: no drop. */
  user?: { name: string; group: string };
  /** Threads; default: not set (HAProxy uses one per CPU). */
  threads?: number;
}

/** File name (relative to `dir`) → content. Always: haproxy.cfg, hosts.map, local-hosts.lst, lan-sources.lst. */
export type HaproxyFiles = Readonly<Record<string, string>>;

export const HAPROXY_CONFIG_FILE = "haproxy.cfg";
/** Written at run time by someone else: one line per certificate file that exists. */
export const CRT_LIST_FILE = "certs.list";
export const ADMIN_SOCKET_FILE = "admin.sock";
const HOSTS_MAP_FILE = "hosts.map";
const LOCAL_HOSTS_FILE = "local-hosts.lst";
const LAN_SOURCES_FILE = "lan-sources.lst";

const SITES_BACKEND = "sites";
const ACME_BACKEND = "acme";
const UNKNOWN_HOST_BACKEND = "unknown_host";
const ACME_CHALLENGE_PATH = "/.well-known/acme-challenge/";
/**
 * The name asked for: the Host header, lower-cased, without a port. Computed
 * where it is used, not kept in a variable: a variable per request costs
 * about a tenth of this config's CPU per request (measured with the bench),
 * and the 403 check computes it only for sources outside the home network.
 */
const REQUEST_HOST = "req.hdr(host),lower,field(1,:)";

/**
 * `HOST:PORT` as the ingress validates it: a DNS name or IPv4 address, or a
 * bracketed IPv6 address. Its characters are all valid in a backend name
 * and inert in HAProxy's config syntax.
 */
const UPSTREAM = /^(?:\[([0-9a-fA-F:.]+)\]|([a-zA-Z0-9.-]+)):([1-9][0-9]{0,4})$/;
/** What HAProxy's config parser splits on or interprets: whitespace, quotes, escapes, comments. */
const CONFIG_SYNTAX = /[\s\p{Cc}"'\\#]/u;

export function haproxyFiles(input: HaproxyInput): HaproxyFiles {
  checkInput(input);
  const served = [...input.local, ...input.publicRoutes].sort((a, b) =>
    a.host < b.host ? -1 : a.host > b.host ? 1 : 0,
  );
  const upstreams = [
    ...new Set(served.flatMap((entry) => ("upstream" in entry ? [entry.upstream] : []))),
  ].sort();
  const hostsMap = served.map(
    (entry) => `${entry.host} ${"upstream" in entry ? backendName(entry.upstream) : SITES_BACKEND}`,
  );
  return {
    [HAPROXY_CONFIG_FILE]: config(input, upstreams),
    [HOSTS_MAP_FILE]: lines(hostsMap),
    [LOCAL_HOSTS_FILE]: lines(input.local.map((entry) => entry.host).sort()),
    [LAN_SOURCES_FILE]: lines(LAN_SOURCE_RANGES),
  };
}

function config(input: HaproxyInput, upstreams: readonly string[]): string {
  const file = (name: string): string => `${input.dir}/${name}`;
  const localHost = `-m str -f ${file(LOCAL_HOSTS_FILE)}`;
  const fromLan = `{ src -f ${file(LAN_SOURCES_FILE)} }`;
  const httpsSuffix = input.httpsPort === 443 ? "" : `:${input.httpsPort}`;
  const acmePath = `{ path_beg ${ACME_CHALLENGE_PATH} }`;
  return lines([
    "# Written by the Town OS daemon: changes here are overwritten.",
    "global",
    // `expose-fd listeners`: a reload hands the bound sockets over, no connection is refused.
    `    stats socket ${file(ADMIN_SOCKET_FILE)} mode 600 level admin expose-fd listeners`,
    ...(input.user === undefined
      ? []
      : [`    user ${input.user.name}`, `    group ${input.user.group}`]),
    ...(input.threads === undefined ? [] : [`    nbthread ${input.threads}`]),
    "    ssl-default-bind-options ssl-min-ver TLSv1.2",
    // Long downloads and event streams must not keep an old worker alive forever.
    "    hard-stop-after 30m",
    "",
    "defaults",
    "    mode http",
    "    timeout connect 5s",
    "    timeout client 5m",
    "    timeout server 5m",
    "    timeout http-request 30s",
    "    timeout http-keep-alive 5m",
    // Websockets and event streams, once upgraded.
    "    timeout tunnel 1h",
    // An idle upstream connection goes only to a client that already sent a request on its own.
    "    http-reuse safe",
    "",
    "frontend https",
    ...listen(input.httpsPort).map(
      (bind) => `${bind} ssl crt-list ${file(CRT_LIST_FILE)} strict-sni alpn h2,http/1.1`,
    ),
    `    tcp-request session reject if { ssl_fc_sni,lower ${localHost} } !${fromLan}`,
    // The source first: for the home network (nearly every request) the name is not looked up.
    `    http-request return status 403 content-type text/plain string "This name answers only on the home network.\\n" hdr Connection close if !${fromLan} { ${REQUEST_HOST} ${localHost} }`,
    // set-header replaces what the client sent; the two headers not set are dropped.
    "    http-request set-header X-Forwarded-For %[src]",
    "    http-request set-header X-Forwarded-Proto https",
    "    http-request set-header X-Forwarded-Host %[req.hdr(host)]",
    "    http-request del-header X-Forwarded-Port",
    "    http-request del-header Forwarded",
    `    use_backend %[${REQUEST_HOST},map(${file(HOSTS_MAP_FILE)})]`,
    `    default_backend ${UNKNOWN_HOST_BACKEND}`,
    "",
    "frontend http",
    ...listen(input.httpPort),
    `    http-request redirect code 308 location https://%[req.hdr(host),field(1,:)]${httpsSuffix}%[capture.req.uri] unless ${acmePath}`,
    `    use_backend ${ACME_BACKEND} if ${acmePath}`,
    "",
    `backend ${UNKNOWN_HOST_BACKEND}`,
    '    http-request return status 404 content-type text/plain string "No site has this name here.\\n"',
    "",
    `backend ${ACME_BACKEND}`,
    `    server caddy ${serverAddress(input.acmeChallengeAddress)}`,
    "",
    `backend ${SITES_BACKEND}`,
    `    server caddy ${serverAddress(input.sitesAddress)}`,
    ...upstreams.flatMap((upstream) => [
      "",
      `backend ${backendName(upstream)}`,
      // A name that does not resolve leaves this server down, not HAProxy unstarted.
      `    server s ${serverAddress(upstream)} init-addr last,libc,none`,
    ]),
  ]);
}

/**
 * Every address on `port`, IPv4 and IPv6 apart: one dual-stack socket would
 * see IPv4 clients as `::ffff:a.b.c.d`, and X-Forwarded-For would say so.
 */
function listen(port: number): string[] {
  return [`    bind 0.0.0.0:${port}`, `    bind :::${port} v6only`];
}

/** `up_HOST:PORT` (IPv6 without brackets): readable in HAProxy's stats, distinct per upstream. */
function backendName(upstream: string): string {
  const { host, port } = parseAddress(upstream);
  return `up_${host}:${port}`;
}

/** HAProxy's form of `HOST:PORT`: an IPv6 address goes unbracketed, after an explicit family. */
function serverAddress(address: string): string {
  const { host, port, ipv6 } = parseAddress(address);
  return ipv6 ? `ipv6@${host}:${port}` : `${host}:${port}`;
}

function parseAddress(address: string): { host: string; port: string; ipv6: boolean } {
  const match = UPSTREAM.exec(address);
  if (!match) throw invalid(`"${printable(address)}" is not HOST:PORT`);
  const [, ipv6 = "", name = "", port = ""] = match;
  return { host: ipv6 || name, port, ipv6: ipv6 !== "" };
}

/**
 * The ingress was validated before, but every value still lands in a line
 * of HAProxy's syntax: none may split it, quote, escape or end it.
 */
function checkInput(input: HaproxyInput): void {
  const hosts = new Set<string>();
  for (const entry of [...input.local, ...input.publicRoutes]) {
    checkWord(entry.host, "host");
    if (hosts.has(entry.host)) throw invalid(`"${entry.host}" is listed twice`);
    hosts.add(entry.host);
    if ("upstream" in entry) parseAddress(entry.upstream);
  }
  parseAddress(input.sitesAddress);
  parseAddress(input.acmeChallengeAddress);
  checkWord(input.dir, "dir");
  if (!input.dir.startsWith("/")) throw invalid(`dir "${input.dir}" is not absolute`);
  if (input.user !== undefined) {
    checkWord(input.user.name, "user");
    checkWord(input.user.group, "group");
  }
  for (const port of [input.httpsPort, input.httpPort]) {
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw invalid(`${port} is not a port (1-65535)`);
  }
  if (input.threads !== undefined && !(Number.isInteger(input.threads) && input.threads >= 1))
    throw invalid(`threads ${input.threads} is not a positive integer`);
}

function checkWord(value: string, what: string): void {
  if (value === "" || CONFIG_SYNTAX.test(value))
    throw invalid(
      `${what} "${printable(value)}" is empty or has whitespace, control characters, quotes, '\\' or '#'`,
    );
}

function invalid(message: string): TownError {
  return new TownError("invalid_argument", `haproxy config: ${message}`);
}

function lines(items: readonly string[]): string {
  return items.map((item) => `${item}\n`).join("");
}
