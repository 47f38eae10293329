/**
 * Runs the optional Grafana (setting `monitoring.grafana`) as a container:
 * its provisioning files and admin password written under
 * `<dataDir>/monitoring/grafana`, its image pulled when missing, the
 * container ensured and started; removed again when the setting goes off.
 * The dashboard reaches it at `https://grafana.<tld>/` through the ingress.
 */
import { randomBytes } from "node:crypto";
import { chown, mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { isTownError } from "@townos/format";
import type { NetworkApp } from "../net/plan.js";
import type { HostRuntime } from "../runtime/workload.js";
import { errnoCode } from "../storage/safe-fs.js";
import { Mutex } from "../system/mutex.js";
import { GRAFANA_IMAGE, GRAFANA_UID, grafanaProvisioning, grafanaWorkload } from "./grafana.js";
import type { GrafanaState } from "./service.js";

/** Grafana's loopback port: the ingress proxies `grafana.<tld>` to it. */
export const GRAFANA_PORT = 3300;

/** Grafana as the network plan serves it while it runs: `grafana.<tld>`, LAN only like the dashboard. */
export function grafanaNetworkApp(tld: string): NetworkApp {
  const host = `grafana.${tld}`;
  return {
    repo: "town",
    name: "grafana",
    names: [host],
    ingress: { host, port: GRAFANA_PORT },
    domains: [],
    ports: [],
  };
}

export interface GrafanaRunnerOptions {
  runtime: HostRuntime;
  /** `<dataDir>/monitoring/grafana`. */
  dir: string;
  box: string;
  prometheusUrl: string;
  scrapeIntervalSeconds: () => number;
  /** `https://grafana.<tld>/` as browsers reach it. */
  url: () => string;
  /** Default `GRAFANA_IMAGE`. */
  image?: string;
}

export class GrafanaRunner {
  private current: GrafanaState = { enabled: false, state: "off", url: null, error: null };
  private readonly lock = new Mutex();

  constructor(private readonly options: GrafanaRunnerOptions) {}

  state(): GrafanaState {
    return this.current;
  }

  /** Runs Grafana when `enabled`, removes it when not. Never throws: the state says what failed. */
  reconcile(enabled: boolean): Promise<void> {
    return this.lock.run(async () => {
      try {
        if (enabled) await this.run();
        else await this.remove();
      } catch (error) {
        this.current = {
          enabled,
          state: "failed",
          url: null,
          error: isTownError(error) || error instanceof Error ? error.message : String(error),
        };
      }
    });
  }

  private async run(): Promise<void> {
    const { runtime, dir } = this.options;
    if (this.current.state !== "running")
      this.current = { enabled: true, state: "starting", url: null, error: null };
    const provisioningDir = join(dir, "provisioning");
    const files = grafanaProvisioning({
      prometheusUrl: this.options.prometheusUrl,
      scrapeIntervalSeconds: this.options.scrapeIntervalSeconds(),
    });
    for (const [path, content] of files) {
      const file = join(provisioningDir, path);
      await mkdir(dirname(file), { recursive: true, mode: 0o755 });
      await writeFile(file, content, { mode: 0o644 });
    }
    const dataDir = join(dir, "data");
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    // Grafana's image runs as 472:0; its data directory is its own.
    await chown(dataDir, GRAFANA_UID, 0);
    const passwordFile = await this.adminPassword();
    const image = this.options.image ?? GRAFANA_IMAGE;
    if (!(await runtime.imageExists(image))) await runtime.pullImage(image);
    const workload = grafanaWorkload({
      box: this.options.box,
      image,
      provisioningDir,
      dataDir,
      port: GRAFANA_PORT,
      rootUrl: this.options.url(),
      adminPasswordFile: passwordFile,
    });
    await runtime.ensure(workload);
    await runtime.start(workload.name);
    this.current = { enabled: true, state: "running", url: this.options.url(), error: null };
  }

  private async remove(): Promise<void> {
    await this.options.runtime.remove(`town-grafana-${this.options.box}`);
    this.current = { enabled: false, state: "off", url: null, error: null };
  }

  /** The admin's password, made once; readable by root and group 0 (Grafana's group). */
  private async adminPassword(): Promise<string> {
    const file = join(this.options.dir, "admin-password");
    try {
      await writeFile(file, randomBytes(18).toString("base64url"), { mode: 0o640, flag: "wx" });
    } catch (error) {
      if (errnoCode(error) !== "EEXIST") throw error;
    }
    return file;
  }
}
