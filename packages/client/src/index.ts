/**
 * The typed client of the Town OS API (`/api/v1`), shared by the `town`
 * command and the dashboard. Failures arrive as `ApiError` carrying the
 * server's RFC 9457 problem; callers switch on `problem.code`. Response
 * types come from the daemon itself (type-only imports, erased at build), so
 * client and server cannot drift apart.
 */

import type { Issue } from "@townos/format";
import type {
  AppView,
  AuditEntry,
  InstallPreview,
  InstallRequest,
  Page,
  PageQuery,
  PackageDetail,
  PackageSummary,
  Problem,
  SettingView as Setting,
  UpgradeOffer as Offer,
  VersionDetail,
  VersionSummary,
} from "@townos/daemon";

export type {
  AppView,
  AuditEntry,
  InstallPreview,
  InstallRequest,
  Issue,
  Page,
  PageQuery,
  PackageDetail,
  PackageSummary,
  Problem,
  Setting,
  VersionDetail,
  VersionSummary,
};

/** An upgrade offer as listed: with whether somebody dismissed it. */
export type UpgradeOffer = Offer & { dismissed: boolean };

export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(readonly problem: Problem) {
    super(`${problem.title}: ${problem.detail}`);
  }
}

export interface Status {
  state: "booting" | "ready" | "failed";
  step: string;
  error: string | null;
  version: string;
  setupNeeded: boolean | null;
}

export type Role = "admin" | "user";

export interface Account {
  username: string;
  email: string | null;
  role: Role;
  disabled: boolean;
  createdAt: number;
}

export interface SignedIn {
  token: string;
  account: Account;
}

export interface SessionInfo {
  id: string;
  createdAt: number;
  lastSeenAt: number;
  source: string;
  userAgent: string;
  current: boolean;
}

export interface Repository {
  name: string;
  url: string;
  position: number;
  username: string | null;
  hasPassword: boolean;
  status: {
    commit: string | null;
    refreshedAt: number | null;
    attemptedAt: number | null;
    error: string | null;
    changedPackages: string[];
    packages: number;
    invalidFiles: number;
    skipped: { path: string; reason: string }[];
  };
}

type Query = Record<string, string | number | boolean | undefined>;

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
    // An empty base URL means "this page's origin" (the dashboard runs in a browser).
    const origin = (globalThis as { location?: { href: string } }).location?.href;
    const url = new URL(`${this.baseUrl}/api/v1${path}`, this.baseUrl === "" ? origin : undefined);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = {
      accept: "application/json, application/problem+json",
    };
    if (this.token) headers["authorization"] = `Bearer ${this.token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      });
    } catch (error) {
      throw new ApiError({
        type: "urn:town-os:problem:unreachable",
        title: "Cannot reach Town OS",
        status: 0,
        detail: `${url.origin}: ${error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)}`,
        code: "unreachable",
      });
    }
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    const body: unknown = text === "" ? undefined : JSON.parse(text);
    if (!response.ok) {
      const problem = body as Partial<Problem> | undefined;
      throw new ApiError({
        type: problem?.type ?? "about:blank",
        title: problem?.title ?? response.statusText,
        status: response.status,
        detail: problem?.detail ?? text,
        code: problem?.code ?? "unknown",
        ...(problem?.issues ? { issues: problem.issues } : {}),
      });
    }
    return body as T;
  }

  status(): Promise<Status> {
    return this.request("GET", "/status");
  }

  setup(input: { username: string; password: string; email?: string }): Promise<SignedIn> {
    return this.request("POST", "/setup", { body: input });
  }

  login(input: { username: string; password: string }): Promise<SignedIn> {
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

  createAccount(input: {
    username: string;
    password: string;
    email?: string;
    role?: Role;
  }): Promise<Account> {
    return this.request("POST", "/accounts", { body: input });
  }

  updateAccount(
    username: string,
    change: { disabled?: boolean; role?: Role; password?: string },
  ): Promise<Account> {
    return this.request("PATCH", `/accounts/${encodeURIComponent(username)}`, { body: change });
  }

  sessions(query: PageQuery = {}): Promise<Page<SessionInfo>> {
    return this.request("GET", "/sessions", { query: { ...query } });
  }

  revokeSession(id: string): Promise<void> {
    return this.request("DELETE", `/sessions/${encodeURIComponent(id)}`);
  }

  audit(
    query: PageQuery & { action?: string; username?: string; outcome?: "success" | "failure" } = {},
  ): Promise<Page<AuditEntry>> {
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

  addRepository(input: {
    name: string;
    url: string;
    username?: string;
    password?: string;
  }): Promise<Repository> {
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

  catalog(
    query: PageQuery & { repo?: string; featured?: boolean; installed?: boolean } = {},
  ): Promise<Page<PackageSummary>> {
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

  upgrades(query: PageQuery & { all?: boolean } = {}): Promise<Page<UpgradeOffer>> {
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

  /** Uninstalls an app; its volumes are moved aside, or deleted with `purge`. */
  uninstallApp(repo: string, name: string, options: { purge?: boolean } = {}): Promise<void> {
    return this.request("DELETE", `/apps/${encodeURIComponent(repo)}/${encodeURIComponent(name)}`, {
      query: { purge: options.purge === true ? true : undefined },
    });
  }
}
