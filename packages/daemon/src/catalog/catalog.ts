import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  compareVersions,
  isTownError,
  latestValidVersion,
  loadRepository,
  PackageIndex,
  type LoadedRepository,
  type PackageVersionEntry,
  type RepositoryFile,
  type SystemInfo,
} from "@townos/format";
import { TownError } from "@townos/format";
import type { InstallRecord, Installs } from "../store/installs.js";
import type { Repositories, RepositoryConfig } from "../store/repositories.js";
import { sql, type Db } from "../store/database.js";
import { KeyedLock } from "../system/mutex.js";
import type { Clock } from "../clock.js";
import { previewInstall, type InstallPreview } from "./preview.js";

/** What one fetch of a package repository brought. */
export interface FetchedRepository {
  commit: string;
  files: RepositoryFile[];
  /** Repository paths changed since the previous fetch; null on the first. */
  changedPaths: string[] | null;
  /** Files that were not read (too large, too many), with why. */
  skipped: { path: string; reason: string }[];
  /** The files already parsed (in a worker); absent: the catalog parses them. */
  repository?: LoadedRepository;
}

/** Parses a repository's files; the daemon does it in a worker thread. */
export type RepositoryParser = (files: RepositoryFile[]) => Promise<LoadedRepository>;

/** How the catalog reaches git; the daemon wires isomorphic-git in, tests may fake it. */
export interface RepositoryFetcher {
  /** Clones or fetches `config.url` into `dir`. Throws TownError on failure. */
  sync(config: RepositoryConfig, dir: string): Promise<FetchedRepository>;
  /** Reads what an earlier sync left in `dir`, without the network; undefined if nothing is there. */
  readLocal(dir: string): Promise<FetchedRepository | undefined>;
  remove(dir: string): Promise<void>;
}

interface Loaded {
  repository: LoadedRepository;
  texts: Map<string, string>;
  skipped: { path: string; reason: string }[];
}

export interface PackageSummary {
  repo: string;
  /** The repository's place in the ordered list. */
  repoPosition: number;
  name: string;
  latestVersion: string | null;
  description: string;
  supplies: string[];
  featured: boolean;
  installed: boolean;
  installedVersion: string | null;
  /** Versions with errors: listed, never hidden. */
  invalidVersions: number;
}

export interface VersionSummary {
  version: string;
  valid: boolean;
  errors: PackageVersionEntry["errors"];
  warnings: PackageVersionEntry["warnings"];
}

export interface PackageDetail extends PackageSummary {
  versions: VersionSummary[];
}

export interface QuestionView {
  name: string;
  query: string;
  type: string;
  default: string | null;
  optional: boolean;
  showIf: string | null;
}

export interface VersionDetail extends VersionSummary {
  repo: string;
  name: string;
  manifest: string;
  definitionHash: string;
  description: string;
  questions: QuestionView[];
  preview: InstallPreview | null;
}

export interface UpgradeOffer {
  repo: string;
  name: string;
  installedVersion: string;
  /** Where the upgrade comes from: possibly another repository with a higher version. */
  offerRepo: string;
  offerVersion: string;
  reason: "newer-version" | "changed-definition";
}

export interface RefreshOutcome {
  name: string;
  ok: boolean;
  commit: string | null;
  changedPackages: string[];
  error: string | null;
}

/**
 * The package catalog: every configured repository, loaded from its git
 * clone, searchable, with upgrade offers for installed packages. Work on one
 * repository (loading, refreshes, removal) never overlaps; a failing
 * repository keeps its last good contents and shows its error.
 */
export class Catalog {
  private readonly loaded = new Map<string, Loaded>();
  private readonly inFlight = new Map<string, Promise<RefreshOutcome>>();
  /** Each repository's work, one piece at a time. */
  private readonly queues = new KeyedLock();
  /** Repositories whose clone is still being read after a start. */
  private readonly loading = new Set<string>();
  /** Bumped whenever a repository's contents change. */
  private generation = 0;
  /** Package summaries are read on every catalog call; they change only with contents, installs or order. */
  private summaries: { key: string; value: PackageSummary[] } | undefined;

