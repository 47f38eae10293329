/**
 * A state repository's checkout → what it declares (`DesiredState`) and its
 * problems. Pure: the caller reads the files. Only `repositories.yaml`,
 * `settings.yaml` and the `.yaml` files under `apps/`, `volumes/` and
 * `pages/` are read; everything else (README, docs) is left alone.
 */
import type { TSchema } from "@sinclair/typebox";
import {
  NameParam,
  StateAppFileSchema,
  StatePageFileSchema,
  StateRepositoriesFileSchema,
  StateSettingsFileSchema,
  StateVolumeFileSchema,
  type StateAppFile,
  type StateFile,
  type StatePageFile,
  type StateProblem,
  type StateRepositoriesFile,
  type StateSettingsFile,
  type StateVolumeFile,
} from "@townos/api";
import { parseByteSize, TownError } from "@townos/format";
import { isNode, isScalar, parseAllDocuments, visit } from "yaml";
import { checkPageName } from "../pages/names.js";
import { printable, userVolumeName } from "../storage/names.js";
import { schemaProblems } from "./schema-check.js";
import type { DesiredApp, DesiredState, ParsedCheckout } from "./types.js";

/** A declaration file is settings, not data: past this it is a mistake or an attack. */
export const MAX_STATE_FILE_BYTES = 64 * 1024;
/** Declaration files (those read) in one checkout. */
export const MAX_STATE_FILES = 2000;
/** Anchors may share a block of answers; more aliases than this is an expansion bomb. */
const MAX_ALIASES = 16;
/** YAML's own errors past these repeat the first ones. */
const MAX_YAML_ERRORS = 3;

const NAME = new RegExp(NameParam.pattern ?? "");
const MAX_NAME = NameParam.maxLength ?? 64;
const YAML_FILE = /\.ya?ml$/i;

type Place =
  | { kind: "repositories" | "settings" }
  | { kind: "app"; repo: string; name: string }
  | { kind: "volume" | "page"; name: string }
  | { kind: "ignored" }
  | { kind: "wrong"; message: string };

function nameProblem(name: string): string | undefined {
  if (name.length > MAX_NAME) return `"${printable(name)}" is longer than ${MAX_NAME} characters`;
  if (!NAME.test(name)) return `"${printable(name)}" is not a valid name (${String(NAME)})`;
  return undefined;
}

/** The message of the TownError a name check throws; undefined when it passes. */
function checkProblem(check: () => void): string | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    if (error instanceof TownError) return error.message.replace(/^storage: /, "");
    throw error;
  }
}

/** Where a path sits in the layout; `.yaml` files in the wrong place are mistakes, not ignored. */
function placeOf(path: string): Place {
  const parts = path.split("/");
  if (
    path.includes("\\") ||
    path.includes("\0") ||
    parts.some((p) => ["", ".", ".."].includes(p))
  ) {
    return { kind: "wrong", message: "not a plain relative path" };
  }
  const [top = "", ...rest] = parts;
  const file = parts.at(-1) ?? "";
  if (parts.length === 1) {
    if (path === "repositories.yaml") return { kind: "repositories" };
    if (path === "settings.yaml") return { kind: "settings" };
    if (/^(repositories|settings)\.ya?ml$/i.test(path)) {
      return { kind: "wrong", message: `this file is read only as ${top.split(".")[0]}.yaml` };
    }
    return { kind: "ignored" };
  }
  if (!["apps", "volumes", "pages"].includes(top) || !YAML_FILE.test(file)) {
    return { kind: "ignored" };
  }
  const shape = top === "apps" ? "apps/<repo>/<name>.yaml" : `${top}/<name>.yaml`;
  if (rest.length !== (top === "apps" ? 2 : 1) || !file.endsWith(".yaml")) {
    return { kind: "wrong", message: `files here are ${shape}` };
  }
  const name = file.slice(0, -".yaml".length);
  if (top === "apps") {
    const repo = rest[0] ?? "";
    const problem = nameProblem(repo) ?? nameProblem(name);
    return problem ? { kind: "wrong", message: problem } : { kind: "app", repo, name };
  }
  const problem = checkProblem(() => {
    if (top === "pages") checkPageName(name);
    else userVolumeName(name);
  });
  if (problem) return { kind: "wrong", message: problem };
  return { kind: top === "pages" ? "page" : "volume", name };
}

/** One YAML document as plain data, or why it cannot be read. Empty: null. */
function readYaml(text: string): { value: unknown } | { problems: string[] } {
  try {
    const documents = parseAllDocuments(text, {
      schema: "core",
      merge: false,
      uniqueKeys: true,
      strict: true,
      logLevel: "silent",
    });
    if (documents.length > 1) return { problems: ["one YAML document per file"] };
    const [document] = documents;
    if (document === undefined) return { value: null };
    const errors = [...document.errors, ...document.warnings].map(
      (error) => error.message.split("\n")[0]?.replace(/:$/, "") ?? error.name,
    );
    if (errors.length > 0) return { problems: errors.slice(0, MAX_YAML_ERRORS) };
    // Tags turn text into other things (!!binary, !!set) and keys that are
    // collections are flattened into text: neither belongs in these files.
    visit(document, {
      Node(_key, node) {
        if (node.tag !== undefined) {
          errors.push(`tags such as ${node.tag} are not allowed`);
          return visit.BREAK;
        }
        return undefined;
      },
      Pair(_key, pair) {
        if (isNode(pair.key) && !isScalar(pair.key)) {
          errors.push("keys must be plain text");
          return visit.BREAK;
        }
        return undefined;
      },
    });
    if (errors.length > 0) return { problems: errors };
    return { value: document.toJS({ maxAliasCount: MAX_ALIASES }) as unknown };
  } catch (error) {
    // Alias bombs (ReferenceError) and nesting too deep for the stack (RangeError).
    return { problems: [`cannot be read: ${(error as Error).message}`] };
  }
}

