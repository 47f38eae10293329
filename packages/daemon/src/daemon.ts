import { randomBytes } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { hostname, networkInterfaces } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { SystemInfo } from "@townos/format";
import { Apps } from "./apps/service.js";
import { AppMonitor } from "./apps/monitor.js";
import { appDomainOwners } from "./apps/domains.js";
import { OAuthFlows, type OAuthConfig } from "./apps/oauth.js";
import { appRuntime, type AppRuntime, type VmsConfig } from "./apps/host-runtime.js";
import { appReconciler } from "./apps/seeder.js";
import { Accounts } from "./auth/accounts.js";
import { Sessions } from "./auth/sessions.js";
import { SETUP_CODE_FILE, SetupCode } from "./auth/setup-code.js";
import { SshKeys } from "./system/ssh-keys.js";
import { OsNetwork, type OsNetworkHost } from "./system/os-network.js";
import { ConsolePassword } from "./system/console-password.js";
import { LoginThrottle } from "./auth/throttle.js";
import { Catalog, type RepositoryFetcher } from "./catalog/catalog.js";
import { gitFetcher } from "./catalog/git-fetcher.js";
import {
  DEFAULT_JOB_LIMITS,
  RepositoryJobs,
  type RepositoryJobLimits,
} from "./catalog/repository-jobs.js";
import { systemClock, type Clock } from "./clock.js";
import { ownHostsReader, readOwnHosts } from "./net/own-hosts.js";
import { Metrics } from "./api/metrics.js";
import type { BootState } from "./api/context.js";
import { buildApi } from "./api/server.js";
import { hostLanAddresses, Network, NETWORK } from "./net/network.js";
import { waitForFile } from "./system/wait-for-file.js";
import { writeBootedFile } from "./system/booted-file.js";
import { attachPages, createPages } from "./pages/setup.js";
import { applyConsolePassword, pruneAudit, startBackgroundWork } from "./background-work.js";
import { appEndpoints } from "./monitoring/app-endpoints.js";
import { AppMetrics } from "./monitoring/app-metrics.js";
import type { OsFiles } from "./system/os-info.js";
import { grafanaNetworkApp } from "./monitoring/grafana-runner.js";
import { createMonitoring, grafanaRunner, runMonitoring } from "./monitoring/setup.js";
import type { MonitoringConfig } from "./monitoring/types.js";
import { Manager, periodic } from "./reconcile/manager.js";
import { AuditLog } from "./store/audit.js";
import { sql, openDatabase, type Db } from "./store/database.js";
import { Installs } from "./store/installs.js";
import { DEFAULT_REPOSITORY, Repositories } from "./store/repositories.js";
import { hostList, Settings } from "./store/settings.js";
import { Podman, type PodmanOptions } from "./runtime/podman/client.js";
import { VmImageStore } from "./runtime/qemu/images.js";
import { setupStorage } from "./storage/setup.js";
import type { HostRuntime } from "./runtime/workload.js";
import type { Services } from "./services.js";
import { volumeUsers, Volumes } from "./volumes/volumes.js";
import { createRestorePoints } from "./backup/restore-points-setup.js";
import { createBackups } from "./backup/setup.js";
import { createState } from "./state/setup.js";