  constructor(
    private readonly db: Db,
    private readonly repositories: Repositories,
    private readonly installs: Installs,
    private readonly fetcher: RepositoryFetcher,
    private readonly reposDir: string,
    private readonly clock: Clock,
    /** In this thread by default, for small test repositories. */
    private readonly parse: RepositoryParser = (files) => Promise.resolve(loadRepository(files)),
  ) {}

  private dirOf(name: string): string {
    return join(this.reposDir, name);
  }

  /**
   * Loads every repository from its local clone (no network), as a start
   * does. The daemon serves meanwhile: a repository shows as loading until
   * its clone is read, and a failure is its error. Never rejects.
   */
  async loadLocal(): Promise<void> {
    const configs = this.repositories.list();
    for (const config of configs) this.loading.add(config.name);
    await Promise.all(
      configs.map((config) =>
        this.serially(config.name, async () => {
          try {
            const fetched = await this.fetcher.readLocal(this.dirOf(config.name));
            if (fetched) await this.store(config.name, fetched);
          } catch (error) {
            this.repositories.recordFailure(config.name, errorText(error));
          } finally {
            this.loading.delete(config.name);
          }
        }),
      ),
    );
  }

  /** True while a repository's clone is still being read after a start. */
  isLoading(name: string): boolean {
    return this.loading.has(name);
  }

  /** Throws `unavailable` while a repository is still loading: what it lacks may come. */
  checkLoaded(name: string): void {
    if (this.loading.has(name) && !this.loaded.has(name)) {
      throw new TownError("unavailable", `the repository "${name}" is still loading`, {
        retryAfter: 1,
      });
    }
  }

  /** Fetches one repository; concurrent calls for the same one share the same fetch. */
  refresh(name: string): Promise<RefreshOutcome> {
    const running = this.inFlight.get(name);
    if (running) return running;
    const config = this.repositories.get(name);
    const work = this.serially(name, () => this.fetch(config)).finally(() =>
      this.inFlight.delete(name),
    );
    this.inFlight.set(name, work);
    return work;
  }

