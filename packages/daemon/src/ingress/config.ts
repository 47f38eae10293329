/**
 * Compiles the ingress (which names go to which upstream) into the two
 * programs that serve it. Pure: no I/O; the same input always gives the same
 * configs and hash, whatever order the routes came in.
 *
 * HAProxy is the data plane (haproxy-config.ts): it terminates TLS on the
 * HTTPS port, decides who may ask for which name, routes by name and
 * redirects plain HTTP. Caddy 2.6 (this file's JSON, loaded through its
 * admin API) keeps the certificates HAProxy serves and the static sites:
 *
 * - Local names get certificates from Caddy's internal PKI (one local CA kept
 *   under `storageDir`, never installed into the system trust store); public
 *   names get ACME certificates, by HTTP-01 only (HAProxy holds the HTTPS
 *   port), the challenges passed on by HAProxy to Caddy's solver on
 *   `acmeChallengeAddress`. Caddy obtains and renews them for every name
 *   (`certificates.automate`); the supervisor copies them to HAProxy.
 * - A static site is a directory under `sitesRoot` served by Caddy's
 *   file_server on `sitesAddress` (loopback, plain HTTP, behind HAProxy),
 *   with compression, `Cache-Control: public, max-age=0, must-revalidate` (a
 *   new version shows at once; ETag and Last-Modified make the revalidation
 *   a cheap 304) and the site's own `/404.html`, when it has one, for what is
 *   missing.
 */
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { isAbsolute, normalize } from "node:path";
import { DNS_LABEL, findControlCharacter, TownError, type Issue } from "@townos/format";
import { canonicalJson } from "../canonical-json.js";
import { haproxyFiles, type HaproxyFiles } from "./haproxy-config.js";
import { LAN_SOURCE_RANGES } from "./lan.js";
import type { IngressRoute, IngressSite } from "./routes.js";

export { LAN_SOURCE_RANGES };
export type { IngressRoute, IngressSite };

export interface IngressInput {
  /** Apps under the local TLD: certificates from the local CA. */
  routes: readonly IngressRoute[];
  /** Names from `network.domains`: publicly trusted certificates through ACME. */
  publicDomains: readonly IngressRoute[];
  /** Static sites under local names: LAN sources only, local CA (like `routes`). */
  sites: readonly IngressSite[];
  /** Static sites under public domains: any source, ACME (like `publicDomains`). */
  publicSites: readonly IngressSite[];
  /** The sites directory as Caddy names it (absolute, e.g. `/proc/self/cwd/sites`). */
  sitesRoot: string;
  /** `127.0.0.1:PORT`: Caddy serves the static sites there, to HAProxy. */
  sitesAddress: string;
  /** `127.0.0.1:PORT`: Caddy's ACME HTTP-01 solver, to which HAProxy passes the challenges. */
  acmeChallengeAddress: string;
  /** HAProxy's directory (absolute): its config names its maps and lists there. */
  haproxyDir: string;
  /** Who HAProxy's workers run as (it starts as root to bind the ports); absent: no change. */
  haproxyUser?: { name: string; group: string };
  /** The dashboard's own name, `town.<tld>` (local CA). */
  dashboard: IngressRoute;
  httpsPort: number;
  httpPort: number;
  /** Admin endpoint: `unix//abs/path.sock` (preferred) or a loopback `IP:PORT`. */
  adminAddress: string;
  /** Where Caddy keeps its CA and certificates: must survive restarts. */
  storageDir: string;
  /**
   * `127.0.0.1:PORT`: a plain-HTTP server there answers every path with
   * Caddy's Prometheus metrics (the admin API's own `/metrics` is on a unix
   * socket Prometheus cannot scrape). Absent: no such server.
   */
  metricsAddress?: string;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export interface CompiledIngress {
  /** Caddy's config: certificates, static sites, metrics. */
  config: JsonObject;
  /** sha256 (hex) of the canonical JSON of `config`: what Caddy reports it runs is compared to it. */
  caddyHash: string;
  /** HAProxy's files by name (relative to `haproxyDir`). */
  haproxy: HaproxyFiles;
  /** sha256 (hex) of both: equal ingresses, equal hashes. */
  hash: string;
  /** Every name served, sorted: the local CA's and the public ones. */
  localHosts: readonly string[];
  publicHosts: readonly string[];
  httpsPort: number;
  httpPort: number;
}

const MAX_HOST_LENGTH = 253;
const MAX_ROUTES = 10_000;
const MAX_SITE_ROOT_LENGTH = 1024;
/** One segment of a site's root: no leading dot (so no `..`, no hidden directories), no placeholders. */
const SITE_ROOT_SEGMENT = /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/;
/** Smaller bodies are sent as they are: compressing them saves less than it costs. */
const ENCODE_MINIMUM_LENGTH = 1024;

/** What makes file_server answer 304, 412 or 206 instead of the whole file. */
const CONDITIONAL_REQUEST_HEADERS = [
  "If-Match",
  "If-None-Match",
  "If-Modified-Since",
  "If-Unmodified-Since",
  "If-Range",
  "Range",
];

/** A name and what answers it: an upstream (proxied) or a site (files). */
type Served = IngressRoute | IngressSite;
/** `HOST:PORT`, the host a DNS name, an IPv4 address or a bracketed IPv6 address. */
export const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):([0-9]{1,5})$/;