export interface DaemonConfig {
  dataDir: string;
  host: string;
  port: number;
  /** URL of the repository added on first start; empty for none. */
  defaultRepositoryUrl: string;
  logLevel: string;
  /** Extra host names browsers may use to reach the box (behind a proxy, say). */
  extraHosts: string[];
  version: string;
  clock?: Clock;
  fetcher?: RepositoryFetcher;
  /** Time and heap one repository's fetch or read (and parse) may take in its worker. */
  repositoryLimits?: Partial<RepositoryJobLimits>;
  /** A dashboard build served at `/` (packages/web/dist); absent: the API only. */
  webRoot?: string;
  /** Where log lines go; stdout by default. */
  logStream?: NodeJS.WritableStream;
  /** Running apps: Podman and storage settings, or false for none (apps answer `unavailable`). */
  apps?: AppsConfig | false;
  /** HTTPS ingress, DNS, mDNS and UPnP; absent or false: off (the net status says so). */
  network?: NetworkConfig | false;
  /** Prometheus and Node Exporter on loopback ports; absent or false: off (the monitoring status says so). */
  monitoring?: MonitoringConfig | false;
  /** How oauth questions' flows reach their providers (extra CA; private addresses in tests). */
  oauth?: OAuthConfig;
  /** Tests: an answer with a field its response schema lacks fails (see api/response-check.ts). */
  checkResponses?: boolean;
  /** Where the Town OS image's files are (tests); default the image's own paths. */
  osFiles?: OsFiles;
  /**
   * The data directory is opened only once this file exists: on the image,
   * the data pool's decision (/run/town-os/data), written once the pool (or
   * RAM) is mounted there. The daemon starts meanwhile. Absent: at once.
   */
  dataReadyFile?: string;
  /** Gets the boot's outcome once booting ends (the image: /run/town-os/daemon, see town-os-to-ram.path). */
  bootedFile?: string;
  /**
   * systemd-networkd's runtime directory (the image: /run/systemd/network),
   * where the saved network settings are applied. Absent: never.
   */
  networkdDir?: string;
  /** Where the kernel command line, the interfaces and networkctl are (tests); default the real ones. */
  osNetworkHost?: Partial<OsNetworkHost>;
  /**
   * The root directory whose /etc/shadow gets root's console password: `/`
   * on the image. Absent: the password is kept but no host's root changes.
   */
  consoleLoginRoot?: string;
}

export interface NetworkConfig {
  httpsPort: number;
  httpPort: number;
  dnsPort: number;
  /** Loopback ports of Caddy's static sites server and ACME solver, behind HAProxy. */
  sitesPort: number;
  acmeChallengePort: number;
  /** Caddy's Prometheus metrics on this loopback port; absent: none. */
  metricsPort?: number;
  /** The router's UPnP description URL; absent: found by SSDP. */
  gatewayUrl?: string;
  /** The LAN addresses served (tests: 127.0.0.1); default: the host's. */
  lanAddresses?: string[];
  /** Where dnsmasq's files go (tests: their own); default /run/town/dns. */
  dnsDir?: string;
}

export interface AppsConfig {
  podman?: PodmanOptions;
  /**
   * Make a btrfs loop file of this size when the data directory is not on
   * btrfs; absent: plain directories.
   */
  storageLoopBytes?: number;
  /** How often every app is reconciled even without a change; default 60 s. */
  resyncMs?: number;
  /** Virtual machines; false: none (VM apps answer `unavailable`). Default: on when QEMU is installed. */
  vms?: VmsConfig | false;
}

export const DEFAULT_DATA_DIR = "/var/lib/town";
/** Below the data directory: the VM image store, and the VMs' own state (pid, QMP socket, console). */
const VM_IMAGES_DIR = "vm-images";
const VM_STATE_DIR = "vms";
export interface RunningDaemon {
  app: FastifyInstance;
  boot: BootState;
  /** Where the API listens, e.g. http://127.0.0.1:5309. */
  url: string;
  /** Resolves when booting finished (or failed). */
  booted: Promise<void>;
  /** The first-run setup code while no account exists (also logged, and in the data dir). */
  readonly setupCode: string | undefined;
  stop(): Promise<void>;
}

/**
 * Starts the daemon. The port is bound first and answers `/status` while the
 * rest boots, so a dashboard can show progress instead of a dead page.
 */
