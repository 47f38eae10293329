/**
 * Compiles the ingress (which names go to which upstream) into the complete
 * JSON config of Caddy 2.6, loaded as a whole through its admin API. Pure: no
 * I/O; the same input always gives the same config text and hash, whatever
 * order the routes came in.
 *
 * Local names get certificates from Caddy's internal PKI (one local CA kept
 * under `storageDir`, never installed into the system trust store); public
 * names get ACME certificates. The HTTP port redirects to HTTPS; Caddy answers
 * ACME HTTP-01 challenges on it before any route runs, so the redirect does
 * not hide them.
 *
 * Two route sets share the HTTPS listener: public domains answer any source;
 * the dashboard and the local names answer only sources on the home network
 * (`LAN_SOURCE_RANGES`), checked twice: the TLS handshake for a local name
 * from elsewhere finds no connection policy (Caddy refuses it before any
 * certificate is shown), and a request that reaches HTTP with a local Host
 * anyway (SNI of a public domain) gets 403 instead of the app. The source is
 * the TCP peer: headers such as X-Forwarded-For are never consulted.
 */
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { isAbsolute, normalize } from "node:path";
import { DNS_LABEL, findControlCharacter, TownError, type Issue } from "@townos/format";
import { canonicalJson } from "../canonical-json.js";

export interface IngressRoute {
  /** A DNS name, e.g. `gitea.default.home`. */
  host: string;
  /** Plain HTTP upstream, `127.0.0.1:PORT` (an IP, `[IPv6]` or DNS name, and a port). */
  upstream: string;
}

export interface IngressInput {
  /** Apps under the local TLD: certificates from the local CA. */
  routes: readonly IngressRoute[];
  /** Names from `network.domains`: publicly trusted certificates through ACME. */
  publicDomains: readonly IngressRoute[];
  /** The dashboard's own name, `town.<tld>` (local CA). */
  dashboard: IngressRoute;
  httpsPort: number;
  httpPort: number;
  /** Admin endpoint: `unix//abs/path.sock` (preferred) or a loopback `IP:PORT`. */
  adminAddress: string;
  /** Where Caddy keeps its CA and certificates: must survive restarts. */
  storageDir: string;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export interface CompiledIngress {
  config: JsonObject;
  /** sha256 (hex) of the canonical JSON of `config`: equal configs, equal hashes. */
  hash: string;
  /** Every name served, sorted: the local CA's and the public ones. */
  localHosts: readonly string[];
  publicHosts: readonly string[];
  httpsPort: number;
  httpPort: number;
}

/**
 * Sources that count as the home network: RFC 1918, loopback, IPv4
 * link-local, IPv6 unique-local (fc00::/7) and link-local. Left out on
 * purpose: 100.64.0.0/10 (RFC 6598 shared address space), which a carrier's
 * NAT puts its other subscribers in, so a router behind it would pass them on
 * as "local". A router port forward keeps the internet client's address
 * (DNAT), so what it forwards falls outside these ranges.
 */
export const LAN_SOURCE_RANGES: readonly string[] = [
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "::1/128",
  "fc00::/7",
  "fe80::/10",
];

const MAX_HOST_LENGTH = 253;
const MAX_ROUTES = 10_000;
/** `HOST:PORT`, the host a DNS name, an IPv4 address or a bracketed IPv6 address. */
export const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):([0-9]{1,5})$/;

