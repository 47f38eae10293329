/**
 * Turns the networking inputs (what the installs ask for) into the inputs of
 * the three drivers: Caddy's routes, dnsmasq's records and the router's port
 * mappings. Pure: no I/O; the drivers compile, hash and apply.
 *
 * Conflicts never fail the whole plan: a name claimed twice or a public
 * domain without an app port is left out and named in `problems`, so one bad
 * app cannot take the box's names or HTTPS away from the others. Pages
 * (static sites) claim their names after the apps, so an app keeps its name.
 */
import { isIPv4 } from "node:net";
import { isTownError, type Issue } from "@townos/format";
import { boxDnsRecords, type DnsListen, type DnsRecord } from "../dns/config.js";
import {
  compileIngress,
  type CompiledIngress,
  type IngressInput,
  type IngressRoute,
  type IngressSite,
} from "../ingress/config.js";
import type { NetworkPage } from "../pages/types.js";
import { mappingDescription, type DesiredMapping } from "../upnp/mappings.js";

export interface NetworkApp {
  repo: string;
  name: string;
  /** DNS names of the app and its dependencies to publish (empty when hidden). */
  names: string[];
  /** The app's `http` port published on 127.0.0.1 for the ingress: Caddy proxies https://<host>/ to it. */
  ingress: { host: string; port: number } | null;
  /** Extra public names (network.domains): ACME certificates, proxied like `ingress`. */
  domains: string[];
  /** Host ports with their exposure: `internet` ones get a UPnP mapping. */
  ports: {
    host: number;
    protocol: "tcp" | "udp";
    exposure: "local" | "lan" | "internet";
    instance: string;
  }[];
}

export interface NetworkInputs {
  tld: string;
  apps: NetworkApp[];
  /** Static sites: served from the sites directory once they have a version. */
  pages: NetworkPage[];
  /** The daemon's own API port on 127.0.0.1: served at https://town.<tld>/ */
  dashboardPort: number;
  /**
   * The administrator's opt-in (setting `upnp.forward_https`) to forward the
   * router's 443 and 80 to the ingress for public domains; absent: off.
   */
  forwardHttps?: boolean;
}

/** What the box is and where its drivers listen: fixed for a daemon run except the addresses. */
export interface NetworkContext {
  httpsPort: number;
  httpPort: number;
  dnsPort: number;
  /** The box's LAN addresses now; the first IPv4 one is the router's internal client. */
  lanAddresses: readonly string[];
  /** Where the ingress's programs keep their files (`Ingress.locations()`). */
  adminAddress: string;
  storageDir: string;
  /** The sites directory as Caddy names it (the supervisor's `caddySitesDir`). */
  sitesRoot: string;
  haproxyDir: string;
  haproxyUser?: { name: string; group: string };
  /** Loopback ports of Caddy's static sites server and ACME solver (`IngressInput`). */
  sitesPort: number;
  acmeChallengePort: number;
  /** Loopback port Caddy serves its Prometheus metrics on (`IngressInput.metricsAddress`); absent: none. */
  metricsPort?: number;
}

export interface AppUrls {
  repo: string;
  name: string;
  /** `https://<host>[:port]/` for the app's name and each public domain it is served at. */
  urls: string[];
}

export interface PageUrls {
  name: string;
  urls: string[];
}

export interface NetworkPlan {
  ingress: IngressInput;
  /** dnsmasq's input less the upstreams, which come from the host (I/O). */
  dns: { records: DnsRecord[]; listen: DnsListen; localDomains: string[] };
  mappings: DesiredMapping[];
  dashboardUrl: string;
  apps: AppUrls[];
  /** Where each page is served: `https://<host>[:port]/` per name, none before its first version. */
  pages: PageUrls[];
  /** What was left out, and why. */
  problems: string[];
}

/** The dashboard's name under the ingress. */
export function dashboardHost(tld: string): string {
  return `town.${tld}`;
}