export async function startDaemon(config: DaemonConfig): Promise<RunningDaemon> {
  const clock = config.clock ?? systemClock;
  const boot: BootState = { state: "booting", step: "starting", error: null, services: undefined };
  const metrics = new Metrics();
  // Read again every few seconds: a new DHCP lease's address is the box's own without a restart.
  const ownHosts = ownHostsReader(() => readOwnHosts(config.extraHosts), clock);
  const app = await buildApi({
    version: config.version,
    boot,
    metrics,
    // The dashboard's name follows the TLD setting, which may change at any time.
    isAllowedHost: (host) =>
      ownHosts().has(host) ||
      (boot.services !== undefined && host === `town.${boot.services.settings.string("dns.tld")}`),
    logger: { level: config.logLevel, ...(config.logStream ? { stream: config.logStream } : {}) },
    ...(config.webRoot === undefined ? {} : { webRoot: config.webRoot }),
    ...(config.checkResponses === true ? { checkResponses: true } : {}),
    ...(config.osFiles === undefined ? {} : { osFiles: config.osFiles }),
  });
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const hostForUrl = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const url = `http://${hostForUrl.includes(":") ? `[${hostForUrl}]` : hostForUrl}:${port}`;

  let db: Db | undefined;
  let stopBackgroundWork = (): void => undefined;
  let stopApps = (): Promise<void> => Promise.resolve();
  let stopNetwork = (): Promise<void> => Promise.resolve();
  let stopMonitoring = (): void => undefined;
  const stopping = new AbortController();
  const booted = (async () => {
    try {
      if (config.dataReadyFile !== undefined) {
        boot.step = "waiting for the data disk";
        await waitForFile(config.dataReadyFile, stopping.signal);
      }
      boot.step = "opening the state database";
      await mkdir(config.dataDir, { recursive: true, mode: 0o750 });
      db = openDatabase(join(config.dataDir, "town.db"));
      const services = createServices(db, clock, config, app.log, port);
      addDefaultRepository(db, services.repositories, config.defaultRepositoryUrl);
      pruneAudit(services, app);
      await applyConsolePassword(services, app);
      const setupCode = await services.setupCode.prepare(services.accounts.setupNeeded);
      if (setupCode !== undefined) {
        app.log.info(
          { setupCode, file: join(config.dataDir, SETUP_CODE_FILE) },
          `First-run setup code: ${setupCode} (the dashboard's first page and town setup ask for it)`,
        );
      }
      // In the background: a repository, however large or hostile, never holds the boot.
      void services.catalog.loadLocal();
      boot.services = services;
      boot.state = "ready";
      boot.step = "ready";
      app.log.info({ dataDir: config.dataDir, url }, "Town OS is ready");
      stopBackgroundWork = startBackgroundWork(services, app);
      const monitoring = runMonitoring(services.monitoring, services.settings);
      services.apps.onNetworkChange(monitoring.changed);
      stopMonitoring = monitoring.stop;
      stopApps = startApps(db, services, config, clock, app, metrics);
      stopNetwork = startNetwork(services, port, app);
    } catch (error) {
      boot.state = "failed";
      boot.error = error instanceof Error ? error.message : String(error);
      app.log.error({ err: error }, "Town OS failed to start");
    }
    if (config.bootedFile !== undefined)
      await writeBootedFile(config.bootedFile, boot.state, app.log);
  })();

  return {
    app,
    boot,
    url,
    booted,
    get setupCode() {
      return boot.services?.setupCode.current;
    },
    async stop() {
      stopping.abort(new Error("Town OS stopped while it was starting"));
      await booted;
      stopBackgroundWork();
      await boot.services?.osNetwork.idle();
      boot.services?.oauth.close();
      await boot.services?.pages.stop();
      stopMonitoring();
      await boot.services?.monitoring.close();
      await stopNetwork();
      await boot.services?.backups.stop();
      await boot.services?.state.stop();
      await stopApps();
      await app.close();
      await boot.services?.catalog.settle();
      boot.services?.audit.summariseAnonymous();
      db?.close();
    },
  };
}

