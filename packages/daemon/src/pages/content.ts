/**
 * The versions of pages' content on disk:
 *
 * ```
 * <sitesDir>/<page>/<versionId>/…   a version: root's, dirs 0755, files 0644, nothing else
 * <sitesDir>/.work/<hex>/src/…      a deploy in progress (0700), emptied by `open`
 * <sitesDir>/.work/<hex>/staging/   where archives and clones are unpacked first
 * ```
 * A deploy fills `src/` from the source, optionally builds in it, picks the
 * directory to serve, sanitises it (`sanitise.ts`) and renames it into
 * place: a version appears complete or not at all, and the live one is
 * never touched. Which version is served is the caller's (the ingress is
 * pointed at `versionRoot(page, id)`).
 */
import { randomBytes } from "node:crypto";
import { mkdir, rename } from "node:fs/promises";
import { join, resolve } from "node:path";
import { TownError } from "@townos/format";
import { isInsecure } from "../apps/controller.js";
import { systemClock, type Clock } from "../clock.js";
import type { HostRuntime } from "../runtime/workload.js";
import { DEFAULT_MAX_ENTRIES } from "../storage/archive.js";
import {
  DEFAULT_GIT_MAX_DOWNLOAD_BYTES,
  DEFAULT_GIT_MAX_FILES,
  DEFAULT_GIT_TIMEOUT_MS,
} from "../storage/seed.js";
import { errnoCode } from "../storage/safe-fs.js";
import {
  at,
  lstatAt,
  namesAt,
  openDirectories,
  openDirectory,
  openInside,
  removeAt,
  withDirectory,
} from "../storage/tree.js";
import { runBuild } from "./build.js";
import { sanitiseTree, type SanitisedTree } from "./sanitise.js";
import { sizeText } from "./size-text.js";
import {
  fillFromArchive,
  fillFromGit,
  fillFromImage,
  type Filled,
  type SourceContext,
} from "./sources.js";
import { findDirectory, subdirParts } from "./subdir.js";
import type { DeployInput, DeployOptions, PreparedVersion } from "./types.js";

export interface PageLimits {
  /** Most bytes of a version's files (and of an archive's or image's unpacked content). */
  maxBytes: number;
  /** Most entries of a version (and of an archive or image). */
  maxEntries: number;
  buildTimeoutMs: number;
  gitTimeoutMs: number;
  gitMaxDownloadBytes: number;
  gitMaxFiles: number;
}

export const DEFAULT_PAGE_LIMITS: Readonly<PageLimits> = {
  maxBytes: 2 * 1024 ** 3,
  maxEntries: DEFAULT_MAX_ENTRIES,
  buildTimeoutMs: 30 * 60_000,
  gitTimeoutMs: DEFAULT_GIT_TIMEOUT_MS,
  gitMaxDownloadBytes: DEFAULT_GIT_MAX_DOWNLOAD_BYTES,
  gitMaxFiles: DEFAULT_GIT_MAX_FILES,
};

/** `YYYYMMDDTHHMMSSmmmZ-<4 hex>`: sorts by time. */
export const VERSION_ID = /^\d{8}T\d{9}Z-[0-9a-f]{4}$/;
const WORK_DIR = ".work";
/** A page name as the API takes it (one DNS label); checked again here as it becomes a path. */
const PAGE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ROOT = { uid: 0, gid: 0 };

export interface PageContentOptions {
  /** Versions are `<sitesDir>/<page>/<versionId>`. */
  sitesDir: string;
  /** Image sources and builds need it: without it they fail with `unavailable`. */
  runtime?: HostRuntime;
  insecureRegistries?: () => readonly string[];
  limits?: Partial<PageLimits>;
  /** For version ids. */
  clock?: Clock;
}

export class PageContent {
  private readonly sitesDir: string;
  private readonly workDir: string;
  private readonly limits: PageLimits;
  private readonly clock: Clock;