export function planNetwork(inputs: NetworkInputs, context: NetworkContext): NetworkPlan {
  const problems: string[] = [];
  const dashboard = dashboardHost(inputs.tld);
  const owners = new Map<string, string>([[dashboard, "the dashboard"]]);
  /** Claims `host` for `owner`; false (and a problem) when somebody else has it. */
  const claim = (host: string, owner: string): boolean => {
    const held = owners.get(host);
    if (held !== undefined) {
      problems.push(`${owner}: ${host} is already served for ${held}; left out`);
      return false;
    }
    owners.set(host, owner);
    return true;
  };

  const suffix = context.httpsPort === 443 ? "" : `:${context.httpsPort}`;
  const routes: IngressRoute[] = [];
  const publicDomains: IngressRoute[] = [];
  const apps: AppUrls[] = [];
  for (const app of sortedApps(inputs.apps)) {
    const owner = `${app.repo}/${app.name}`;
    const urls: string[] = [];
    if (app.ingress !== null) {
      const upstream = `127.0.0.1:${app.ingress.port}`;
      const host = app.ingress.host.toLowerCase();
      if (claim(host, owner)) {
        routes.push({ host, upstream });
        urls.push(`https://${host}${suffix}/`);
      }
      for (const domain of app.domains.map((name) => name.toLowerCase())) {
        if (!claim(domain, owner)) continue;
        publicDomains.push({ host: domain, upstream });
        urls.push(`https://${domain}${suffix}/`);
      }
    } else if (app.domains.length > 0) {
      problems.push(`${owner}: has public domains but no http port to serve them; left out`);
    }
    apps.push({ repo: app.repo, name: app.name, urls });
  }

  const sites: IngressSite[] = [];
  const publicSites: IngressSite[] = [];
  const pages: PageUrls[] = [];
  const pageNames: string[] = [];
  for (const page of sortedPages(inputs.pages)) {
    const owner = `page ${page.name}`;
    const urls: string[] = [];
    // A page without a version yet keeps its names (and DNS) but has nothing to serve.
    const host = page.host.toLowerCase();
    if (claim(host, owner)) {
      pageNames.push(host);
      if (page.root !== null) {
        sites.push({ host, root: page.root });
        urls.push(`https://${host}${suffix}/`);
      }
    }
    for (const domain of page.domains.map((name) => name.toLowerCase())) {
      if (!claim(domain, owner) || page.root === null) continue;
      publicSites.push({ host: domain, root: page.root });
      urls.push(`https://${domain}${suffix}/`);
    }
    pages.push({ name: page.name, urls });
  }

  const records = boxDnsRecords({
    tld: inputs.tld,
    addresses: context.lanAddresses,
    apps: [],
    // The inputs carry full names (the lead's one naming function made them).
    boxNames: [dashboard, ...inputs.apps.flatMap((app) => app.names), ...pageNames],
  });

  const internalClient = context.lanAddresses.find((address) => isIPv4(address));
  const mappings: DesiredMapping[] = [];
  for (const app of sortedApps(inputs.apps)) {
    for (const port of app.ports) {
      if (port.exposure !== "internet") continue;
      if (internalClient === undefined) {
        problems.push(
          `${app.repo}/${app.name}: port ${port.host}/${port.protocol} is not forwarded: the box has no LAN IPv4 address`,
        );
        continue;
      }
      mappings.push({
        externalPort: port.host,
        internalPort: port.host,
        protocol: port.protocol === "tcp" ? "TCP" : "UDP",
        internalClient,
        description: mappingDescription(app.repo, port.instance, port.host),
      });
    }
  }

  // Public names need the internet to reach the ingress: HTTPS, and HTTP for ACME's challenge.
  // Only when the administrator chose it: the forward opens the ingress, not one app.
  const anyPublic = publicDomains.length > 0 || publicSites.length > 0;
  if (anyPublic && inputs.forwardHttps !== true) {
    problems.push(
      "public domains answer on the home network only: forwarding the router's 443 and 80 is off (setting upnp.forward_https)",
    );
  } else if (anyPublic) {
    if (internalClient === undefined) {
      problems.push("public domains are not reachable: the box has no LAN IPv4 address");
    } else {
      for (const [external, internal] of [
        [443, context.httpsPort],
        [80, context.httpPort],
      ] as const) {
        mappings.push({
          externalPort: external,
          internalPort: internal,
          protocol: "TCP",
          internalClient,
          description: mappingDescription("town", "ingress", external),
        });
      }
    }
  }

  return {
    ingress: {
      routes,
      publicDomains,
      sites,
      publicSites,
      sitesRoot: context.sitesRoot,
      dashboard: { host: dashboard, upstream: `127.0.0.1:${inputs.dashboardPort}` },
      httpsPort: context.httpsPort,
      httpPort: context.httpPort,
      adminAddress: context.adminAddress,
      storageDir: context.storageDir,
      sitesAddress: `127.0.0.1:${context.sitesPort}`,
      acmeChallengeAddress: `127.0.0.1:${context.acmeChallengePort}`,
      haproxyDir: context.haproxyDir,
      ...(context.haproxyUser === undefined ? {} : { haproxyUser: context.haproxyUser }),
      ...(context.metricsPort === undefined
        ? {}
        : { metricsAddress: `127.0.0.1:${context.metricsPort}` }),
    },
    dns: {
      records,
      listen: { addresses: [...context.lanAddresses], port: context.dnsPort },
      localDomains: [inputs.tld],
    },
    mappings,
    dashboardUrl: `https://${dashboard}${suffix}/`,
    apps,
    pages,
    problems,
  };
}