/** Validates `input` and compiles it; all problems are reported together. */
export function compileIngress(input: IngressInput): CompiledIngress {
  const issues: Issue[] = [];
  const problem = (field: string, message: string): void => {
    issues.push({ field, message });
  };

  const count = input.routes.length + input.publicDomains.length;
  if (count > MAX_ROUTES) problem("routes", `more than ${MAX_ROUTES} routes`);

  const owners = new Map<string, string>();
  const checkRoute = (route: IngressRoute, field: string): IngressRoute => {
    const host = route.host.toLowerCase();
    const hostProblem = dnsNameProblem(host);
    if (hostProblem) problem(`${field}.host`, `"${printable(route.host)}" ${hostProblem}`);
    const upstreamProblem = upstreamAddressProblem(route.upstream);
    if (upstreamProblem)
      problem(`${field}.upstream`, `"${printable(route.upstream)}" ${upstreamProblem}`);
    const owner = owners.get(host);
    if (owner !== undefined) problem(`${field}.host`, `"${host}" is already served by ${owner}`);
    else owners.set(host, field);
    return { host, upstream: route.upstream };
  };
  const dashboard = checkRoute(input.dashboard, "dashboard");
  const local = sortByHost([
    dashboard,
    ...input.routes.map((route, i) => checkRoute(route, `routes[${i}]`)),
  ]);
  const publicRoutes = sortByHost(
    input.publicDomains.map((route, i) => checkRoute(route, `publicDomains[${i}]`)),
  );

  for (const [field, port] of [
    ["httpsPort", input.httpsPort],
    ["httpPort", input.httpPort],
  ] as const) {
    if (!isPort(port)) problem(field, `${port} is not a port (1-65535)`);
  }
  if (input.httpsPort === input.httpPort) problem("httpPort", "must differ from httpsPort");
  const adminProblem = adminAddressProblem(input.adminAddress);
  if (adminProblem) problem("adminAddress", `"${printable(input.adminAddress)}" ${adminProblem}`);
  const storageProblem = absolutePathProblem(input.storageDir);
  if (storageProblem) problem("storageDir", `"${printable(input.storageDir)}" ${storageProblem}`);

  if (issues.length > 0) {
    const first = issues[0];
    throw new TownError(
      "invalid_argument",
      `ingress: ${first?.field ?? ""}: ${first?.message ?? ""}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ""}`,
      { issues },
    );
  }

  const localHosts = local.map((route) => route.host);
  const publicHosts = publicRoutes.map((route) => route.host);
  const config = caddyConfig(input, local, publicRoutes);
  return {
    config,
    hash: configHash(config),
    localHosts,
    publicHosts,
    httpsPort: input.httpsPort,
    httpPort: input.httpPort,
  };
}

/** The hash `compileIngress` gives, for any config (also the one Caddy reports it runs). */
export function configHash(config: unknown): string {
  return createHash("sha256").update(canonicalJson(config)).digest("hex");
}

/**
 * What Caddy runs before the daemon has told it anything: only its admin
 * endpoint and storage, so it starts even when the last config would not.
 */
export function bootstrapConfig(adminAddress: string, storageDir: string): JsonObject {
  return {
    admin: adminSection(adminAddress),
    storage: storageSection(storageDir),
    logging: loggingSection(),
  };
}

function caddyConfig(
  input: IngressInput,
  local: readonly IngressRoute[],
  publicRoutes: readonly IngressRoute[],
): JsonObject {
  const localHosts = local.map((route) => route.host);
  const publicHosts = publicRoutes.map((route) => route.host);
  const policies: JsonObject[] = [{ subjects: [...localHosts], issuers: [{ module: "internal" }] }];
  // Configuration only: the ACME exchange itself needs a reachable :80/:443 and a real CA.
  if (publicHosts.length > 0)
    policies.push({ subjects: [...publicHosts], issuers: [{ module: "acme" }] });
  const httpsSuffix = input.httpsPort === 443 ? "" : `:${input.httpsPort}`;
  const lan = { ranges: [...LAN_SOURCE_RANGES] };
  // A handshake that matches no policy is refused: local names only from the LAN.
  const connectionPolicies: JsonObject[] = [{ match: { sni: [...localHosts], remote_ip: lan } }];
  if (publicHosts.length > 0) connectionPolicies.push({ match: { sni: [...publicHosts] } });
  return {
    admin: adminSection(input.adminAddress),
    storage: storageSection(input.storageDir),
    logging: loggingSection(),
    apps: {
      pki: { certificate_authorities: { local: { install_trust: false } } },
      tls: { automation: { policies } },
      http: {
        http_port: input.httpPort,
        https_port: input.httpsPort,
        servers: {
          https: {
            listen: [`:${input.httpsPort}`],
            // Our own HTTP server redirects; Caddy's would take the HTTP port twice.
            automatic_https: { disable_redirects: true },
            tls_connection_policies: connectionPolicies,
            // No read/write body limits: apps stream uploads, downloads and events.
            read_header_timeout: "30s",
            idle_timeout: "5m",
            routes: [
              ...publicRoutes.map((route) => proxyRoute(route)),
              ...local.map((route) => proxyRoute(route, lan)),
              localOnlyRoute(localHosts),
            ],
          },
          http: {
            listen: [`:${input.httpPort}`],
            read_header_timeout: "30s",
            routes: [
              {
                handle: [
                  {
                    handler: "static_response",
                    status_code: 308,
                    headers: {
                      Location: [`https://{http.request.host}${httpsSuffix}{http.request.uri}`],
                    },
                  },
                ],
              },
            ],
          },
        },
      },
    },
  };
}