/** Validates `input` and compiles it; all problems are reported together. */
export function compileIngress(input: IngressInput): CompiledIngress {
  const issues: Issue[] = [];
  const problem = (field: string, message: string): void => {
    issues.push({ field, message });
  };

  const count =
    input.routes.length +
    input.publicDomains.length +
    input.sites.length +
    input.publicSites.length;
  if (count > MAX_ROUTES) problem("routes", `more than ${MAX_ROUTES} routes`);

  const owners = new Map<string, string>();
  const checkHost = (name: string, field: string): string => {
    const host = name.toLowerCase();
    const hostProblem = dnsNameProblem(host);
    if (hostProblem) problem(`${field}.host`, `"${printable(name)}" ${hostProblem}`);
    const owner = owners.get(host);
    if (owner !== undefined) problem(`${field}.host`, `"${host}" is already served by ${owner}`);
    else owners.set(host, field);
    return host;
  };
  const checkRoute = (route: IngressRoute, field: string): IngressRoute => {
    const host = checkHost(route.host, field);
    const upstreamProblem = upstreamAddressProblem(route.upstream);
    if (upstreamProblem)
      problem(`${field}.upstream`, `"${printable(route.upstream)}" ${upstreamProblem}`);
    return { host, upstream: route.upstream };
  };
  const checkSite = (site: IngressSite, field: string): IngressSite => {
    const host = checkHost(site.host, field);
    const rootProblem = siteRootProblem(site.root);
    if (rootProblem) problem(`${field}.root`, `"${printable(site.root)}" ${rootProblem}`);
    return { host, root: site.root };
  };
  const dashboard = checkRoute(input.dashboard, "dashboard");
  const local = sortByHost([
    dashboard,
    ...input.routes.map((route, i) => checkRoute(route, `routes[${i}]`)),
    ...input.sites.map((site, i) => checkSite(site, `sites[${i}]`)),
  ]);
  const publicRoutes = sortByHost([
    ...input.publicDomains.map((route, i) => checkRoute(route, `publicDomains[${i}]`)),
    ...input.publicSites.map((site, i) => checkSite(site, `publicSites[${i}]`)),
  ]);

  for (const [field, port] of [
    ["httpsPort", input.httpsPort],
    ["httpPort", input.httpPort],
  ] as const) {
    if (!isPort(port)) problem(field, `${port} is not a port (1-65535)`);
  }
  if (input.httpsPort === input.httpPort) problem("httpPort", "must differ from httpsPort");
  const loopbackPorts: [string, string][] = [
    ["sitesAddress", input.sitesAddress],
    ["acmeChallengeAddress", input.acmeChallengeAddress],
  ];
  if (input.metricsAddress !== undefined)
    loopbackPorts.push(["metricsAddress", input.metricsAddress]);
  const taken = [input.httpsPort, input.httpPort];
  for (const [field, address] of loopbackPorts) {
    const addressProblem = loopbackAddressProblem(address, taken);
    if (addressProblem) problem(field, `"${printable(address)}" ${addressProblem}`);
    taken.push(Number(address.split(":")[1]));
  }
  const adminProblem = adminAddressProblem(input.adminAddress);
  if (adminProblem) problem("adminAddress", `"${printable(input.adminAddress)}" ${adminProblem}`);
  const storageProblem = absolutePathProblem(input.storageDir);
  if (storageProblem) problem("storageDir", `"${printable(input.storageDir)}" ${storageProblem}`);
  const sitesProblem = absolutePathProblem(input.sitesRoot);
  if (sitesProblem) problem("sitesRoot", `"${printable(input.sitesRoot)}" ${sitesProblem}`);
  const haproxyProblem = absolutePathProblem(input.haproxyDir);
  if (haproxyProblem) problem("haproxyDir", `"${printable(input.haproxyDir)}" ${haproxyProblem}`);

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
  const haproxy = haproxyFiles({
    local,
    publicRoutes,
    httpsPort: input.httpsPort,
    httpPort: input.httpPort,
    sitesAddress: input.sitesAddress,
    acmeChallengeAddress: input.acmeChallengeAddress,
    dir: input.haproxyDir,
    ...(input.haproxyUser === undefined ? {} : { user: input.haproxyUser }),
  });
  const caddyHash = configHash(config);
  return {
    config,
    caddyHash,
    haproxy,
    hash: ingressHash(caddyHash, haproxy),
    localHosts,
    publicHosts,
    httpsPort: input.httpsPort,
    httpPort: input.httpPort,
  };
}