/**
 * `compileIngress`, leaving out the app routes and sites it refuses (and
 * saying so) so that the rest is still served. Throws when the dashboard or the ingress
 * settings themselves are refused.
 */
export function compileIngressLeniently(input: IngressInput): {
  compiled: CompiledIngress;
  problems: string[];
} {
  try {
    return { compiled: compileIngress(input), problems: [] };
  } catch (error) {
    const issues = refusedIssues(error);
    const routeIssue = (issue: Issue): boolean =>
      /^(routes|publicDomains|sites|publicSites)\[\d+\]/.test(issue.field ?? "");
    if (issues === undefined || !issues.every(routeIssue)) throw error;
    const kept = <T>(list: readonly T[], name: string): T[] => {
      const bad = issueIndexes(issues, name);
      return list.filter((_, i) => !bad.has(i));
    };
    const compiled = compileIngress({
      ...input,
      routes: kept(input.routes, "routes"),
      publicDomains: kept(input.publicDomains, "publicDomains"),
      sites: kept(input.sites, "sites"),
      publicSites: kept(input.publicSites, "publicSites"),
    });
    return { compiled, problems: issues.map((issue) => `ingress: left out: ${issue.message}`) };
  }
}

/**
 * The records dnsmasq refused (named by the issues of its `invalid_argument`)
 * taken out; undefined when something else was refused.
 */
export function withoutRefusedRecords(
  records: readonly DnsRecord[],
  error: unknown,
): { records: DnsRecord[]; problems: string[] } | undefined {
  const issues = refusedIssues(error);
  if (issues === undefined || !issues.every((issue) => /^records\.\d+\./.test(issue.field ?? "")))
    return undefined;
  const bad = issueIndexes(issues, "records");
  return {
    records: records.filter((_, i) => !bad.has(i)),
    problems: issues.map((issue) => `dns: left out: ${issue.message}`),
  };
}

function refusedIssues(error: unknown): readonly Issue[] | undefined {
  return isTownError(error) && error.code === "invalid_argument" && error.issues.length > 0
    ? error.issues
    : undefined;
}

/** Indexes of `list` named by issue fields like `routes[3].host` or `records.3.name`. */
export function issueIndexes(issues: readonly Issue[], list: string): Set<number> {
  const pattern = new RegExp(`^${list}(?:\\[(\\d+)\\]|\\.(\\d+))(?:\\.|$)`);
  const found = new Set<number>();
  for (const issue of issues) {
    const match = pattern.exec(issue.field ?? "");
    const index = match?.[1] ?? match?.[2];
    if (index !== undefined) found.add(Number(index));
  }
  return found;
}

/** By repo, then name: the same apps in any order give the same plan. */
function sortedApps(apps: readonly NetworkApp[]): NetworkApp[] {
  return [...apps].sort((a, b) =>
    a.repo === b.repo ? compare(a.name, b.name) : compare(a.repo, b.repo),
  );
}

/** By name: the same pages in any order give the same plan. */
function sortedPages(pages: readonly NetworkPage[]): NetworkPage[] {
  return [...pages].sort((a, b) => compare(a.name, b.name));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
