/**
 * The HTTPS ingress as one service: HAProxy serves (TLS, who may ask for
 * which name, routing, redirects) and Caddy keeps the certificates (local
 * CA, ACME) and serves the static sites behind it. Both outlive the daemon:
 * `close()` leaves them serving, and the next daemon adopts them.
 *
 * A config goes to Caddy first (the certificates of new names come from
 * it), then to HAProxy. Refused by either, the old config keeps serving and
 * the refusal is in the status.
 */
import { join } from "node:path";
import type { CompiledIngress } from "./config.js";
import { DEFAULT_HAPROXY_USER, HaproxySupervisor, type HaproxyStatus } from "./haproxy.js";
import { CaddySupervisor, type IngressLog, type IngressStatus } from "./supervisor.js";

export interface IngressOptions {
  /** The ingress data directory: Caddy's files, and HAProxy's in `haproxy/`. */
  dataDir: string;
  log?: IngressLog;
  pollIntervalMs?: number;
  certificateCheckMs?: number;
  backoffInitialMs?: number;
}

/** Where compileIngress must name each program's files, and who HAProxy's workers run as. */
export interface IngressLocations {
  adminAddress: string;
  storageDir: string;
  sitesRoot: string;
  haproxyDir: string;
  haproxyUser?: { name: string; group: string };
}

export interface IngressServiceStatus extends IngressStatus {
  /** Caddy, the certificate manager and static sites' server. */
  certificates: {
    state: IngressStatus["state"];
    pid: number | null;
    user: string | null;
    /** Names HAProxy has a certificate for. */
    served: number;
  };
}

const HEALTH_ORDER: readonly IngressStatus["state"][] = [
  "failed",
  "restarting",
  "starting",
  "stopped",
  "adopted",
  "running",
];

export class Ingress {
  readonly caddy: CaddySupervisor;
  readonly haproxy: HaproxySupervisor;

  constructor(options: IngressOptions) {
    const common = {
      ...(options.log === undefined ? {} : { log: options.log }),
      ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
      ...(options.backoffInitialMs === undefined
        ? {}
        : { backoffInitialMs: options.backoffInitialMs }),
    };
    this.caddy = new CaddySupervisor({ dataDir: options.dataDir, ...common });
    this.haproxy = new HaproxySupervisor({
      dir: join(options.dataDir, "haproxy"),
      certificateStorage: this.caddy.paths.storageDir,
      ...common,
      ...(options.certificateCheckMs === undefined
        ? {}
        : { certificateCheckMs: options.certificateCheckMs }),
    });
  }

  get paths(): CaddySupervisor["paths"] {
    return this.caddy.paths;
  }

  locations(): IngressLocations {
    const root = process.getuid?.() === 0;
    return {
      adminAddress: this.caddy.caddyAdminAddress,
      storageDir: this.caddy.paths.caddyStorageDir,
      sitesRoot: this.caddy.paths.caddySitesDir,
      haproxyDir: this.haproxy.dir,
      // A root daemon's HAProxy parses requests as Debian's `haproxy` user, never as root.
      ...(root ? { haproxyUser: { name: DEFAULT_HAPROXY_USER, group: DEFAULT_HAPROXY_USER } } : {}),
    };
  }

  async start(): Promise<IngressServiceStatus> {
    await this.caddy.start();
    await this.haproxy.start();
    return this.status();
  }

  /**
   * Caddy, then HAProxy. `pending` while Caddy is down (HAProxy gets the
   * config all the same, with the certificates there are).
   */
  async apply(compiled: CompiledIngress): Promise<"unchanged" | "loaded" | "pending"> {
    const certificates = await this.caddy.apply(compiled);
    const serving = await this.haproxy.apply(compiled);
    if (certificates === "pending") return "pending";
    return certificates === "loaded" || serving === "loaded" ? "loaded" : "unchanged";
  }

  status(): IngressServiceStatus {
    const caddy = this.caddy.status();
    const haproxy = this.haproxy.status();
    const worst = [haproxy.state, caddy.state].sort(
      (a, b) => HEALTH_ORDER.indexOf(a) - HEALTH_ORDER.indexOf(b),
    )[0];
    const desiredHash = haproxy.desiredHash;
    return {
      state: worst ?? haproxy.state,
      pid: haproxy.pid,
      user: haproxy.pid === null ? null : (this.locations().haproxyUser?.name ?? null),
      adminAddress: caddy.adminAddress,
      httpsPort: caddy.httpsPort,
      httpPort: caddy.httpPort,
      configCurrent:
        caddy.configCurrent && desiredHash !== null && haproxy.appliedHash === desiredHash,
      desiredHash,
      appliedHash: haproxy.appliedHash,
      restarts: caddy.restarts + haproxy.restarts,
      lastError: latest(haproxy.lastError, caddy.lastError),
      certificates: {
        state: caddy.state,
        pid: caddy.pid,
        user: caddy.user,
        served: haproxy.certificates,
      },
    };
  }

  /** The local CA's root certificate (PEM), for `/tls/ca.crt`. */
  rootCertificate(): Promise<string> {
    return this.caddy.rootCertificate();
  }

  /** Stops watching; both keep serving. */
  close(): void {
    this.haproxy.close();
    this.caddy.close();
  }

  /** Tests only: stops both, waiting until they are gone. */
  async stop(): Promise<void> {
    await this.haproxy.stop();
    await this.caddy.stop();
  }
}

function latest(...errors: HaproxyStatus["lastError"][]): HaproxyStatus["lastError"] {
  return errors.reduce<HaproxyStatus["lastError"]>(
    (found, error) => (error !== null && (found === null || error.at > found.at) ? error : found),
    null,
  );
}