function createServices(
  db: Db,
  clock: Clock,
  config: DaemonConfig,
  log: FastifyInstance["log"],
  apiPort: number,
): Services {
  const accounts = new Accounts(db, clock);
  const repositories = new Repositories(db, clock);
  const installs = new Installs(db, clock);
  const settings = new Settings(db);
  const jobs = new RepositoryJobs({ ...DEFAULT_JOB_LIMITS, ...config.repositoryLimits });
  const catalog = new Catalog(
    db,
    repositories,
    installs,
    config.fetcher ?? gitFetcher(jobs),
    join(config.dataDir, "repositories"),
    clock,
    (files) => jobs.parse(files),
  );
  const manager = new Manager();
  const box = boxId(db);
  const network = config.network
    ? createNetwork(config.network, config.dataDir, log, manager)
    : undefined;
  const apps = new Apps({
    installs,
    catalog,
    tld: () => settings.string("dns.tld"),
    system: systemInfo,
    box,
    log: (message, fields) => {
      log.warn(fields, message);
    },
    manager,
  });
  const pages = createPages(db, clock, config.dataDir, {
    tld: () => settings.string("dns.tld"),
    takenNames: () =>
      new Set([
        ...installs.list().map((install) => install.name),
        ...repositories.list().map((repository) => repository.name),
      ]),
    appDomains: () => appDomainOwners(installs.list()),
    box,
    log: (message, fields) => {
      log.warn(fields, message);
    },
  });
  const volumes = new Volumes({
    settings,
    volumeUsers: () => volumeUsers([...installs.list(), ...installs.removals()]),
    holder: apps,
  });
  const points = createRestorePoints({
    db,
    clock,
    installs,
    repositories,
    settings,
    apps,
    volumes,
  });
  const audit = new AuditLog(db, clock);
  return {
    accounts,
    sessions: new Sessions(db, accounts, clock),
    throttle: new LoginThrottle({ maxFailures: 5, windowMs: 60_000 }, clock),
    setupCode: new SetupCode(join(config.dataDir, SETUP_CODE_FILE)),
    sshKeys: new SshKeys(config.dataDir),
    osNetwork: new OsNetwork(config.dataDir, config.networkdDir, config.osNetworkHost),
    consolePassword: new ConsolePassword(config.dataDir, config.consoleLoginRoot),
    audit,
    settings,
    repositories,
    installs,
    catalog,
    apps,
    pages,
    monitor: new AppMonitor({ installs, clock }),
    oauth: new OAuthFlows({ index: () => catalog.index(), clock, config: config.oauth ?? {} }),
    vmImages: new VmImageStore(join(config.dataDir, VM_IMAGES_DIR), { clock }),
    volumes,
    ...points,
    backups: createBackups({
      db,
      clock,
      installs,
      repositories,
      catalog,
      settings,
      apps,
      volumes,
      restorePoints: points.restorePoints,
      manager,
      log: (message, fields) => {
        log.warn(fields, message);
      },
    }),
    state: createState({
      db,
      clock,
      dataDir: config.dataDir,
      repositories,
      catalog,
      settings,
      installs,
      apps,
      volumes,
      pages,
      manager,
      audit,
      log: (message, fields) => {
        log.warn(fields, message);
      },
    }),
    network,
    monitoring: createMonitoring(config.monitoring, {
      dataDir: config.dataDir,
      apiPort,
      settings,
      ingressMetrics: () => network?.metricsAddress ?? null,
      log: {
        info: (message) => {
          log.info(message);
        },
        warn: (message: string, fields?: Record<string, unknown>) => {
          log.warn(fields, message);
        },
      },
    }),
    manager,
    system: systemInfo,
  };
}

function createNetwork(
  network: NetworkConfig,
  dataDir: string,
  log: FastifyInstance["log"],
  manager: Manager,
): Network {
  const lanAddresses = network.lanAddresses;
  return new Network({
    dataDir: join(dataDir, "network"),
    ...(network.dnsDir === undefined ? {} : { dnsDir: network.dnsDir }),
    httpsPort: network.httpsPort,
    httpPort: network.httpPort,
    dnsPort: network.dnsPort,
    sitesPort: network.sitesPort,
    acmeChallengePort: network.acmeChallengePort,
    ...(network.metricsPort === undefined ? {} : { metricsPort: network.metricsPort }),
    ...(network.gatewayUrl === undefined ? {} : { gatewayUrl: network.gatewayUrl }),
    lanAddresses: lanAddresses === undefined ? hostLanAddresses : () => [...lanAddresses],
    log: {
      info: (message) => {
        log.info(message);
      },
      warn: (message) => {
        log.warn(message);
      },
    },
    manager,
  });
}

/** How often the network is updated even without a change (LAN addresses, resolv.conf, retries). */
const NETWORK_RESYNC_MS = 60_000;

/**
 * Starts networking in the background and keeps it fed: at start, whenever
 * the installs' networking changes or its settings do, and every minute.
 * Returns a stop function that leaves Caddy and dnsmasq serving.
 */
