import type { SystemInfo } from "@townos/format";
import type { Apps } from "./apps/service.js";
import type { AppMonitor } from "./apps/monitor.js";
import type { Accounts } from "./auth/accounts.js";
import type { Sessions } from "./auth/sessions.js";
import type { SetupCode } from "./auth/setup-code.js";
import type { LoginThrottle } from "./auth/throttle.js";
import type { Catalog } from "./catalog/catalog.js";
import type { Network } from "./net/network.js";
import type { Manager } from "./reconcile/manager.js";
import type { OAuthFlows } from "./apps/oauth.js";
import type { Pages } from "./pages/service.js";
import type { Monitoring } from "./monitoring/service.js";
import type { AuditLog } from "./store/audit.js";
import type { Installs } from "./store/installs.js";
import type { Repositories } from "./store/repositories.js";
import type { StateService } from "./state/service.js";
import type { Settings } from "./store/settings.js";
import type { SshKeys } from "./system/ssh-keys.js";
import type { OsNetwork } from "./system/os-network.js";
import type { ConsolePassword } from "./system/console-password.js";
import type { Volumes } from "./volumes/volumes.js";
import type { RollbackResult } from "@townos/api";
import type { RestorePointService } from "./backup/restore-points.js";
import type { Backups } from "./backup/service.js";
import type { VmImageStore } from "./runtime/qemu/images.js";

/** Everything the API works with once the daemon has booted. */
export interface Services {
  accounts: Accounts;
  sessions: Sessions;
  throttle: LoginThrottle;
  /** The first-run setup's one-time code, while no account exists. */
  setupCode: SetupCode;
  audit: AuditLog;
  settings: Settings;
  repositories: Repositories;
  installs: Installs;
  catalog: Catalog;
  /** Installed apps; answers `unavailable` while no container runtime is attached. */
  apps: Apps;
  /** Account links for oauth questions; their tokens stay here until an install uses them. */
  oauth: OAuthFlows;
  /** Logs and health of installed apps; answers `unavailable` while no container runtime is attached. */
  monitor: AppMonitor;
  /** Base images of virtual machines (`<dataDir>/vm-images`). */
  vmImages: VmImageStore;
  /** Volumes, their archives and snapshots; answers `unavailable` until storage is set up. */
  volumes: Volumes;
  /** Restore points of apps and volumes (snapshots taken together, with the app's version then). */
  restorePoints: RestorePointService;
  /** An app back to a restore point (default: the newest before an upgrade). */
  rollback: (repo: string, name: string, to?: string) => Promise<RollbackResult>;
  /** Backup targets, policies, runs and restores; runs and restores answer `unavailable` until storage is set up. */
  backups: Backups;
  /** GitOps: the state repository the box follows, what it manages, its secrets. */
  state: StateService;
  /** Root's SSH keys for the Town OS image, on the data pool. */
  sshKeys: SshKeys;
  /** The box's own address (DHCP or fixed) for the Town OS image, on the data pool. */
  osNetwork: OsNetwork;
  /** Root's console password (a hash on the data pool), applied to /etc/shadow on the image. */
  consolePassword: ConsolePassword;
  /** Static websites served by the ingress; answers `unavailable` without networking. */
  pages: Pages;
  /** Prometheus, Node Exporter and Grafana: status, queries, alerts; answers `unavailable` when off. */
  monitoring: Monitoring;
  /** HTTPS ingress, DNS, mDNS and UPnP; undefined when this daemon runs without networking. */
  network: Network | undefined;
  /** Runs the reconcilers of every kind (`apps`, `network`). */
  manager: Manager;
  /** The box as packages see it (`@LOCAL_INTERNAL_HOST@`, `.System`), read when needed. */
  system: () => SystemInfo;
}