/** The checked value of a file, or problems. */
function readFile(file: StateFile, schema: TSchema): { value: unknown } | { problems: string[] } {
  const read = readYaml(file.text);
  if ("problems" in read) return read;
  // An empty file declares the object with nothing set (an app at its newest, no quota…).
  const value = read.value ?? (schema === StateRepositoriesFileSchema ? [] : {});
  const problems = schemaProblems(schema, value);
  return problems.length > 0 ? { problems } : { value };
}

const SCHEMAS = {
  repositories: StateRepositoriesFileSchema,
  settings: StateSettingsFileSchema,
  app: StateAppFileSchema,
  volume: StateVolumeFileSchema,
  page: StatePageFileSchema,
} as const;

/** The schema's record says so, but TypeBox checks record keys only against a pattern. */
function exposureProblems(file: StateAppFile): string[] {
  return Object.keys(file.exposure ?? {})
    .filter((port) => !/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)
    .map((port) => `exposure.${port}: not a port number (1-65535)`);
}

/** A volume file's quota as bytes (null: none); undefined when it is not a size. */
export function quotaBytes(quota: number | string | null): number | null | undefined {
  if (typeof quota === "string") return parseByteSize(quota);
  return quota !== null && quota < 0 ? undefined : quota;
}

/** Why a volume file's quota cannot be applied (the schema lets any short string through). */
function quotaProblem({ quota }: StateVolumeFile): string | undefined {
  if (quota === undefined || quotaBytes(quota) !== undefined) return undefined;
  return `quota: ${JSON.stringify(quota)} is not a size such as 10gb`;
}

function duplicateNames(repositories: StateRepositoriesFile): string[] {
  const seen = new Set<string>();
  const duplicates = new Set<string>();
  for (const { name } of repositories) {
    if (seen.has(name)) duplicates.add(name);
    seen.add(name);
  }
  return [...duplicates];
}

/**
 * Reads a checkout's files (paths relative to its root). Every problem is
 * reported, with its file; `desired` holds what could be read, and is to be
 * applied only when there are none.
 */
export function parseCheckout(files: readonly StateFile[]): ParsedCheckout {
  const desired: DesiredState = {
    repositories: null,
    apps: new Map(),
    volumes: new Map(),
    pages: new Map(),
    settings: null,
  };
  const problems: StateProblem[] = [];
  const placed = [...files]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((file) => ({ file, place: placeOf(file.path) }))
    .filter(
      (entry): entry is { file: StateFile; place: Exclude<Place, { kind: "ignored" }> } =>
        entry.place.kind !== "ignored",
    );
  if (placed.length > MAX_STATE_FILES) {
    problems.push({
      path: ".",
      message: `${placed.length} declaration files: at most ${MAX_STATE_FILES} are read`,
    });
    return { desired, problems };
  }
  let previousPath: string | undefined;
  for (const { file, place } of placed) {
    const problem = (message: string) => problems.push({ path: file.path, message });
    if (file.path === previousPath) {
      problem("the checkout lists this file twice");
      continue;
    }
    previousPath = file.path;
    if (place.kind === "wrong") {
      problem(place.message);
      continue;
    }
    const bytes = Buffer.byteLength(file.text, "utf8");
    if (bytes > MAX_STATE_FILE_BYTES) {
      problem(`${bytes} bytes: a file here may have at most ${MAX_STATE_FILE_BYTES}`);
      continue;
    }
    const read = readFile(file, SCHEMAS[place.kind]);
    if ("problems" in read) {
      read.problems.forEach(problem);
      continue;
    }
    switch (place.kind) {
      case "repositories": {
        const repositories = read.value as StateRepositoriesFile;
        for (const name of duplicateNames(repositories))
          problem(`repository ${name} is listed twice`);
        desired.repositories = repositories;
        break;
      }
      case "settings":
        desired.settings = read.value as StateSettingsFile;
        break;
      case "app": {
        const file = read.value as StateAppFile;
        exposureProblems(file).forEach(problem);
        const app: DesiredApp = { ...file, repo: place.repo, name: place.name };
        desired.apps.set(`${place.repo}/${place.name}`, app);
        break;
      }
      case "volume": {
        const volume = read.value as StateVolumeFile;
        const quota = quotaProblem(volume);
        if (quota) problem(quota);
        desired.volumes.set(place.name, volume);
        break;
      }
      case "page":
        desired.pages.set(place.name, read.value as StatePageFile);
        break;
    }
  }
  return { desired, problems };
}