  constructor(private readonly options: PageContentOptions) {
    this.sitesDir = resolve(options.sitesDir);
    this.workDir = join(this.sitesDir, WORK_DIR);
    this.limits = { ...DEFAULT_PAGE_LIMITS, ...options.limits };
    this.clock = options.clock ?? systemClock;
  }

  /** Makes the sites directory and its private `.work`, and deletes what a crash left in it. */
  async open(): Promise<void> {
    await mkdir(this.sitesDir, { recursive: true, mode: 0o755 });
    await withDirectory(this.sitesDir, async (sites) => {
      const stats = await lstatAt(sites, WORK_DIR);
      if (stats && !stats.isDirectory()) await removeAt(sites, WORK_DIR);
      if (!stats?.isDirectory()) await mkdir(at(sites, WORK_DIR), { mode: 0o700 });
      const work = await openDirectory(at(sites, WORK_DIR));
      try {
        await work.chown(ROOT.uid, ROOT.gid);
        await work.chmod(0o700);
        for (const name of await namesAt(work)) await removeAt(work, name);
      } finally {
        await work.close();
      }
    });
  }

  /**
   * Makes a new version of `page` from `input` (and `options.build`) beside
   * the others; it is not served until the caller says so.
   * @throws TownError: `invalid_argument` (a bad or missing directory, a
   *   broken archive, a bad URL), `payload_too_large` (a limit), `not_found`
   *   (a missing branch or image), `io` (network, a failed build: "the build
   *   exited with code N"), `unavailable` (no container runtime).
   */
  async deploy(page: string, input: DeployInput, options: DeployOptions): Promise<PreparedVersion> {
    checkPage(page);
    const { log, signal } = options;
    signal.throwIfAborted();
    if ((input.type === "image" || options.build) && !this.options.runtime) {
      if (input.type === "archive") input.input.destroy();
      throw new TownError("unavailable", "pages: no container runtime for images and builds");
    }
    const workName = randomBytes(8).toString("hex");
    const work = join(this.workDir, workName);
    try {
      await mkdir(work, { mode: 0o700 });
      const src = join(work, "src");
      const stagingRoot = join(work, "staging");
      await mkdir(src, { mode: 0o755 });
      await mkdir(stagingRoot, { mode: 0o700 });
      const context: SourceContext = { dir: src, stagingRoot, limits: this.limits, log, signal };
      const filled = await this.fill(page, input, context, options);
      const what = sourceName(input);
      let parts = subdirParts(input.type === "image" ? null : input.dir, "dir");
      if (options.build) {
        const output = subdirParts(options.build.output, "output");
        const source = await findDirectory(src, parts, what);
        await source.parent.close();
        log.step("building");
        await runBuild(this.runtime(), {
          page,
          build: options.build,
          sourceDir: join(src, ...parts),
          labels: options.labels,
          insecure: this.insecure(options.build.image),
          timeoutMs: this.limits.buildTimeoutMs,
          log,
          signal,
        });
        parts = [...parts, ...output];
      }
      log.step("publishing");
      const served = await findDirectory(src, parts, options.build ? "the build's output" : what);
      try {
        const tree = await withDirectory(at(served.parent, served.name), (dir) =>
          sanitiseTree(dir, this.limits, signal),
        );
        reportSanitised(tree, log);
        const createdAt = this.clock();
        const id = versionId(createdAt);
        await this.moveIn(page, at(served.parent, served.name), id);
        log.line("town", `version ${id}: ${tree.files} files, ${sizeText(tree.bytes)}`);
        return {
          id,
          createdAt,
          files: tree.files,
          bytes: tree.bytes,
          commit: filled.commit,
          skipped: [...filled.refused, ...tree.skipped].slice(0, 300),
        };
      } finally {
        await served.parent.close();
      }
    } finally {
      if (input.type === "archive" && !input.input.readableEnded) input.input.destroy();
      await withDirectory(this.workDir, (dir) => removeAt(dir, workName));
    }
  }

