/**
 * Pages: static websites the ingress serves from a version directory.
 *
 * A deploy makes a new version beside the live one (`content.ts`); the swap
 * is the database naming it current and the ingress pointing at it, one
 * config load in Caddy, so visitors see the old site or the new one, never
 * half of either. The version it replaced stays on disk for rollback; older
 * ones are deleted once the ingress no longer serves them. A failed deploy
 * changes nothing that is served: the page says why, and stays online.
 *
 * One deploy per page at a time (others wait their turn); git pages are
 * refreshed on a schedule and by their webhook, and an unchanged commit does
 * nothing.
 */
import { tokensMatch } from "../auth/tokens.js";
import type { Readable } from "node:stream";
import type {
  CreatePageBody,
  PageInfo,
  PageLog,
  PageLogEvent,
  PageSourceView,
  PageVersion,
} from "@townos/api";
import { isGitUrl, isTownError, TownError } from "@townos/format";
import { LABEL_BOX } from "../apps/labels.js";
import { parseRemoteUrl } from "../git/remote.js";
import { KeyedLock } from "../system/mutex.js";
import { versionRoot } from "./content.js";
import type { DeployLogBook } from "./deploy-log.js";
import { checkPageDomain, checkPageName, pageHost, pageUrls } from "./names.js";
import type { PageRecord, PageStore } from "./store.js";
import type {
  DeployInput,
  DeployOptions,
  DeployStep,
  NetworkPage,
  PageSource,
  PreparedVersion,
} from "./types.js";

/** What the service needs of the content store (`PageContent`). */
export interface SiteContent {
  open(): Promise<void>;
  deploy(page: string, input: DeployInput, options: DeployOptions): Promise<PreparedVersion>;
  versions(page: string): Promise<string[]>;
  prune(page: string, keep: readonly string[]): Promise<void>;
  remove(page: string): Promise<void>;
}

export interface PagesOptions {
  store: PageStore;
  logs: DeployLogBook;
  tld: () => string;
  /** Names pages may not take: installed apps' and repositories'. */
  takenNames: () => ReadonlySet<string>;
  /** Public domains apps serve, with the app serving each. */
  appDomains: () => ReadonlyMap<string, string>;
  /** The commit a git branch points to now, without cloning (`remoteHead`). */
  remoteHead: (url: string, branch: string | null) => Promise<string>;
  /** Labels of every container a deploy runs (builds, image reads). */
  box: string;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

/** Labels of a page's deploy containers: a crash's leftovers are found by them. */
export const PAGE_LABEL = "town.page";

/** How a failed look at a git page's branch starts its error: the next good look clears it. */
const LOOKING_FAILED = "looking for changes: ";

interface Running {
  step: DeployStep | null;
}

export class Pages {
  private content: SiteContent | undefined;
  private unavailable = "pages are starting";
  private readonly running = new Map<string, Running>();
  private readonly lock = new KeyedLock();
  /** Git refreshes asked for while one waits its turn: one is enough. */
  private readonly refreshQueued = new Set<string>();
  /** The last commit of each git page whose deploy failed (kept in memory). */
  private readonly failedCommits = new Map<string, string>();
  /** Deploys asked for that have not started yet: the page shows `deploying` at once. */
  private readonly waiting = new Map<string, number>();
  private readonly listeners = new Set<() => Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(private readonly options: PagesOptions) {}

  /** This install's id: it labels the containers deploys run. */
  get box(): string {
    return this.options.box;
  }

  /** Content can be made and served: deploys may start. Versions a crash orphaned are deleted. */
  async attach(content: SiteContent): Promise<void> {
    await content.open();
    this.content = content;
    await this.publish();
    for (const page of this.options.store.list()) {
      const onDisk = new Set(await content.versions(page.name));
      await content.prune(page.name, keptVersions(page));
      if (page.current !== null && !onDisk.has(page.current.id) && page.source.type !== "archive") {
        this.options.log("pages: the live version is gone; deploying again", { page: page.name });
        this.deployInBackground(page.name, true);
      }
    }
  }

  setUnavailable(reason: string): void {
    this.unavailable = reason;
  }

  /** Called with no arguments whenever what the ingress serves changes; resolves once it serves it. */
  onNetworkChange(listener: () => Promise<void>): void {
    this.listeners.add(listener);
  }

  list(): PageInfo[] {
    return this.options.store.list().map((page) => this.info(page));
  }

  view(name: string): PageInfo {
    checkPageName(name);
    return this.info(this.options.store.require(name));
  }