  /** Runs `work` after every earlier piece of work on the same repository. */
  private serially<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.queues.run([name], work);
  }

  /** Resolves once no work is running: shutdown waits for it so no clone is left half-written. */
  settle(): Promise<void> {
    return this.queues.idle();
  }

  async refreshAll(): Promise<RefreshOutcome[]> {
    return Promise.all(this.repositories.list().map((config) => this.refresh(config.name)));
  }

  private async fetch(config: RepositoryConfig): Promise<RefreshOutcome> {
    try {
      const fetched = await this.fetcher.sync(config, this.dirOf(config.name));
      const previous = this.loaded.get(config.name);
      const changed = changedPackages(fetched, previous);
      await this.store(config.name, fetched);
      this.repositories.recordSuccess(config.name, fetched.commit, changed);
      return {
        name: config.name,
        ok: true,
        commit: fetched.commit,
        changedPackages: changed,
        error: null,
      };
    } catch (error) {
      const message = errorText(error);
      this.repositories.recordFailure(config.name, message);
      return { name: config.name, ok: false, commit: null, changedPackages: [], error: message };
    }
  }

  private async store(name: string, fetched: FetchedRepository): Promise<void> {
    const repository = fetched.repository ?? (await this.parse(fetched.files));
    this.generation += 1;
    this.loaded.set(name, {
      repository,
      texts: new Map(fetched.files.map((file) => [file.path, file.text])),
      skipped: fetched.skipped,
    });
  }

  /** Forgets a removed repository and deletes its clone, once its running work is done. */
  async forget(name: string): Promise<void> {
    this.generation += 1;
    this.loaded.delete(name);
    await this.serially(name, async () => {
      this.loaded.delete(name);
      await this.fetcher.remove(this.dirOf(name));
    });
  }

  /** Files a refresh could not read, per repository. */
  skipped(name: string): { path: string; reason: string }[] {
    return this.loaded.get(name)?.skipped ?? [];
  }

  /** Index over the repositories in their configured order. */
  index(): PackageIndex {
    return new PackageIndex(
      this.repositories.list().flatMap((config) => {
        const loaded = this.loaded.get(config.name);
        return loaded ? [{ name: config.name, repository: loaded.repository }] : [];
      }),
    );
  }

  packages(): readonly PackageSummary[] {
    const order = this.repositories.list();
    const key = `${this.generation}/${this.installs.generation}/${order.map((config) => config.name).join(",")}`;
    if (this.summaries?.key === key) return this.summaries.value;
    const installs = this.installsByKey();
    const value = order.flatMap((config) => {
      const loaded = this.loaded.get(config.name);
      if (!loaded) return [];
      return [...loaded.repository.packages.entries()].map(([name, versions]) =>
        summarize(config, name, versions, loaded.repository.featured, installs),
      );
    });
    this.summaries = { key, value };
    return value;
  }

  package(repo: string, name: string): PackageDetail {
    const versions = this.versionsOf(repo, name);
    const loaded = this.loaded.get(repo);
    return {
      ...summarize(
        this.repositories.get(repo),
        name,
        versions,
        loaded?.repository.featured ?? [],
        this.installsByKey(),
      ),
      versions: [...versions.values()].map(versionSummary),
    };
  }

  version(
    repo: string,
    name: string,
    version: string,
    tld: string,
    system: SystemInfo,
  ): VersionDetail {
    const entry = this.versionsOf(repo, name).get(version);
    if (!entry)
      throw new TownError("not_found", `there is no version ${version} of ${repo}/${name}`);
    const manifest = this.loaded.get(repo)?.texts.get(entry.path) ?? "";
    const definition = entry.definition;
    return {
      ...versionSummary(entry),
      repo,
      name,
      manifest,
      definitionHash: hashText(manifest),
      description: definition?.description ?? "",
      questions: definition
        ? [...definition.questions].map(([questionName, question]) => ({
            name: questionName,
            query: question.query,
            type: question.type,
            default: question.default ?? null,
            optional: question.optional,
            showIf: question.showIf ?? null,
          }))
        : [],
      preview: definition
        ? previewInstall({ repo, name, version, definition }, this.index(), tld, system)
        : null,
    };
  }

  private versionsOf(repo: string, name: string): Map<string, PackageVersionEntry> {
    const loaded = this.loaded.get(repo);
    if (!loaded) this.checkLoaded(repo);
    if (!loaded) throw new TownError("not_found", `there is no repository "${repo}" with packages`);
    const versions = loaded.repository.packages.get(name);
    if (!versions) throw new TownError("not_found", `there is no package ${repo}/${name}`);
    return versions;
  }

  private installsByKey(): Map<string, InstallRecord> {
    return new Map(
      this.installs.list().map((install) => [`${install.repo}/${install.name}`, install]),
    );
  }

  /** The hash an install records: of the package file's text, so any edit is seen. */
  definitionHash(repo: string, name: string, version: string): string {
    const entry = this.versionsOf(repo, name).get(version);
    if (!entry)
      throw new TownError("not_found", `there is no version ${version} of ${repo}/${name}`);
    return hashText(this.loaded.get(repo)?.texts.get(entry.path) ?? "");
  }

  /**
   * Upgrades for installed packages: a higher version of the same name in any
   * repository (ties to the first listed), or a changed file for the
   * installed version. Dismissed offers stay hidden until the offer changes.
   */
  upgrades(
    options: { includeDismissed?: boolean } = {},
  ): (UpgradeOffer & { dismissed: boolean })[] {
    const index = this.index();
    const offers: (UpgradeOffer & { dismissed: boolean })[] = [];
    for (const install of this.installs.list()) {
      const offer = this.offerFor(install, index);
      if (!offer) continue;
      const dismissed = this.dismissedOffer(install.repo, install.name) === offerKey(offer, this);
      if (!dismissed || options.includeDismissed) offers.push({ ...offer, dismissed });
    }
    return offers;
  }

  private offerFor(install: InstallRecord, index: PackageIndex): UpgradeOffer | undefined {
    const latest = index.latest(install.name);
    if (latest && compareVersions(latest.version, install.version) > 0) {
      return {
        repo: install.repo,
        name: install.name,
        installedVersion: install.version,
        offerRepo: latest.repo,
        offerVersion: latest.version,
        reason: "newer-version",
      };
    }
    const loaded = this.loaded.get(install.repo);
    const entry = loaded?.repository.packages.get(install.name)?.get(install.version);
    if (
      entry?.definition &&
      this.definitionHash(install.repo, install.name, install.version) !== install.definitionHash
    ) {
      return {
        repo: install.repo,
        name: install.name,
        installedVersion: install.version,
        offerRepo: install.repo,
        offerVersion: install.version,
        reason: "changed-definition",
      };
    }
    return undefined;
  }

  dismiss(repo: string, name: string): void {
    const install = this.installs.list().find((item) => item.repo === repo && item.name === name);
    const offer = install && this.offerFor(install, this.index());
    if (!offer) throw new TownError("not_found", `there is no upgrade offer for ${repo}/${name}`);
    sql(
      this.db,
      `INSERT INTO upgrade_dismissals (repo, name, offer, dismissed_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (repo, name) DO UPDATE SET offer = excluded.offer, dismissed_at = excluded.dismissed_at`,
    ).run(repo, name, offerKey(offer, this), this.clock());
  }

  private dismissedOffer(repo: string, name: string): string | undefined {
    const row = sql(
      this.db,
      "SELECT offer FROM upgrade_dismissals WHERE repo = ? AND name = ?",
    ).get(repo, name) as { offer: string } | undefined;
    return row?.offer;
  }
}