function startNetwork(
  services: Services,
  dashboardPort: number,
  app: FastifyInstance,
): () => Promise<void> {
  const network = services.network;
  if (network === undefined) return () => Promise.resolve();
  let stopped = false;
  /** Resolves once the network serves what the installs and pages ask for now. */
  const update = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    try {
      const inputs = services.apps.networkInputs(dashboardPort);
      const grafana = services.monitoring.grafanaState().state === "running";
      return network.update({
        ...inputs,
        apps: grafana ? [...inputs.apps, grafanaNetworkApp(inputs.tld)] : inputs.apps,
        pages: services.pages.networkPages(),
        forwardHttps: services.settings.get("upnp.forward_https") === true,
      });
    } catch (error) {
      app.log.warn({ err: error }, "network: the inputs could not be read");
      return Promise.resolve();
    }
  };
  void network.start();
  void update();
  services.apps.onNetworkChange(() => void update());
  services.pages.onNetworkChange(update);
  services.monitoring.onGrafanaChange(() => void update());
  services.settings.onChange((key) => {
    if (key === "dns.tld" || key === "upnp.forward_https") void update();
  });
  // Ends when the network closes (its kind stops).
  services.manager.watch(
    NETWORK,
    periodic(NETWORK_RESYNC_MS, () => void update()),
  );
  return async () => {
    stopped = true;
    await network.close();
  };
}

/**
 * Sets storage and Podman up in the background (the API is ready without
 * them) and then starts reconciling apps. When either fails, the daemon runs
 * on and app calls answer `unavailable` with the reason. Returns a stop function.
 */
