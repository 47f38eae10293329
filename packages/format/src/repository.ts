import type { DependencyRequest, PackageSource } from "./compile/types.js";
import { parseDefinition } from "./definition/parse.js";
import type { PackageDefinition } from "./definition/types.js";
import { TownError, type Issue } from "./errors.js";
import { PACKAGE_NAME } from "./rules.js";
import { compareVersions, latestVersion, pickLatest } from "./version.js";

/** A file of a package repository, as read from a directory or a git tree. */
export interface RepositoryFile {
  /** Slash-separated path relative to the repository root. */
  path: string;
  text: string;
}

export interface PackageVersionEntry {
  name: string;
  version: string;
  path: string;
  /** Absent when the file has errors. */
  definition?: PackageDefinition;
  errors: Issue[];
  warnings: Issue[];
}

export interface FileProblem extends Issue {
  path: string;
}

export interface LoadedRepository {
  /** Package name → version → entry; versions sorted newest first. */
  packages: Map<string, Map<string, PackageVersionEntry>>;
  featured: string[];
  /** Problems that belong to no package version (featured.json, misplaced names). */
  problems: FileProblem[];
}

/** How many package files one repository may hold. */
export const MAX_REPOSITORY_FILES = 20_000;
/**
 * How many bytes its package files may hold together: parsing costs about a
 * second per MiB at worst, so this also bounds the time one repository takes.
 */
export const MAX_REPOSITORY_BYTES = 16 * 1024 * 1024;

const PACKAGE_FILE = /^packages\/([^/]+)\/([^/]+)\.yaml$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const MAX_FEATURED_BYTES = 64 * 1024;

/** True for the paths `loadRepository` reads: `packages/<name>/<version>.yaml` and `featured.json`. */
export function isRepositoryPath(path: string): boolean {
  return path === "featured.json" || PACKAGE_FILE.test(path);
}

/**
 * Loads a package repository from its files. A broken file is reported with
 * its errors and never stops the rest of the repository from loading.
 *
 * @throws TownError `invalid_argument` when the repository has more than
 *   `MAX_REPOSITORY_FILES` package files or more than `MAX_REPOSITORY_BYTES`
 *   in them: such a repository is refused whole, before anything is parsed.
 */
export function loadRepository(input: Iterable<RepositoryFile>): LoadedRepository {
  const files = [...input].filter((file) => isRepositoryPath(file.path));
  checkTotals(files);
  const packages = new Map<string, Map<string, PackageVersionEntry>>();
  const problems: FileProblem[] = [];
  let featured: string[] = [];
  for (const file of files) {
    if (file.path === "featured.json") {
      featured = readFeatured(file, problems);
      continue;
    }
    const match = PACKAGE_FILE.exec(file.path);
    if (!match) continue;
    const name = match[1] ?? "";
    const version = match[2] ?? "";
    const entry: PackageVersionEntry = { name, version, path: file.path, errors: [], warnings: [] };
    if (!PACKAGE_NAME.test(name)) {
      entry.errors.push({
        message: `package name "${name}" must be lower-case letters, digits and - but not "--" (it becomes a DNS name)`,
      });
    } else if (!VERSION.test(version)) {
      entry.errors.push({ message: `version "${version}" must be letters, digits, ., _, + and -` });
    } else {
      const result = parseDefinition(file.text);
      entry.errors.push(...result.errors);
      entry.warnings.push(...result.warnings);
      if (result.definition) entry.definition = result.definition;
    }
    let versions = packages.get(name);
    if (!versions) {
      versions = new Map();
      packages.set(name, versions);
    }
    versions.set(version, entry);
  }
  for (const [name, versions] of packages) {
    packages.set(name, new Map([...versions].sort(([a], [b]) => compareVersions(b, a))));
  }
  for (const name of featured) {
    if (!packages.has(name)) {
      problems.push({
        path: "featured.json",
        message: `featured package "${name}" does not exist`,
      });
    }
  }
  return {
    packages: new Map([...packages].sort(([a], [b]) => (a < b ? -1 : 1))),
    featured,
    problems,
  };
}

function checkTotals(files: readonly RepositoryFile[]): void {
  if (files.length > MAX_REPOSITORY_FILES) {
    throw new TownError(
      "invalid_argument",
      `the repository has more than ${MAX_REPOSITORY_FILES} package files`,
    );
  }
  let bytes = 0;
  for (const file of files) bytes += Buffer.byteLength(file.text, "utf8");
  if (bytes > MAX_REPOSITORY_BYTES) {
    throw new TownError(
      "invalid_argument",
      `the repository's package files hold ${bytes} bytes, more than the ${MAX_REPOSITORY_BYTES} allowed`,
    );
  }
}

function readFeatured(file: RepositoryFile, problems: FileProblem[]): string[] {
  if (file.text.length > MAX_FEATURED_BYTES) {
    problems.push({ path: file.path, message: "featured.json is too large" });
    return [];
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(file.text);
  } catch (error) {
    problems.push({ path: file.path, message: `not valid JSON: ${(error as Error).message}` });
    return [];
  }
  if (!Array.isArray(parsed) || !parsed.every((item): item is string => typeof item === "string")) {
    problems.push({ path: file.path, message: "must be a JSON array of package names" });
    return [];
  }
  return [...new Set(parsed)];
}

/** The newest valid version of a package in one repository. */
export function latestValidVersion(
  versions: ReadonlyMap<string, PackageVersionEntry>,
): string | undefined {
  return latestVersion(
    [...versions.values()].filter((entry) => entry.definition).map((entry) => entry.version),
  );
}

export interface NamedRepository {
  name: string;
  repository: LoadedRepository;
}

/**
 * Finds packages across an ordered list of repositories, the way installs and
 * dependencies address them: `repo/name@version`, version defaulting to the
 * latest valid one.
 */
export class PackageIndex {
  constructor(private readonly repositories: readonly NamedRepository[]) {}

  find(request: DependencyRequest): PackageSource | undefined {
    const repository = this.repositories.find((repo) => repo.name === request.repo)?.repository;
    const versions = repository?.packages.get(request.name);
    if (!versions) return undefined;
    const version = request.version ?? latestValidVersion(versions);
    const entry = version === undefined ? undefined : versions.get(version);
    if (!entry?.definition) return undefined;
    return {
      repo: request.repo,
      name: entry.name,
      version: entry.version,
      definition: entry.definition,
    };
  }

  /** Latest of a name across repositories; ties go to the repository listed first. */
  latest(name: string): PackageSource | undefined {
    const candidates = this.repositories.flatMap((repo, repoIndex) => {
      const versions = repo.repository.packages.get(name);
      const version = versions && latestValidVersion(versions);
      return version === undefined ? [] : [{ repoIndex, version, repo: repo.name }];
    });
    const best = pickLatest(candidates);
    return best && this.find({ repo: best.repo, name, version: best.version });
  }
}