  /** The page's version ids on disk, oldest first; [] when it has none. */
  async versions(page: string): Promise<string[]> {
    checkPage(page);
    const dir = await openInside(this.sitesDir, [page]);
    if (!dir) return [];
    try {
      return (await namesAt(dir)).filter((name) => VERSION_ID.test(name));
    } finally {
      await dir.close();
    }
  }

  /** Deletes the page's versions other than `keep`. */
  async prune(page: string, keep: readonly string[]): Promise<void> {
    checkPage(page);
    const dir = await openInside(this.sitesDir, [page]);
    if (!dir) return;
    try {
      for (const name of await namesAt(dir)) {
        if (VERSION_ID.test(name) && !keep.includes(name)) await removeAt(dir, name);
      }
    } finally {
      await dir.close();
    }
  }

  /** Deletes all of the page's versions. */
  async remove(page: string): Promise<void> {
    checkPage(page);
    await withDirectory(this.sitesDir, (dir) => removeAt(dir, page));
  }

  private async fill(
    page: string,
    input: DeployInput,
    context: SourceContext,
    options: DeployOptions,
  ): Promise<Filled> {
    switch (input.type) {
      case "archive":
        return fillFromArchive(input, context);
      case "git":
        return fillFromGit(input, context);
      case "image":
        return fillFromImage(input, {
          ...context,
          runtime: this.runtime(),
          insecure: this.insecure(input.image),
          labels: options.labels,
          page,
        });
    }
  }

  /** Renames the sanitised tree to `<sitesDir>/<page>/<id>` (never over anything). */
  private async moveIn(page: string, from: string, id: string): Promise<void> {
    const pageDir = await openDirectories(this.sitesDir, [page], { mode: 0o755, owner: ROOT });
    try {
      // rename(2) would replace an empty directory of that name.
      if (await lstatAt(pageDir, id))
        throw new TownError("conflict", `pages: version ${id} exists`);
      await rename(from, at(pageDir, id));
    } catch (error) {
      if (errnoCode(error) === "EEXIST" || errnoCode(error) === "ENOTEMPTY") {
        throw new TownError("conflict", `pages: version ${id} exists`);
      }
      throw error;
    } finally {
      await pageDir.close();
    }
  }

  private runtime(): HostRuntime {
    const { runtime } = this.options;
    if (!runtime) throw new TownError("unavailable", "pages: no container runtime");
    return runtime;
  }

  private insecure(image: string): boolean {
    return isInsecure(image, this.options.insecureRegistries?.() ?? []);
  }
}

/** @throws TownError `invalid_argument` unless `page` is one DNS label (no `/`, no leading dot). */
function checkPage(page: string): void {
  if (!PAGE_NAME.test(page)) throw new TownError("invalid_argument", "pages: not a page name");
}

function sourceName(input: DeployInput): string {
  if (input.type === "archive") return "the archive";
  if (input.type === "git") return "the repository";
  return "the image's directory";
}

function reportSanitised(tree: SanitisedTree, log: DeployOptions["log"]): void {
  if (tree.skippedCount === 0) return;
  log.line("town", `left out ${tree.skippedCount} links and special files (a site is plain files)`);
  for (const path of tree.skipped.slice(0, 20)) log.line("town", `  ${path}`);
}

/** A version's directory relative to the sites directory: what the ingress serves. Pure. */
export function versionRoot(page: string, versionId: string): string {
  checkPage(page);
  if (!VERSION_ID.test(versionId)) {
    throw new TownError("invalid_argument", "pages: not a version id");
  }
  return `${page}/${versionId}`;
}

/** A new version's id: its time (sortable) and a few random bits, `YYYYMMDDTHHMMSSmmmZ-<hex>`. */
function versionId(at: number): string {
  const stamp = new Date(at).toISOString().replace(/[-:.]/g, "");
  return `${stamp}-${randomBytes(2).toString("hex")}`;
}