/** An offer is identified by what it offers, including the file's hash: an edit re-offers. */
function offerKey(offer: UpgradeOffer, catalog: Catalog): string {
  return `${offer.offerRepo}/${offer.name}@${offer.offerVersion}#${catalog.definitionHash(offer.offerRepo, offer.name, offer.offerVersion)}`;
}

function summarize(
  config: RepositoryConfig,
  name: string,
  versions: ReadonlyMap<string, PackageVersionEntry>,
  featured: readonly string[],
  installs: ReadonlyMap<string, InstallRecord>,
): PackageSummary {
  const latest = latestValidVersion(versions);
  const definition = latest === undefined ? undefined : versions.get(latest)?.definition;
  const install = installs.get(`${config.name}/${name}`);
  return {
    repo: config.name,
    repoPosition: config.position,
    name,
    latestVersion: latest ?? null,
    description: definition?.description ?? "",
    supplies: definition?.supplies ?? [],
    featured: featured.includes(name),
    installed: install !== undefined,
    installedVersion: install?.version ?? null,
    invalidVersions: [...versions.values()].filter((entry) => !entry.definition).length,
  };
}

function versionSummary(entry: PackageVersionEntry): VersionSummary {
  return {
    version: entry.version,
    valid: entry.definition !== undefined,
    errors: entry.errors,
    warnings: entry.warnings,
  };
}

/** Package names touched by a fetch: from the changed paths, or by comparing contents. */
function changedPackages(fetched: FetchedRepository, previous: Loaded | undefined): string[] {
  const names = new Set<string>();
  if (fetched.changedPaths) {
    for (const path of fetched.changedPaths) {
      const match = /^packages\/([^/]+)\//.exec(path);
      if (match?.[1]) names.add(match[1]);
    }
  } else if (previous) {
    const now = new Map(fetched.files.map((file) => [file.path, file.text]));
    for (const path of new Set([...now.keys(), ...previous.texts.keys()])) {
      const match = /^packages\/([^/]+)\//.exec(path);
      if (match?.[1] && now.get(path) !== previous.texts.get(path)) names.add(match[1]);
    }
  }
  return [...names].sort();
}

export function hashText(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function errorText(error: unknown): string {
  if (isTownError(error)) return error.message;
  return error instanceof Error ? error.message : String(error);
}
