import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import {
  DEFAULT_DATA_DIR,
  DEFAULT_LISTEN,
  parseListen,
  startDaemon,
  type DaemonConfig,
} from "@townos/daemon";
import { DEFAULT_MONITORING, DEFAULT_REPOSITORY } from "@townos/daemon";
import { UsageError } from "./usage.js";
import type { Io } from "./io.js";

interface DaemonFlags {
  dataDir?: string;
  listen?: string;
  httpsPort?: string;
  httpPort?: string;
  dnsPort?: string;
}

export function registerDaemonCommand(program: Command, io: Io): void {
  program
    .command("daemon")
    .description("run the Town OS daemon (API, state, catalog)")
    .option("--data-dir <dir>", `state directory (env TOWN_DATA_DIR, default ${DEFAULT_DATA_DIR})`)
    .option("--listen <host:port>", `API address (env TOWN_LISTEN, default ${DEFAULT_LISTEN})`)
    .option("--https-port <port>", "HTTPS port of the ingress (env TOWN_HTTPS_PORT, default 443)")
    .option(
      "--http-port <port>",
      "HTTP port, redirecting to HTTPS (env TOWN_HTTP_PORT, default 80)",
    )
    .option("--dns-port <port>", "port of the box's DNS server (env TOWN_DNS_PORT, default 53)")
    .addHelpText(
      "after",
      [
        "",
        "Environment:",
        "  TOWN_DATA_DIR, TOWN_LISTEN   as the options above",
        `  TOWN_DEFAULT_REPOSITORY      repository added on first start (default ${DEFAULT_REPOSITORY.url}; empty: none)`,
        "  TOWN_LOG_LEVEL               trace, debug, info (default), warn, error",
        "  TOWN_DATA_READY_FILE         open the data dir only once this file exists (the image: /run/town-os/data)",
        "  TOWN_BOOTED_FILE             write ready or failed there once booting ends (the image: /run/town-os/daemon)",
        "  TOWN_NETWORKD_DIR            apply the saved network settings there (the image: /run/systemd/network)",
        "  TOWN_CONSOLE_LOGIN_ROOT      apply root's console password to ROOT/etc/shadow (the image: /; unset: never)",
        "  TOWN_EXTRA_HOSTS             more host names browsers may use, comma-separated",
        "  TOWN_STORAGE_LOOP_BYTES      size of a btrfs loop file for volumes when the data dir is not btrfs",
        "  TOWN_PODMAN_SOCKET           Podman's API socket (default /run/podman/podman.sock; started if silent)",
        "  TOWN_HTTPS_PORT, TOWN_HTTP_PORT, TOWN_DNS_PORT   as the options above",
        "  TOWN_UPNP_GATEWAY_URL        the router's UPnP description URL (default: found by SSDP)",
        "  TOWN_NETWORK=off             no ingress, DNS, mDNS or UPnP",
        "  TOWN_EXTRA_CA_FILE           PEM file of CAs trusted besides the system's, for account links (oauth questions)",
        "  TOWN_VMS=off                 no virtual machines (VM apps answer unavailable)",
        "  TOWN_VM_ACCEL=kvm|tcg        the VMs' accelerator (default: KVM when a probe guest really runs under it)",
        "  TOWN_VM_PRIVATE_IMAGES=1     packages may download VM images from private and loopback addresses",
        `  TOWN_PROMETHEUS_PORT, TOWN_NODE_EXPORTER_PORT   their loopback ports (default ${DEFAULT_MONITORING.prometheusPort}, ${DEFAULT_MONITORING.nodeExporterPort})`,
        "  TOWN_MONITORING=off          no Prometheus or Node Exporter",
        "  TOWN_INGRESS_METRICS_PORT    the loopback port of Caddy's metrics for Prometheus (default 9180)",
        "  TOWN_INGRESS_SITES_PORT      the loopback port of Caddy's static sites, behind HAProxy (default 9181)",
        "  TOWN_INGRESS_ACME_PORT       the loopback port of Caddy's ACME HTTP-01 solver (default 9182)",
      ].join("\n"),
    )
    .action(async (flags: DaemonFlags) => {
      const { host, port } = parseListen(flags.listen ?? io.env["TOWN_LISTEN"] ?? DEFAULT_LISTEN);
      const daemon = await startDaemon({
        dataDir: flags.dataDir ?? io.env["TOWN_DATA_DIR"] ?? DEFAULT_DATA_DIR,
        host,
        port,
        defaultRepositoryUrl: io.env["TOWN_DEFAULT_REPOSITORY"] ?? DEFAULT_REPOSITORY.url,
        logLevel: io.env["TOWN_LOG_LEVEL"] ?? "info",
        extraHosts: (io.env["TOWN_EXTRA_HOSTS"] ?? "")
          .split(",")
          .filter((name) => name.trim() !== ""),
        version: packageVersion(),
        // The dashboard's build beside this package (packages/web/dist) unless TOWN_WEB_ROOT names one.
        webRoot:
          io.env["TOWN_WEB_ROOT"] ?? fileURLToPath(new URL("../../web/dist", import.meta.url)),
        apps: {
          ...loopBytes(io.env["TOWN_STORAGE_LOOP_BYTES"]),
          ...(io.env["TOWN_PODMAN_SOCKET"]
            ? { podman: { socketPath: io.env["TOWN_PODMAN_SOCKET"] } }
            : {}),
          vms:
            io.env["TOWN_VMS"] === "off"
              ? false
              : { privateImageUrls: io.env["TOWN_VM_PRIVATE_IMAGES"] === "1" },
        },
        network: networkConfig(flags, io.env),
        monitoring: monitoringConfig(io.env),
        ...(io.env["TOWN_DATA_READY_FILE"]
          ? { dataReadyFile: io.env["TOWN_DATA_READY_FILE"] }
          : {}),
        ...(io.env["TOWN_BOOTED_FILE"] ? { bootedFile: io.env["TOWN_BOOTED_FILE"] } : {}),
        ...(io.env["TOWN_NETWORKD_DIR"] ? { networkdDir: io.env["TOWN_NETWORKD_DIR"] } : {}),
        ...consoleLoginRoot(io.env["TOWN_CONSOLE_LOGIN_ROOT"]),
        ...(io.env["TOWN_EXTRA_CA_FILE"]
          ? { oauth: { trustedCaFile: io.env["TOWN_EXTRA_CA_FILE"] } }
          : {}),
      });
      // A bug in one background task must not take every app's dashboard and API down with it.
      process.on("unhandledRejection", (reason) => {
        daemon.app.log.error({ err: reason }, "unhandled rejection; Town OS keeps serving");
      });
      // Stopped as cleanly while it still waits for its data disk as after its boot:
      // the process then ends on its own (exit handlers run), not killed by the signal.
      const stopped = new Promise<void>((resolve) => {
        const stop = (): void => {
          void daemon.stop().then(resolve);
        };
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
      });
      await daemon.booted;
      if (daemon.setupCode !== undefined) {
        // Plain and on its own lines, so whoever started the box sees it among the JSON log lines.
        io.stderr(
          `\nFirst-run setup code: ${daemon.setupCode}\n  the dashboard's first page and "town setup" ask for it (on this box, town setup reads it itself)\n\n`,
        );
      }
      await stopped;
    });
}

