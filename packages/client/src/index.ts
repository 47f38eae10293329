/**
 * The typed client of the Town OS API (`/api/v1`), shared by the `town`
 * command and the dashboard. Failures arrive as `ApiError` carrying the
 * server's RFC 9457 problem; callers switch on `problem.code`. Request and
 * response types come from the API contract (`@townos/api`), whose schemas
 * the daemon validates and serializes with: client and server read one
 * definition.
 */

import type {
  Account,
  AddRepositoryBody,
  AppChangeEvent,
  AppHealth,
  AppInstallPreview,
  AppProgress,
  AppView,
  AuditEntry,
  AuditQuery,
  CatalogQuery,
  CreateAccountBody,
  InstallRequest,
  LastAnswers,
  LogEvent,
  LogPage,
  LogsQuery,
  LogStreamQuery,
  LoginBody,
  NetworkStatus,
  NetworkSettingsStatus,
  SetNetworkSettingsBody,
  OAuthFlow,
  PackageDetail,
  Page,
  PageQuery,
  Repository,
  SessionInfo,
  Setting,
  SetupBody,
  SignedIn,
  SnapshotView,
  RestoreResult,
  StartOAuthFlowBody,
  Status,
  StorageView,
  SystemUsage,
  OsInfo,
  SshKeys,
  ConsolePassword,
  UpdateAccountBody,
  UpgradeBody,
  UpgradeOffer,
  UpgradesQuery,
  UploadResult,
  VersionDetail,
  VolumeView,
  PackageSummary,
  CreateVolumeBody,
  ArchiveFormat,
  ExposeBody,
  AddVmImageBody,
  VmImageDownload,
  VmImageList,
  CreatePageBody,
  PageHook,
  PageInfo,
  PageList,
  PageLog,
  PageLogEvent,
  MonitoringAlerts,
  MonitoringQuery,
  MonitoringRangeQuery,
  MonitoringResult,
  MonitoringStatus,
  AddBackupTargetBody,
  AddBackupTargetResult,
  BackupOverview,
  BackupPolicyView,
  BackupRunView,
  BackupTargetView,
  BackupView,
  RestoreBackupBody,
  RestoreBackupResult,
  RestoreBoxBody,
  RestoreBoxResult,
  SetStateBody,
  StateExport,
  StateHook,
  StateKey,
  StateSecrets,
  StateStatus,
  RestorePointView,
  RollbackResult,
  RunBackupBody,
  SetBackupPolicyBody,
} from "@townos/api";
import { ApiError, failure, unreachable } from "./errors.js";
import { readEvents } from "./events.js";

export type * from "@townos/api";
export { ApiError } from "./errors.js";

type Query = Record<string, string | number | boolean | readonly string[] | undefined>;

/** An upload's body: a web stream, or any async iterable of bytes (a Node Readable is one). */
export type UploadBody = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

function isStream(body: object): boolean {
  return (
    (typeof ReadableStream !== "undefined" && body instanceof ReadableStream) ||
    Symbol.asyncIterator in body
  );
}

export interface ClientOptions {
  /** e.g. `http://127.0.0.1:5309`; empty for the page's own origin (the dashboard). */
  baseUrl: string;
  token?: string | undefined;
  fetch?: typeof fetch;
}