function startApps(
  db: Db,
  services: Services,
  config: DaemonConfig,
  clock: Clock,
  app: FastifyInstance,
  metrics: Metrics,
): () => Promise<void> {
  if (config.apps === false) {
    startPages(services, config, clock, undefined, app);
    services.apps.setUnavailable("running apps is turned off in this daemon's configuration");
    services.monitor.setUnavailable("running apps is turned off in this daemon's configuration");
    services.volumes.setUnavailable("storage is turned off in this daemon's configuration");
    return () => Promise.resolve();
  }
  const options = config.apps ?? {};
  const podman = new Podman(options.podman ?? {});
  const stopping = new AbortController();
  let hosted: AppRuntime | undefined;
  let appMetrics: AppMetrics | undefined;
  const started = (async () => {
    try {
      const loopBytes = options.storageLoopBytes;
      const storage = await setupStorage({
        dataDir: config.dataDir,
        ...(loopBytes === undefined ? {} : { loopFileBytes: loopBytes }),
      });
      app.log.info({ mode: storage.mode, reason: storage.reason }, "storage is set up");
      services.volumes.attach(storage);
      services.backups.start();
      await podman.ensureService();
      await startEnabledAfterBoot(db, services.installs);
      if (stopping.signal.aborted) return;
      hosted = await appRuntime({
        podman,
        vms: options.vms,
        stateDir: join(config.dataDir, VM_STATE_DIR),
        images: services.vmImages,
        log: {
          info: (message) => {
            app.log.info(message);
          },
          warn: (message) => {
            app.log.warn(message);
          },
        },
        clock,
      });
      const { runtime, vmImages } = hosted;
      services.monitor.attach(runtime);
      services.apps.attach({
        runtime,
        storage: storage.driver,
        reconciler: appReconciler({
          runtime,
          ...(vmImages ? { vmImages } : {}),
          storage: storage.driver,
          desired: services.installs,
          clock,
          box: services.apps.box,
          insecureRegistries: () => hostList(services.settings.string("registries.insecure")),
          held: (repo, name) => services.apps.isHeld(repo, name),
        }),
        events: (eventOptions) => runtime.events(eventOptions),
        ...(options.resyncMs === undefined ? {} : { resyncMs: options.resyncMs }),
      });
      startPages(services, config, clock, runtime, app);
      // The state repository's apps are checked against the catalog: it is read first.
      void services.catalog.settle().then(() => {
        if (!stopping.signal.aborted) services.state.start();
      });
      const grafana = grafanaRunner(config.monitoring, {
        runtime,
        box: services.apps.box,
        dataDir: config.dataDir,
        scrapeIntervalSeconds: () => services.settings.number("monitoring.scrape_interval"),
        url: () => {
          const network = config.network;
          const port = network && network.httpsPort !== 443 ? `:${network.httpsPort}` : "";
          return `https://grafana.${services.settings.string("dns.tld")}${port}/`;
        },
      });
      if (grafana) services.monitoring.attachGrafana(grafana);
      services.monitoring.attachApps(() =>
        appEndpoints(services.installs.list(), (name) => runtime.inspect(name)),
      );
      appMetrics = new AppMetrics({
        registry: metrics.registry,
        runtime,
        storage: storage.driver,
        box: services.apps.box,
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (hosted === undefined) startPages(services, config, clock, undefined, app);
      services.apps.setUnavailable(reason);
      services.monitor.setUnavailable(reason);
      // Ignored when storage was set up and only the container runtime failed.
      services.volumes.setUnavailable(reason);
      app.log.warn({ reason }, "apps cannot run");
    }
  })();
  return async () => {
    stopping.abort();
    await started;
    await services.apps.stop();
    await services.monitor.stop();
    appMetrics?.close();
    await hosted?.detach();
    podman.close();
  };
}

/**
 * Pages deploy into the ingress's sites directory once Caddy has made it;
 * image sources and builds need the container runtime (undefined: those
 * answer `unavailable`, archive and git pages work).
 */
function startPages(
  services: Services,
  config: DaemonConfig,
  clock: Clock,
  runtime: HostRuntime | undefined,
  app: FastifyInstance,
): void {
  const network = services.network;
  if (network === undefined) {
    services.pages.setUnavailable(
      "pages are served by the HTTPS ingress, which is off in this daemon's configuration",
    );
    return;
  }
  void (async () => {
    await network.start();
    await attachPages(
      services.pages,
      config.dataDir,
      network.sitesDir,
      runtime,
      () => hostList(services.settings.string("registries.insecure")),
      clock,
    );
  })().catch((error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error);
    services.pages.setUnavailable(`pages cannot deploy: ${reason}`);
    app.log.warn({ reason }, "pages cannot deploy");
  });
}

/**
 * The box's host name and LAN address. The address seen from the internet
 * is the LAN one until the router tells us better (UPnP, a later step).
 */
export function systemInfo(): SystemInfo {
  let lan = "127.0.0.1";
  for (const addresses of Object.values(networkInterfaces())) {
    const found = addresses?.find((address) => address.family === "IPv4" && !address.internal);
    if (found) {
      lan = found.address;
      break;
    }
  }
  return { hostname: hostname(), internalIP: lan, externalIP: lan };
}

/**
 * When the machine has booted since the daemon last ran, apps a person
 * stopped but left enabled run again: "enabled" means started with the box.
 * A daemon restart alone keeps them stopped.
 */
async function startEnabledAfterBoot(db: Db, installs: Installs): Promise<void> {
  let bootId: string;
  try {
    bootId = (await readFile("/proc/sys/kernel/random/boot_id", "utf8")).trim();
  } catch {
    return;
  }
  const row = sql(db, "SELECT value FROM meta WHERE key = 'boot_id'").get() as
    { value: string } | undefined;
  if (row?.value === bootId) return;
  installs.startEnabled();
  sql(
    db,
    "INSERT INTO meta (key, value) VALUES ('boot_id', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  ).run(bootId);
}

/** This install's id, made on its first start: labels its containers as its own. */
function boxId(db: Db): string {
  const row = sql(db, "SELECT value FROM meta WHERE key = 'box_id'").get() as
    { value: string } | undefined;
  if (row) return row.value;
  const id = randomBytes(6).toString("hex");
  sql(db, "INSERT INTO meta (key, value) VALUES ('box_id', ?)").run(id);
  return id;
}

/** On the very first start only: a box with no repository cannot install anything. */
function addDefaultRepository(db: Db, repositories: Repositories, url: string): void {
  const done = sql(db, "SELECT value FROM meta WHERE key = 'default_repository_added'").get();
  if (done) return;
  if (url !== "") repositories.add({ name: DEFAULT_REPOSITORY.name, url });
  sql(db, "INSERT INTO meta (key, value) VALUES ('default_repository_added', '1')").run();
}