  /** What the network plan serves. */
  networkPages(): NetworkPage[] {
    const tld = this.options.tld();
    return this.options.store.list().map((page) => ({
      name: page.name,
      host: pageHost(page.name, tld),
      domains: page.domains,
      // Served from the database's word even before the content store is attached (a restart).
      root: page.current === null ? null : versionRoot(page.name, page.current.id),
    }));
  }

  /**
   * Makes a page. Git and image pages start deploying at once (the answer
   * says `deploying`); an archive page waits for its first upload.
   * @throws `invalid_argument`, `conflict`
   */
  create(body: CreatePageBody): PageInfo {
    this.ready();
    checkPageName(body.name);
    if (this.options.takenNames().has(body.name))
      throw new TownError("conflict", `"${body.name}" is the name of an app or a repository`);
    const domains = this.checkDomains(body.name, body.domains ?? []);
    const source = pageSource(body.source);
    const page = this.options.store.create({
      name: body.name,
      source,
      build: body.build ?? null,
      domains,
    });
    if (source.type !== "archive") this.deployInBackground(page.name, true);
    return this.info(this.options.store.require(page.name));
  }

  /** Deploys an uploaded archive as the page's new version; resolves once it is served. */
  async upload(name: string, input: Readable, declaredBytes?: number): Promise<PageInfo> {
    checkPageName(name);
    const page = this.options.store.require(name);
    if (page.source.type !== "archive") {
      input.destroy();
      throw new TownError(
        "conflict",
        `page "${name}" is made from ${page.source.type === "git" ? "a git repository" : "an image"}; only archive pages take uploads`,
      );
    }
    const source = page.source;
    await this.deploy(name, () => ({
      type: "archive",
      dir: source.dir,
      input,
      ...(declaredBytes === undefined || !Number.isFinite(declaredBytes) ? {} : { declaredBytes }),
    }));
    return this.view(name);
  }

  /** Deploys again from the source (git: even an unchanged commit). Answers at once. */
  rebuild(name: string): PageInfo {
    checkPageName(name);
    const page = this.options.store.require(name);
    if (page.source.type === "archive")
      throw new TownError("conflict", `page "${name}" is made from uploads: upload it again`);
    this.deployInBackground(name, true);
    return this.view(name);
  }

  /** Git pages deploy when the branch moved, image pages again. What the webhook and the schedule call. */
  refresh(name: string): void {
    this.deployInBackground(name, false);
  }

  /** Every git page looks for a new commit. */
  refreshAll(): void {
    for (const page of this.options.store.list()) {
      if (page.source.type === "git") this.refresh(page.name);
    }
  }

  /** The webhook: a token that is not the page's (or no page) is `not_found`, saying nothing more. */
  hook(name: string, token: string): void {
    const page = this.options.store.get(name);
    if (page === undefined || !tokensMatch(token, page.hookToken))
      throw new TownError("not_found", "no such hook");
    // Calls while one waits its turn coalesce: a flood of pushes is one deploy.
    if (page.source.type !== "archive") this.refresh(name);
  }

  /** The webhook's secret token (administrators only). */
  hookToken(name: string): string {
    checkPageName(name);
    return this.options.store.require(name).hookToken;
  }

  /** The previous version goes live again. @throws `conflict` without one */
  async rollback(name: string): Promise<PageInfo> {
    checkPageName(name);
    await this.lock.run([name], async () => {
      this.options.store.rolledBack(name);
      this.options.logs.begin(name);
      this.options.logs.append(name, "town", "rolled back to the previous version");
      await this.publish();
      await this.options.logs.end(name, "online", null);
    });
    return this.view(name);
  }

  /** Deletes a page: it stops being served, then its content and log go. */
  async remove(name: string): Promise<void> {
    checkPageName(name);
    this.options.store.require(name);
    await this.lock.run([name], async () => {
      this.options.store.remove(name);
      await this.publish();
      await this.content?.remove(name);
      await this.options.logs.remove(name);
    });
  }

  async addDomain(name: string, domain: string): Promise<PageInfo> {
    checkPageName(name);
    const page = this.options.store.require(name);
    const [checked = ""] = this.checkDomains(name, [domain]);
    if (!page.domains.includes(checked)) {
      this.options.store.setDomains(name, [...page.domains, checked]);
      await this.publish();
    }
    return this.view(name);
  }

  async removeDomain(name: string, domain: string): Promise<PageInfo> {
    checkPageName(name);
    const page = this.options.store.require(name);
    const lower = domain.toLowerCase();
    if (!page.domains.includes(lower))
      throw new TownError("not_found", `page "${name}" is not served at "${lower.slice(0, 80)}"`);
    this.options.store.setDomains(
      name,
      page.domains.filter((d) => d !== lower),
    );
    await this.publish();
    return this.view(name);
  }