/** A local name asked for from outside the LAN: refused, whatever the SNI was. */
function localOnlyRoute(localHosts: readonly string[]): JsonObject {
  return {
    match: [{ host: [...localHosts] }],
    handle: [
      {
        handler: "static_response",
        status_code: 403,
        body: "This name answers only on the home network.\n",
        close: true,
      },
    ],
    terminal: true,
  };
}

/**
 * Reverse proxy for one name, for the `sources` given (default: any).
 * Caddy sets X-Forwarded-For/-Proto/-Host itself, ignoring the client's.
 */
function proxyRoute(route: IngressRoute, sources?: JsonObject): JsonObject {
  return {
    match: [
      sources === undefined ? { host: [route.host] } : { host: [route.host], remote_ip: sources },
    ],
    handle: [
      {
        handler: "reverse_proxy",
        upstreams: [{ dial: route.upstream }],
        transport: {
          protocol: "http",
          // A stopped app fails fast with 502 instead of holding the client.
          dial_timeout: "5s",
          keep_alive: { enabled: true, idle_timeout: "2m", max_idle_conns_per_host: 64 },
        },
      },
    ],
    terminal: true,
  };
}

function adminSection(adminAddress: string): JsonObject {
  // The daemon keeps the config itself; Caddy's autosave would be a second copy.
  return { listen: adminAddress, config: { persist: false } };
}

/**
 * The supervisor polls the admin API, which logs every request at INFO: that
 * would fill the log. (Caddy 2.6 ignores `exclude: ["admin.api"]`; the level works.)
 */
function loggingSection(): JsonObject {
  return { logs: { default: { level: "WARN" } } };
}

function storageSection(storageDir: string): JsonObject {
  return { module: "file_system", root: storageDir };
}

function sortByHost(routes: IngressRoute[]): IngressRoute[] {
  return routes.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
}

/** Lower-case RFC 1123 name of at least two labels; not an IP address. */
function dnsNameProblem(host: string): string | undefined {
  const control = findControlCharacter(host);
  if (control) return `contains the control character ${control}`;
  if (host.length === 0) return "is empty";
  if (host.length > MAX_HOST_LENGTH) return `is longer than ${MAX_HOST_LENGTH} characters`;
  const labels = host.split(".");
  if (labels.length < 2) return "is not a DNS name with a domain (like app.repo.home)";
  if (labels.some((label) => !DNS_LABEL.test(label)))
    return "is not a DNS name (letters, digits and inner hyphens between dots)";
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? "")) return "is an IP address, not a name";
  return undefined;
}

function upstreamAddressProblem(upstream: string): string | undefined {
  const control = findControlCharacter(upstream);
  if (control) return `contains the control character ${control}`;
  const match = HOST_PORT.exec(upstream);
  if (!match) return "is not HOST:PORT";
  const [, host = "", port = ""] = match;
  if (!isPort(Number(port)) || port.startsWith("0")) return `has an invalid port ${port}`;
  if (host.startsWith("[")) {
    if (isIP(host.slice(1, -1)) !== 6) return "has an invalid IPv6 address";
  } else if (isIP(host) === 0 && dnsNameProblem(host) && host !== "localhost") {
    return "has a host that is neither an IP address nor a DNS name";
  }
  return undefined;
}

/** The admin API reconfigures everything: it must never listen beyond this machine. */
function adminAddressProblem(address: string): string | undefined {
  const control = findControlCharacter(address);
  if (control) return `contains the control character ${control}`;
  if (address.startsWith("unix/")) return absolutePathProblem(address.slice("unix/".length));
  const match = HOST_PORT.exec(address);
  const host = match?.[1]?.replace(/^\[(.*)\]$/, "$1") ?? "";
  if (!match || !isPort(Number(match[2]))) return "is neither unix//PATH nor a loopback IP:PORT";
  if (!(host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host)))
    return "must be a unix socket or a loopback address";
  return undefined;
}

function absolutePathProblem(path: string): string | undefined {
  const control = findControlCharacter(path);
  if (control) return `contains the control character ${control}`;
  if (!isAbsolute(path)) return "must be an absolute path";
  if (normalize(path) !== path || path.includes(".."))
    return "must be normalized (no '..', '.', or double slashes)";
  return undefined;
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** Quotes untrusted text for error messages without its control characters. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  const shown = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
  return shown.length > 80 ? `${shown.slice(0, 80)}…` : shown;
}