/** Networking from flags and environment: on unless TOWN_NETWORK=off. */
function networkConfig(
  flags: DaemonFlags,
  env: NodeJS.ProcessEnv,
): NonNullable<DaemonConfig["network"]> {
  if (env["TOWN_NETWORK"] === "off") return false;
  const gatewayUrl = env["TOWN_UPNP_GATEWAY_URL"];
  return {
    httpsPort: port(flags.httpsPort ?? env["TOWN_HTTPS_PORT"], "--https-port", 443),
    httpPort: port(flags.httpPort ?? env["TOWN_HTTP_PORT"], "--http-port", 80),
    dnsPort: port(flags.dnsPort ?? env["TOWN_DNS_PORT"], "--dns-port", 53),
    metricsPort: port(env["TOWN_INGRESS_METRICS_PORT"], "TOWN_INGRESS_METRICS_PORT", 9180),
    sitesPort: port(env["TOWN_INGRESS_SITES_PORT"], "TOWN_INGRESS_SITES_PORT", 9181),
    acmeChallengePort: port(env["TOWN_INGRESS_ACME_PORT"], "TOWN_INGRESS_ACME_PORT", 9182),
    ...(gatewayUrl ? { gatewayUrl } : {}),
  };
}

/** Monitoring from the environment: on unless TOWN_MONITORING=off. */
function monitoringConfig(env: NodeJS.ProcessEnv): NonNullable<DaemonConfig["monitoring"]> {
  if (env["TOWN_MONITORING"] === "off") return false;
  return {
    prometheusPort: port(
      env["TOWN_PROMETHEUS_PORT"],
      "TOWN_PROMETHEUS_PORT",
      DEFAULT_MONITORING.prometheusPort,
    ),
    nodeExporterPort: port(
      env["TOWN_NODE_EXPORTER_PORT"],
      "TOWN_NODE_EXPORTER_PORT",
      DEFAULT_MONITORING.nodeExporterPort,
    ),
  };
}

function port(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!/^[0-9]{1,5}$/.test(text) || value < 1 || value > 65535)
    throw new UsageError(`${name} must be a port (1-65535), not "${text}"`);
  return value;
}

/** The apps configuration from the environment: a loop file size, whole bytes. */
function loopBytes(text: string | undefined): { storageLoopBytes?: number } {
  if (text === undefined || text === "") return {};
  if (!/^[0-9]{1,15}$/.test(text)) {
    throw new UsageError(`TOWN_STORAGE_LOOP_BYTES must be a whole number of bytes, not "${text}"`);
  }
  return { storageLoopBytes: Number(text) };
}

function consoleLoginRoot(dir: string | undefined): { consoleLoginRoot?: string } {
  if (dir === undefined || dir === "") return {};
  // chpasswd -R wants an absolute directory; anything else would be a mistake in the image.
  if (!dir.startsWith("/")) {
    throw new UsageError(`TOWN_CONSOLE_LOGIN_ROOT must be an absolute directory, not "${dir}"`);
  }
  return { consoleLoginRoot: dir };
}

function packageVersion(): string {
  const manifest = JSON.parse(
    readFileSync(new URL("../package.json", import.meta.url), "utf8"),
  ) as { version: string };
  return manifest.version;
}