  log(name: string): Promise<PageLog> {
    checkPageName(name);
    this.options.store.require(name);
    return this.options.logs.read(name);
  }

  /**
   * The log so far, then new lines until the deploy under way ends (at once
   * when none runs), or `signal` aborts.
   */
  async *follow(name: string, signal: AbortSignal): AsyncGenerator<PageLogEvent> {
    checkPageName(name);
    this.options.store.require(name);
    if (!this.running.has(name)) {
      for (const line of (await this.options.logs.read(name)).items)
        yield { type: "line", ...line };
      const info = this.view(name);
      yield { type: "end", state: info.state, error: info.error };
      return;
    }
    // A running deploy's log is in memory: read and subscribed in one turn, no line is lost or repeated.
    const queue: PageLogEvent[] = (this.options.logs.held(name)?.items ?? []).map((line) => ({
      type: "line",
      ...line,
    }));
    let wake: (() => void) | undefined;
    const unsubscribe = this.options.logs.subscribe(name, (event) => {
      queue.push(event);
      wake?.();
    });
    const onAbort = (): void => wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      while (!signal.aborted) {
        const event = queue.shift();
        if (event === undefined) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        yield event;
        if (event.type === "end") return;
      }
    } finally {
      unsubscribe();
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Stops deploys under way (their work is thrown away) and waits for them. */
  async stop(): Promise<void> {
    this.stopping.abort(new TownError("unavailable", "the daemon is stopping"));
    await this.idle();
  }

  /** Resolves once no deploy runs or waits its turn. */
  idle(): Promise<void> {
    return this.lock.idle();
  }

  private info(page: PageRecord): PageInfo {
    const running = this.running.get(page.name);
    const state: PageInfo["state"] =
      running !== undefined || this.waiting.has(page.name)
        ? "deploying"
        : page.lastError !== null
          ? "failed"
          : page.current === null
            ? "empty"
            : "online";
    return {
      name: page.name,
      source: sourceView(page.source),
      build: page.build,
      state,
      step: running?.step ?? null,
      error: page.lastError,
      urls: pageUrls(page.name, page.domains, this.options.tld()),
      domains: page.domains,
      current: page.current,
      previous: page.previous,
      createdAt: page.createdAt,
      updatedAt: page.updatedAt,
      skipped: page.skipped,
    };
  }

  private ready(): SiteContent {
    if (this.content === undefined) throw new TownError("unavailable", this.unavailable);
    return this.content;
  }

  private checkDomains(name: string, domains: readonly string[]): string[] {
    const tld = this.options.tld();
    const appDomains = this.options.appDomains();
    const pageOwners = new Map(
      this.options.store
        .list()
        .filter((page) => page.name !== name)
        .flatMap((page) => page.domains.map((domain) => [domain, `page ${page.name}`] as const)),
    );
    return [...new Set(domains.map((domain) => checkPageDomain(domain, tld)))].map((domain) => {
      const owner = appDomains.get(domain) ?? pageOwners.get(domain);
      if (owner !== undefined)
        throw new TownError("conflict", `"${domain}" is served for ${owner} already`);
      return domain;
    });
  }

  /** A deploy of a git or image page, in the background; `force`: even an unchanged commit. */
  private deployInBackground(name: string, force: boolean): void {
    if (!force) {
      if (this.refreshQueued.has(name)) return;
      this.refreshQueued.add(name);
    } else {
      this.waiting.set(name, (this.waiting.get(name) ?? 0) + 1);
    }
    const started = (): void => {
      if (!force) {
        this.refreshQueued.delete(name);
        return;
      }
      const left = (this.waiting.get(name) ?? 1) - 1;
      if (left > 0) this.waiting.set(name, left);
      else this.waiting.delete(name);
    };
    let head: string | undefined;
    void this.deploy(name, async () => {
      started();
      const page = this.options.store.get(name);
      if (page === undefined || page.source.type === "archive") return undefined;
      const source = page.source;
      if (source.type === "git" && !force) {
        head = await this.options.remoteHead(source.url, source.branch);
        const unchanged = head === page.current?.commit || head === this.failedCommits.get(name);
        if (unchanged && page.lastError?.startsWith(LOOKING_FAILED) === true)
          this.options.store.failed(name, null);
        if (unchanged) return undefined;
      }
      return source;
    }).catch((error: unknown) => {
      // A commit that failed is not tried again on every refresh; a new commit or a rebuild is.
      if (head !== undefined) this.failedCommits.set(name, head);
      this.options.log("pages: a deploy failed", { page: name, error: describe(error) });
    });
  }

  /**
   * One deploy, after the page's earlier ones: `input` says what to deploy
   * (undefined: nothing after all, e.g. an unchanged commit).
   */
  private async deploy(
    name: string,
    input: () => DeployInput | undefined | Promise<DeployInput | undefined>,
  ): Promise<void> {
    const content = this.ready();
    const { logs, store } = this.options;
    await this.lock.run([name], async () => {
      let deploying: DeployInput | undefined;
      try {
        deploying = await input();
      } catch (error) {
        if (store.get(name) !== undefined)
          store.failed(name, `${LOOKING_FAILED}${describe(error)}`);
        throw error;
      }
      if (deploying === undefined) return;
      const running: Running = { step: null };
      this.running.set(name, running);
      const finish = async (error: string | null): Promise<void> => {
        this.running.delete(name);
        await logs.end(name, error === null ? "online" : "failed", error);
      };
      logs.begin(name);
      try {
        const page = store.require(name);
        logs.append(name, "town", `deploying ${describeSource(page.source)}`);
        const version = await content.deploy(name, deploying, {
          log: {
            step: (step) => {
              running.step = step;
            },
            line: (stream, text) => {
              logs.append(name, stream, text);
            },
          },
          signal: this.stopping.signal,
          build: page.build,
          labels: { [PAGE_LABEL]: name, [LABEL_BOX]: this.options.box },
        });
        running.step = "publishing";
        const published = store.published(name, versionOf(version), version.skipped);
        await this.publish();
        await content.prune(name, keptVersions(published));
        logs.append(name, "town", `online: version ${version.id}`);
        await finish(null);
      } catch (error) {
        const message = describe(error);
        if (store.get(name) !== undefined) store.failed(name, message);
        logs.append(name, "town", `failed: ${message}`);
        await finish(message);
        throw error;
      }
    });
  }

  private async publish(): Promise<void> {
    await Promise.all([...this.listeners].map((listener) => listener()));
  }
}

/** The versions a page keeps on disk: the live one and the one a rollback brings back. */
function keptVersions(page: PageRecord): string[] {
  return [page.current?.id, page.previous?.id].filter((id): id is string => id !== undefined);
}

function versionOf({ id, createdAt, files, bytes, commit }: PreparedVersion): PageVersion {
  return { id, createdAt, files, bytes, commit };
}

/** The stored source from a create request: each type takes its fields and no others. */
function pageSource(body: CreatePageBody["source"]): PageSource {
  const refuse = (message: string): never => {
    throw new TownError("invalid_argument", `source: ${message}`);
  };
  const only = (allowed: readonly string[]): void => {
    const extra = Object.keys(body).filter((key) => key !== "type" && !allowed.includes(key));
    if (extra.length > 0) refuse(`a ${body.type} source takes no ${extra.join(", ")}`);
  };
  switch (body.type) {
    case "archive":
      only(["dir"]);
      return { type: "archive", dir: body.dir ?? null };
    case "git": {
      only(["url", "branch", "dir"]);
      if (body.url === undefined) return refuse("a git source needs a url");
      if (!isGitUrl(body.url)) refuse("the git url must be http:// or https://");
      parseRemoteUrl(body.url);
      return { type: "git", url: body.url, branch: body.branch ?? null, dir: body.dir ?? null };
    }
    case "image":
      only(["image", "path"]);
      if (body.image === undefined || body.path === undefined)
        return refuse("an image source needs an image and a path inside it");
      return { type: "image", image: body.image, path: body.path };
  }
}

function sourceView(source: PageSource): PageSourceView {
  const none = { url: null, branch: null, dir: null, image: null, path: null };
  switch (source.type) {
    case "archive":
      return { ...none, type: "archive", dir: source.dir };
    case "git":
      return {
        ...none,
        type: "git",
        url: parseRemoteUrl(source.url).display,
        branch: source.branch,
        dir: source.dir,
      };
    case "image":
      return { ...none, type: "image", image: source.image, path: source.path };
  }
}

function describeSource(source: PageSource): string {
  switch (source.type) {
    case "archive":
      return "an uploaded archive";
    case "git":
      return `${parseRemoteUrl(source.url).display}${source.branch === null ? "" : ` (${source.branch})`}`;
    case "image":
      return `${source.path} of ${source.image}`;
  }
}

function describe(error: unknown): string {
  if (isTownError(error)) return error.message;
  return error instanceof Error ? error.message : String(error);
}