/**
 * `compiled` with another Caddy config and the hashes to match: for tests and
 * benches that must change what Caddy does (an issuer, an extra name) but
 * not HAProxy.
 */
export function withCaddyConfig(compiled: CompiledIngress, config: JsonObject): CompiledIngress {
  const caddyHash = configHash(config);
  return { ...compiled, config, caddyHash, hash: ingressHash(caddyHash, compiled.haproxy) };
}

function ingressHash(caddyHash: string, haproxy: HaproxyFiles): string {
  return configHash({ caddy: caddyHash, haproxy });
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
  local: readonly Served[],
  publicRoutes: readonly Served[],
): JsonObject {
  const localHosts = local.map((route) => route.host);
  const publicHosts = publicRoutes.map((route) => route.host);
  const policies: JsonObject[] = [{ subjects: [...localHosts], issuers: [{ module: "internal" }] }];
  // Configuration only: the ACME exchange itself needs a reachable :80 and a real CA.
  if (publicHosts.length > 0)
    policies.push({
      subjects: [...publicHosts],
      issuers: [acmeIssuer(input.acmeChallengeAddress)],
    });
  const sites = [...publicRoutes, ...local].filter(
    (served): served is IngressSite => !("upstream" in served),
  );
  // Caddy 2.6 counts a server's requests (`caddy_http_*`) only when asked; only with metrics, as above.
  const counted = input.metricsAddress === undefined ? {} : { metrics: {} };
  return {
    admin: adminSection(input.adminAddress),
    storage: storageSection(input.storageDir),
    logging: loggingSection(),
    apps: {
      pki: { certificate_authorities: { local: { install_trust: false } } },
      tls: {
        // Obtained and renewed without any HTTPS server of Caddy's: HAProxy serves them.
        certificates: { automate: [...localHosts, ...publicHosts] },
        automation: { policies },
      },
      http: {
        // No http_port/https_port: Caddy listens on neither (HAProxy does), and its
        // config stays the same when only they change.
        servers: {
          sites: {
            listen: [input.sitesAddress],
            // Plain HTTP on loopback: HAProxy in front has terminated TLS and checked the source.
            automatic_https: { disable: true },
            read_header_timeout: "30s",
            idle_timeout: "5m",
            routes: sites.map((site) => siteRoute(site, siteDirectory(input.sitesRoot, site))),
            // Only with sites: the configs of a box without any stay as they were.
            ...(sites.length > 0
              ? { errors: { routes: sites.map((site) => notFoundRoute(site, input.sitesRoot)) } }
              : {}),
            ...counted,
          },
          ...(input.metricsAddress === undefined
            ? {}
            : { metrics: metricsServer(input.metricsAddress) }),
        },
      },
    },
  };
}

/**
 * ACME by HTTP-01 only, its solver on loopback where HAProxy's HTTP port
 * passes the challenges; TLS-ALPN needs the HTTPS port, which is HAProxy's.
 */
function acmeIssuer(challengeAddress: string): JsonObject {
  const [host = "", port = ""] = challengeAddress.split(":");
  return {
    module: "acme",
    challenges: {
      bind_host: host,
      http: { alternate_port: Number(port) },
      "tls-alpn": { disabled: true },
    },
  };
}