export class TownClient {
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  token: string | undefined;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.token = options.token;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** One API call. Problems become ApiError; an unreachable daemon, a clear `unreachable` problem. */
  async request<T>(
    method: string,
    path: string,
    options: { body?: unknown; query?: Query } = {},
  ): Promise<T> {
    const response = await this.send(method, path, {
      ...(options.query ? { query: options.query } : {}),
      ...(options.body !== undefined
        ? { body: JSON.stringify(options.body), contentType: "application/json" }
        : {}),
    });
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  /** The HTTP exchange under every call: the response when it is a success, else ApiError. */
  private async send(
    method: string,
    path: string,
    options: {
      query?: Query;
      body?: string | UploadBody | Blob;
      contentType?: string;
      accept?: string;
      /** `path` is from the server's root, not under `/api/v1` (the CA download). */
      outsideApi?: boolean;
    },
  ): Promise<Response> {
    // An empty base URL means "this page's origin" (the dashboard runs in a browser).
    const origin = (globalThis as { location?: { href: string } }).location?.href;
    const prefix = options.outsideApi === true ? "" : "/api/v1";
    const url = new URL(
      `${this.baseUrl}${prefix}${path}`,
      this.baseUrl === "" ? origin : undefined,
    );
    for (const [key, value] of Object.entries(options.query ?? {})) {
      for (const item of Array.isArray(value) ? value : [value]) {
        if (item !== undefined) url.searchParams.append(key, String(item));
      }
    }
    const headers: Record<string, string> = {
      accept: options.accept ?? "application/json, application/problem+json",
    };
    if (this.token) headers["authorization"] = `Bearer ${this.token}`;
    if (options.contentType !== undefined) headers["content-type"] = options.contentType;
    // A streamed body needs `duplex: "half"` (fetch's rule); DOM typings know neither it nor async iterables.
    const init: RequestInit & { duplex?: "half" } = {
      method,
      headers,
      ...(options.body !== undefined
        ? { body: options.body as NonNullable<RequestInit["body"]> }
        : {}),
      ...(options.body !== undefined && typeof options.body === "object" && isStream(options.body)
        ? { duplex: "half" as const }
        : {}),
    };
    let response: Response;
    try {
      response = await this.fetchImpl(url, init);
    } catch (error) {
      throw unreachable(url, error);
    }
    if (response.ok) return response;
    throw await failure(response);
  }

  status(): Promise<Status> {
    return this.request("GET", "/status");
  }

  /** First run; `setupCode` is the one-time code the daemon logged and wrote to its data dir. */
  setup(
    input: Omit<SetupBody, "setupCode"> & { setupCode?: string | undefined },
  ): Promise<SignedIn> {
    return this.request("POST", "/setup", { body: input });
  }

  login(input: LoginBody): Promise<SignedIn> {
    return this.request("POST", "/auth/login", { body: input });
  }

  logout(): Promise<void> {
    return this.request("POST", "/auth/logout");
  }

  me(): Promise<Account> {
    return this.request("GET", "/auth/me");
  }

  accounts(query: PageQuery = {}): Promise<Page<Account>> {
    return this.request("GET", "/accounts", { query: { ...query } });
  }

  createAccount(input: CreateAccountBody): Promise<Account> {
    return this.request("POST", "/accounts", { body: input });
  }

  updateAccount(username: string, change: UpdateAccountBody): Promise<Account> {
    return this.request("PATCH", `/accounts/${encodeURIComponent(username)}`, { body: change });
  }

  sessions(query: PageQuery = {}): Promise<Page<SessionInfo>> {
    return this.request("GET", "/sessions", { query: { ...query } });
  }

  revokeSession(id: string): Promise<void> {
    return this.request("DELETE", `/sessions/${encodeURIComponent(id)}`);
  }

  audit(query: AuditQuery = {}): Promise<Page<AuditEntry>> {
    return this.request("GET", "/audit", { query: { ...query } });
  }

  settings(query: PageQuery = {}): Promise<Page<Setting>> {
    return this.request("GET", "/settings", { query: { ...query } });
  }

  setSetting(key: string, value: string | number | boolean): Promise<Setting> {
    return this.request("PUT", `/settings/${encodeURIComponent(key)}`, { body: { value } });
  }

  repositories(query: PageQuery = {}): Promise<Page<Repository>> {
    return this.request("GET", "/repositories", { query: { ...query } });
  }

  addRepository(input: AddRepositoryBody): Promise<Repository> {
    return this.request("POST", "/repositories", { body: input });
  }

  removeRepository(name: string): Promise<void> {
    return this.request("DELETE", `/repositories/${encodeURIComponent(name)}`);
  }

  moveRepository(name: string, position: number): Promise<Repository[]> {
    return this.request("POST", `/repositories/${encodeURIComponent(name)}/move`, {
      body: { position },
    });
  }

  refreshRepository(name: string): Promise<Repository> {
    return this.request("POST", `/repositories/${encodeURIComponent(name)}/refresh`);
  }

  refreshRepositories(): Promise<Repository[]> {
    return this.request("POST", "/repositories/refresh");
  }

  catalog(query: CatalogQuery = {}): Promise<Page<PackageSummary>> {
    return this.request("GET", "/catalog", { query: { ...query } });
  }

  package(repo: string, name: string): Promise<PackageDetail> {
    return this.request("GET", `/catalog/${encodeURIComponent(repo)}/${encodeURIComponent(name)}`);
  }

  packageVersion(repo: string, name: string, version: string): Promise<VersionDetail> {
    return this.request(
      "GET",
      `/catalog/${encodeURIComponent(repo)}/${encodeURIComponent(name)}/${encodeURIComponent(version)}`,
    );
  }

  upgrades(query: UpgradesQuery = {}): Promise<Page<UpgradeOffer>> {
    return this.request("GET", "/upgrades", { query: { ...query } });
  }

  dismissUpgrade(repo: string, name: string): Promise<void> {
    return this.request(
      "POST",
      `/upgrades/${encodeURIComponent(repo)}/${encodeURIComponent(name)}/dismiss`,
    );
  }

  apps(query: PageQuery = {}): Promise<Page<AppView>> {
    return this.request("GET", "/apps", { query: { ...query } });
  }

  app(repo: string, name: string): Promise<AppView> {
    return this.request("GET", `/apps/${encodeURIComponent(repo)}/${encodeURIComponent(name)}`);
  }

  /**
   * Installs a package. Resolves once its first reconcile finished, or after
   * about a minute with the state so far (the install goes on). Invalid
   * answers fail with `invalid_answers` and every issue.
   */
  installApp(request: InstallRequest): Promise<AppView> {
    return this.request("POST", "/apps", { body: request });
  }

  /** What installing with these answers would do; nothing is changed. */
  previewInstall(request: InstallRequest): Promise<AppInstallPreview> {
    return this.request("POST", "/apps/preview", { body: request });
  }

  /**
   * Starts linking an account for an oauth question: the box asks the
   * provider and answers with the page to open (`approveUrl`); watch the
   * flow with `oauthFlow` until it is done, then install naming it.
   */
  startOAuthFlow(input: StartOAuthFlowBody): Promise<OAuthFlow & { approveUrl: string }> {
    return this.request("POST", "/oauth/flows", { body: input });
  }

  /** An account link's state: pending, done, failed or expired. */
  oauthFlow(id: string): Promise<OAuthFlow> {
    return this.request("GET", `/oauth/flows/${encodeURIComponent(id)}`);
  }

  /** The answers last given for a package, to offer again; `not_found` when never installed. */
  lastAnswers(repo: string, name: string): Promise<LastAnswers> {
    return this.request("GET", `${appPath(repo, name)}/answers`);
  }

  /**
   * Installs, upgrades, starts, stops, restarts, enables or disables an app,
   * calling `onProgress` with each step as the daemon reports it; resolves
   * with the app once its reconcile finished (`settled`) or after about a
   * minute (the change goes on).
   */
  async changeApp(
    change:
      | { action: "install"; request: InstallRequest }
      | ({ action: "upgrade"; repo: string; name: string } & UpgradeBody)
      | { action: "start" | "stop" | "restart" | "enable" | "disable"; repo: string; name: string }
      | ({ action: "expose"; repo: string; name: string } & ExposeBody),
    onProgress: (progress: AppProgress) => void,
    signal?: AbortSignal,
  ): Promise<{ app: AppView; settled: boolean }> {
    const { path, body } =
      change.action === "install"
        ? { path: "/apps", body: change.request }
        : change.action === "upgrade"
          ? {
              path: `${appPath(change.repo, change.name)}/upgrade`,
              body: {
                ...(change.version === undefined ? {} : { version: change.version }),
                ...(change.answers === undefined ? {} : { answers: change.answers }),
                ...(change.oauthFlows === undefined ? {} : { oauthFlows: change.oauthFlows }),
              },
            }
          : change.action === "expose"
            ? {
                path: `${appPath(change.repo, change.name)}/expose`,
                body: { port: change.port, exposure: change.exposure },
              }
            : { path: `${appPath(change.repo, change.name)}/${change.action}`, body: undefined };
    const response = await this.send("POST", path, {
      accept: "text/event-stream",
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), contentType: "application/json" }),
    });
    for await (const event of readEvents<AppChangeEvent>(response, signal)) {
      if (event.type === "progress") onProgress(event.progress);
      else return { app: event.app, settled: event.settled };
    }
    throw new ApiError({
      type: "about:blank",
      title: "Unavailable",
      status: 503,
      code: "unavailable",
      detail: "the daemon ended the progress stream before the result",
    });
  }

  /** Publishes or hides an app's names in the box's DNS. */
  publishAppNames(repo: string, name: string, published: boolean): Promise<AppView> {
    return this.request("POST", `${appPath(repo, name)}/dns`, { body: { published } });
  }

  /** Uninstalls an app; its volumes are moved aside, or deleted with `purge`. */
  uninstallApp(repo: string, name: string, options: { purge?: boolean } = {}): Promise<void> {
    return this.request("DELETE", `/apps/${encodeURIComponent(repo)}/${encodeURIComponent(name)}`, {
      query: { purge: options.purge === true ? true : undefined },
    });
  }
  /** A page of an app's logs (all its containers, or one `instance`), newest last. */
  appLogs(repo: string, name: string, query: LogsQuery = {}): Promise<LogPage> {
    return this.request("GET", `${appPath(repo, name)}/logs`, { query: { ...query } });
  }

  /**
   * Follows an app's logs live (server-sent events): the last `tail` lines,
   * then new ones, until `signal` aborts (the iteration then ends quietly)
   * or the daemon ends the stream. A failure on the way arrives as ApiError.
   */
  async *followAppLogs(
    repo: string,
    name: string,
    query: LogStreamQuery,
    signal: AbortSignal,
  ): AsyncGenerator<LogEvent> {
    const response = await this.send("GET", `${appPath(repo, name)}/logs/stream`, {
      query: { ...query },
    });
    yield* readEvents<LogEvent>(response, signal);
  }

  /** State, exit code, restarts and healthcheck of each of an app's containers. */
  appHealth(repo: string, name: string): Promise<AppHealth> {
    return this.request("GET", `${appPath(repo, name)}/health`);
  }

  /** How busy the box is: CPU, load, memory and uptime. */
  systemUsage(): Promise<SystemUsage> {
    return this.request("GET", "/system/usage");
  }

  /** The running Town OS image, and whether the data is on a disk or in RAM. */
  osInfo(): Promise<OsInfo> {
    return this.request("GET", "/system/os");
  }

  /** The SSH keys that may log in to the Town OS image as root. */
  sshKeys(): Promise<SshKeys> {
    return this.request("GET", "/system/ssh-keys");
  }

  /** Replaces the SSH keys (one authorized_keys line each). */
  setSshKeys(keys: readonly string[]): Promise<SshKeys> {
    return this.request("PUT", "/system/ssh-keys", { body: { keys } });
  }

  /** The box's network settings (DHCP or a fixed address), its wired interfaces and whether they apply. */
  networkSettings(): Promise<NetworkSettingsStatus> {
    return this.request("GET", "/system/network");
  }

  /** Saves new network settings; the box applies them just after answering. */
  setNetworkSettings(settings: SetNetworkSettingsBody): Promise<NetworkSettingsStatus> {
    return this.request("PUT", "/system/network", { body: settings });
  }

  /** Whether root has a password for the box's own screen and keyboard. */
  consolePassword(): Promise<ConsolePassword> {
    return this.request("GET", "/system/console-password");
  }

  /** Sets root's console password (kept as a hash; SSH stays key-only). */
  setConsolePassword(password: string): Promise<ConsolePassword> {
    return this.request("PUT", "/system/console-password", { body: { password } });
  }

  /** Removes root's console password: root is locked again. */
  clearConsolePassword(): Promise<ConsolePassword> {
    return this.request("DELETE", "/system/console-password");
  }

  /** The VM image store: its images, and the downloads under way or failed. */
  vmImages(): Promise<VmImageList> {
    return this.request("GET", "/vm-images");
  }

  /** Starts adding an image from a URL; it downloads in the background, with progress in `vmImages()`. */
  addVmImage(input: AddVmImageBody): Promise<VmImageDownload> {
    return this.request("POST", "/vm-images", { body: input });
  }

  /** Deletes an image (`conflict` while an installed app runs a VM on it), or dismisses its failed download. */
  removeVmImage(name: string): Promise<void> {
    return this.request("DELETE", `/vm-images/${encodeURIComponent(name)}`);
  }

  /** Prometheus, Node Exporter and Grafana, and every scrape target with its health. */
  monitoringStatus(): Promise<MonitoringStatus> {
    return this.request("GET", "/monitoring/status");
  }

  /** A PromQL instant query, answered by the box's Prometheus (series of apps the caller may see). */
  monitoringQuery(query: MonitoringQuery): Promise<MonitoringResult> {
    return this.request("GET", "/monitoring/query", { query: { ...query } });
  }

  /** A PromQL range query (`start`, `end` in seconds since the epoch, `step` in seconds). */
  monitoringQueryRange(query: MonitoringRangeQuery): Promise<MonitoringResult> {
    return this.request("GET", "/monitoring/query_range", { query: { ...query } });
  }

  /** The built-in alerts: full disks and volumes, restarting apps, targets down, memory pressure. */
  monitoringAlerts(): Promise<MonitoringAlerts> {
    return this.request("GET", "/monitoring/alerts");
  }

  /** Every page (static website) with its state, source, URLs and versions. */
  pages(): Promise<PageList> {
    return this.request("GET", "/pages");
  }

  page(name: string): Promise<PageInfo> {
    return this.request("GET", pagePath(name));
  }

  /** Creates a page; a git or image page starts deploying at once, an archive page waits for `uploadPage`. */
  createPage(input: CreatePageBody): Promise<PageInfo> {
    return this.request("POST", "/pages", { body: input });
  }

  /** Uploads a new version of an archive page (tar, tar.gz, tar.xz, zip), streamed; resolves once it is online. */
  async uploadPage(name: string, body: UploadBody | Blob): Promise<PageInfo> {
    const response = await this.send("PUT", `${pagePath(name)}/content`, {
      body,
      contentType: "application/octet-stream",
    });
    return (await response.json()) as PageInfo;
  }

  /** The address an archive page's new version is PUT to (the dashboard's upload with progress). */
  pageContentUrl(name: string): string {
    return `${this.baseUrl}/api/v1${pagePath(name)}/content`;
  }

  /** Deploys the page again from its source (a git page fetches its branch, even on an unchanged commit). */
  rebuildPage(name: string): Promise<PageInfo> {
    return this.request("POST", `${pagePath(name)}/rebuild`);
  }

  /** Brings the previous version back online (the current one becomes the previous). */
  rollbackPage(name: string): Promise<PageInfo> {
    return this.request("POST", `${pagePath(name)}/rollback`);
  }

  deletePage(name: string): Promise<void> {
    return this.request("DELETE", pagePath(name));
  }

  addPageDomain(name: string, domain: string): Promise<PageInfo> {
    return this.request("PUT", `${pagePath(name)}/domains/${encodeURIComponent(domain)}`);
  }

  removePageDomain(name: string, domain: string): Promise<PageInfo> {
    return this.request("DELETE", `${pagePath(name)}/domains/${encodeURIComponent(domain)}`);
  }

  /** The webhook URL a git host calls on a push; it holds the page's secret token. */
  pageHook(name: string): Promise<PageHook> {
    return this.request("GET", `${pagePath(name)}/hook`);
  }

  /** The last deploy's log: fetching, building and publishing. */
  pageLog(name: string): Promise<PageLog> {
    return this.request("GET", `${pagePath(name)}/logs`);
  }

  /** Follows the build log live until the deploy ends (an `end` event) or `signal` aborts. */
  async *followPageLog(name: string, signal: AbortSignal): AsyncGenerator<PageLogEvent> {
    const response = await this.send("GET", `${pagePath(name)}/logs/stream`, {});
    yield* readEvents<PageLogEvent>(response, signal);
  }

  /** How volumes are stored and what that enforces (quotas, snapshots). */
  storage(): Promise<StorageView> {
    return this.request("GET", "/storage");
  }

  volumes(query: PageQuery = {}): Promise<Page<VolumeView>> {
    return this.request("GET", "/volumes", { query: { ...query } });
  }

  volume(name: string): Promise<VolumeView> {
    return this.request("GET", `/volumes/${encodeURIComponent(name)}`);
  }

  /** Makes the user volume `user.<name>`; `quota` in bytes or like "10gb" (default: the setting). */
  createVolume(input: CreateVolumeBody): Promise<VolumeView> {
    return this.request("POST", "/volumes", { body: input });
  }

  removeVolume(name: string): Promise<void> {
    return this.request("DELETE", `/volumes/${encodeURIComponent(name)}`);
  }

  /** Sets a quota (bytes or like "10gb"), or lifts it with null. */
  setVolumeQuota(name: string, quota: number | string | null): Promise<VolumeView> {
    return this.request("PUT", `/volumes/${encodeURIComponent(name)}/quota`, { body: { quota } });
  }

  volumeSnapshots(name: string): Promise<SnapshotView[]> {
    return this.request("GET", `/volumes/${encodeURIComponent(name)}/snapshots`);
  }

  /** Takes a snapshot; its name defaults to the time. */
  snapshotVolume(name: string, snapshot?: string): Promise<SnapshotView> {
    return this.request("POST", `/volumes/${encodeURIComponent(name)}/snapshots`, {
      body: snapshot === undefined ? {} : { name: snapshot },
    });
  }

  removeVolumeSnapshot(name: string, snapshot: string): Promise<void> {
    return this.request(
      "DELETE",
      `/volumes/${encodeURIComponent(name)}/snapshots/${encodeURIComponent(snapshot)}`,
    );
  }

  /**
   * Gives a volume the content of one of its snapshots (the snapshots stay);
   * a package volume's app is stopped meanwhile.
   */
  restoreVolumeSnapshot(name: string, snapshot: string): Promise<RestoreResult> {
    return this.request(
      "POST",
      `/volumes/${encodeURIComponent(name)}/snapshots/${encodeURIComponent(snapshot)}/restore`,
    );
  }

  /**
   * Uploads an archive (tar, tar.gz, tar.xz, tar.bz2, zip) into a volume,
   * streamed. Entries that would escape the volume are refused and listed
   * in the result.
   */
  async uploadVolumeArchive(name: string, body: UploadBody | Blob): Promise<UploadResult> {
    const response = await this.send("PUT", `/volumes/${encodeURIComponent(name)}/archive`, {
      body,
      contentType: "application/octet-stream",
    });
    return (await response.json()) as UploadResult;
  }

  /**
   * The address of a volume's archive: downloads (a browser link streams it
   * to disk with the session cookie, however large) and uploads (PUT).
   */
  volumeArchiveUrl(name: string, format: ArchiveFormat = "tar.gz"): string {
    return `${this.baseUrl}/api/v1/volumes/${encodeURIComponent(name)}/archive?format=${format}`;
  }

  /** A volume, or chosen paths in it, as a tar.gz or tar.xz byte stream. */
  async downloadVolumeArchive(
    name: string,
    options: { format?: ArchiveFormat; paths?: readonly string[] } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const response = await this.send("GET", `/volumes/${encodeURIComponent(name)}/archive`, {
      query: { format: options.format, path: options.paths },
    });
    if (!response.body) throw new Error("the download has no body");
    return response.body;
  }

  /** The app's restore points, newest first (taken before upgrades, on schedules, by hand). */
  restorePoints(repo: string, name: string): Promise<RestorePointView[]> {
    return this.request("GET", `${appPath(repo, name)}/restore-points`);
  }

  /** Takes a restore point of the app now (its declared quiesce applies). */
  takeRestorePoint(repo: string, name: string): Promise<RestorePointView> {
    return this.request("POST", `${appPath(repo, name)}/restore-points`, { body: {} });
  }

  removeRestorePoint(repo: string, name: string, id: string): Promise<void> {
    return this.request(
      "DELETE",
      `${appPath(repo, name)}/restore-points/${encodeURIComponent(id)}`,
    );
  }

  /**
   * Returns the app to the version, answers and data of a restore point
   * (default: the newest taken before an upgrade); what it replaces is kept
   * as a restore point first.
   */
  rollback(repo: string, name: string, to?: string): Promise<RollbackResult> {
    return this.request("POST", `${appPath(repo, name)}/rollback`, {
      body: to === undefined ? {} : { to },
    });
  }

  /** Targets, policies, recent runs and failures: the backups screen in one answer. */
  backups(): Promise<BackupOverview> {
    return this.request("GET", "/backups");
  }

  /** Adds a backup target after checking it can be written (a restic repository is initialised). */
  addBackupTarget(input: AddBackupTargetBody): Promise<AddBackupTargetResult> {
    return this.request("POST", "/backups/targets", { body: input });
  }

  backupTargets(): Promise<BackupTargetView[]> {
    return this.request("GET", "/backups/targets");
  }

  /** Forgets a target; the backups on it stay where they are. */
  removeBackupTarget(name: string): Promise<void> {
    return this.request("DELETE", `/backups/targets/${encodeURIComponent(name)}`);
  }

  /** The backups a target holds, oldest first. */
  targetBackups(target: string): Promise<BackupView[]> {
    return this.request("GET", `/backups/targets/${encodeURIComponent(target)}/backups`);
  }

  /** Sets the subject's (an app `repo/name` or a volume) schedule, retention and targets. */
  setBackupPolicy(input: SetBackupPolicyBody): Promise<BackupPolicyView> {
    return this.request("PUT", "/backups/policies", { body: input });
  }

  removeBackupPolicy(subject: string): Promise<void> {
    return this.request("DELETE", "/backups/policies", { query: { subject } });
  }

  /** Starts backups now (answered once started); follow them in `backups().runs`. */
  runBackup(input: RunBackupBody = {}): Promise<BackupRunView[]> {
    return this.request("POST", "/backups/run", { body: input });
  }

  /** Brings an app (version, answers and data) back from a target, in place or beside it (`asNew`). */
  restoreBackup(input: RestoreBackupBody): Promise<RestoreBackupResult> {
    return this.request("POST", "/backups/restore", { body: input });
  }

  /** Restores the whole box from a target: repositories, settings, people's volumes and every app. */
  restoreBox(input: RestoreBoxBody): Promise<RestoreBoxResult> {
    return this.request("POST", "/backups/restore-box", { body: input });
  }

  /** The state repository (GitOps): its setting, the commit the box is on, what it manages, its history. */
  stateStatus(): Promise<StateStatus> {
    return this.request("GET", "/state");
  }

  /** Points the box at a state repository; it syncs at once and then every interval. */
  setState(input: SetStateBody): Promise<StateStatus> {
    return this.request("PUT", "/state", { body: input });
  }

  /** Stops following the state repository; what it made stays, managed by hand from now on. */
  unsetState(): Promise<void> {
    return this.request("DELETE", "/state");
  }

  /** Syncs now and answers once the sync ended. */
  syncState(): Promise<StateStatus> {
    return this.request("POST", "/state/sync");
  }

  /** The webhook URL (with its secret token) a git host calls on a push. */
  stateHook(): Promise<StateHook> {
    return this.request("GET", "/state/hook");
  }

  /** The box's age public key: answers encrypted to it (`{age: …}`) can be committed. */
  stateKey(): Promise<StateKey> {
    return this.request("GET", "/state/key");
  }

  /** The box as a state repository's files. */
  exportState(): Promise<StateExport> {
    return this.request("GET", "/state/export");
  }

  /** The names of the secrets `secretRef` answers can use (values are never shown). */
  stateSecrets(): Promise<StateSecrets> {
    return this.request("GET", "/state/secrets");
  }

  setStateSecret(name: string, value: string): Promise<void> {
    return this.request("PUT", `/state/secrets/${encodeURIComponent(name)}`, { body: { value } });
  }

  removeStateSecret(name: string): Promise<void> {
    return this.request("DELETE", `/state/secrets/${encodeURIComponent(name)}`);
  }

  /** State of the HTTPS ingress, DNS, mDNS and UPnP (`state: "off"` without networking). */
  netStatus(): Promise<NetworkStatus> {
    return this.request("GET", "/net/status");
  }

  /** The root certificate of the box's local CA (PEM); no login needed. */
  async caCertificate(): Promise<string> {
    const response = await this.send("GET", "/tls/ca.crt", {
      accept: "application/x-pem-file, application/problem+json",
      outsideApi: true,
    });
    return response.text();
  }
}

function appPath(repo: string, name: string): string {
  return `/apps/${encodeURIComponent(repo)}/${encodeURIComponent(name)}`;
}

function pagePath(name: string): string {
  return `/pages/${encodeURIComponent(name)}`;
}