/**
 * Caddy's own metrics for Prometheus, on loopback only: the Go runtime's,
 * the reverse proxy's upstream health, and the requests of the servers that
 * have `metrics: {}` (by server, handler, code and method; Caddy 2.6 has no
 * per-host counts).
 */
function metricsServer(address: string): JsonObject {
  return {
    listen: [address],
    // No names to get certificates for, and plain HTTP is what Prometheus asks.
    automatic_https: { disable: true },
    read_header_timeout: "30s",
    routes: [{ handle: [{ handler: "metrics" }], terminal: true }],
  };
}

/**
 * A static site: its files, compressed when that pays, revalidated at every
 * use (file_server's ETag and Last-Modified make that a 304), never sniffed
 * into another type, no directory listings.
 */
function siteRoute(site: IngressSite, directory: string): JsonObject {
  return {
    match: [{ host: [site.host] }],
    handle: [
      {
        handler: "encode",
        encodings: { gzip: {}, zstd: {} },
        prefer: ["zstd", "gzip"],
        minimum_length: ENCODE_MINIMUM_LENGTH,
      },
      {
        handler: "headers",
        response: {
          set: {
            "Cache-Control": ["public, max-age=0, must-revalidate"],
            "X-Content-Type-Options": ["nosniff"],
          },
        },
      },
      { handler: "file_server", root: directory, index_names: ["index.html"] },
    ],
    terminal: true,
  };
}

/**
 * A site's 404: its own `/404.html` when it has one (checked per request, so
 * a new version with or without one needs no new config); otherwise
 * nothing handles the error and Caddy's plain 404 stands.
 */
function notFoundRoute(site: IngressSite, sitesRoot: string): JsonObject {
  const directory = siteDirectory(sitesRoot, site);
  return {
    match: [{ host: [site.host] }],
    handle: [
      {
        handler: "subroute",
        routes: [
          {
            match: [
              {
                expression: "{http.error.status_code} == 404",
                file: { root: directory, try_files: ["/404.html"] },
              },
            ],
            handle: [
              { handler: "rewrite", uri: "/404.html" },
              // Validators and ranges are the 404 page's: a match would turn the 404 into an empty one.
              { handler: "headers", request: { delete: [...CONDITIONAL_REQUEST_HEADERS] } },
              { handler: "file_server", root: directory, status_code: 404 },
            ],
          },
        ],
      },
    ],
    terminal: true,
  };
}

function siteDirectory(sitesRoot: string, site: IngressSite): string {
  return `${sitesRoot}/${site.root}`;
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

function sortByHost(routes: Served[]): Served[] {
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
  if (!isLoopback(host)) return "must be a unix socket or a loopback address";
  return undefined;
}

/** Caddy's plain-HTTP servers (sites, ACME solver, metrics): this machine only, each on a port of its own. */
function loopbackAddressProblem(address: string, taken: readonly number[]): string | undefined {
  const control = findControlCharacter(address);
  if (control) return `contains the control character ${control}`;
  const match = /^127\.0\.0\.1:([1-9][0-9]{0,4})$/.exec(address);
  const port = Number(match?.[1]);
  if (!match || !isPort(port)) return "is not 127.0.0.1:PORT";
  if (taken.includes(port)) return "uses a port another listener of the ingress has";
  return undefined;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function absolutePathProblem(path: string): string | undefined {
  const control = findControlCharacter(path);
  if (control) return `contains the control character ${control}`;
  if (!isAbsolute(path)) return "must be an absolute path";
  if (normalize(path) !== path || path.includes(".."))
    return "must be normalized (no '..', '.', or double slashes)";
  return undefined;
}

/** `<page>/<version>`: plain relative segments, so the directory stays inside the sites root. */
function siteRootProblem(root: string): string | undefined {
  const control = findControlCharacter(root);
  if (control) return `contains the control character ${control}`;
  if (root.length === 0) return "is empty";
  if (root.length > MAX_SITE_ROOT_LENGTH)
    return `is longer than ${MAX_SITE_ROOT_LENGTH} characters`;
  if (root.startsWith("/")) return "must be relative to the sites directory";
  if (!root.split("/").every((segment) => SITE_ROOT_SEGMENT.test(segment)))
    return "must be '/'-separated names of letters, digits, '.', '_' and '-' (not starting with '.'; no empty ones)";
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
