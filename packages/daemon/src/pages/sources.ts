/**
 * Filling a deploy's empty source directory from where the page's content
 * comes from: an uploaded archive, a git repository, a container image. Each
 * reuses the volume seeding's bounded, hostile-input-safe code; what they
 * leave (links inside the tree, say) is sanitised before anything is served.
 */
import { isTownError, TownError } from "@townos/format";
import type { HostRuntime } from "../runtime/workload.js";
import { copyOutOfImage } from "../runtime/image-files.js";
import { unpackArchive, type UnpackResult } from "../storage/archive.js";
import { printable } from "../storage/names.js";
import { checkRelativePath } from "../storage/paths.js";
import { seedFromGit } from "../storage/seed.js";
import { removeAt, withDirectory } from "../storage/tree.js";
import { parseRemoteUrl } from "../git/remote.js";
import type { DeployInput, DeployLog } from "./types.js";
import { sizeText } from "./size-text.js";

export interface SourceLimits {
  maxBytes: number;
  maxEntries: number;
  gitTimeoutMs: number;
  gitMaxDownloadBytes: number;
  gitMaxFiles: number;
}

export interface SourceContext {
  /** The empty directory to fill. */
  dir: string;
  /** A private directory on the same file system for work in progress. */
  stagingRoot: string;
  limits: SourceLimits;
  log: DeployLog;
  signal: AbortSignal;
}

export interface Filled {
  /** git: the commit checked out. */
  commit: string | null;
  /** Entries the source refused (traversal, links pointing out…), the first few hundred. */
  refused: string[];
}

export async function fillFromArchive(
  input: Extract<DeployInput, { type: "archive" }>,
  context: SourceContext,
): Promise<Filled> {
  const { log } = context;
  log.step("receiving");
  const declared = input.declaredBytes === undefined ? "" : ` of ${sizeText(input.declaredBytes)}`;
  log.line("town", `receiving an archive${declared}`);
  const result = await unpackArchive(input.input, "auto", context.dir, {
    stagingRoot: context.stagingRoot,
    maxBytes: context.limits.maxBytes,
    maxEntries: context.limits.maxEntries,
    signal: context.signal,
  });
  log.line(
    "town",
    `unpacked ${result.format}: ${result.entries} entries, ${sizeText(result.bytes)}`,
  );
  return { commit: null, refused: refusedPaths(result, log) };
}

export async function fillFromGit(
  input: Extract<DeployInput, { type: "git" }>,
  context: SourceContext,
): Promise<Filled> {
  const { log, limits } = context;
  log.step("cloning");
  const display = parseRemoteUrl(input.url).display;
  log.line("town", `cloning ${display}${input.branch === null ? "" : ` (branch ${input.branch})`}`);
  const outcome = await seedFromGit(
    context.dir,
    { url: input.url, ...(input.branch === null ? {} : { branch: input.branch }) },
    {
      stagingRoot: context.stagingRoot,
      timeoutMs: limits.gitTimeoutMs,
      maxDownloadBytes: limits.gitMaxDownloadBytes,
      maxFiles: limits.gitMaxFiles,
      signal: context.signal,
    },
  );
  // The directory was made empty for it: "not seeded" cannot happen.
  if (!outcome.seeded) throw new TownError("internal", `git: ${outcome.reason}`);
  // The repository's own data is not part of the site (and holds its history).
  await withDirectory(context.dir, (dir) => removeAt(dir, ".git"));
  log.line("town", `checked out ${outcome.commit.slice(0, 7)}`);
  return { commit: outcome.commit, refused: [] };
}

export async function fillFromImage(
  input: Extract<DeployInput, { type: "image" }>,
  context: SourceContext & {
    runtime: HostRuntime;
    insecure: boolean;
    labels: Readonly<Record<string, string>>;
    page: string;
  },
): Promise<Filled> {
  const { log, runtime } = context;
  const directory = imagePath(input.path);
  let result: UnpackResult;
  try {
    result = await copyOutOfImage(
      runtime,
      {
        image: input.image,
        directory,
        labels: context.labels,
        insecure: context.insecure,
        namePrefix: `town-page-image-${context.page}`,
        signal: context.signal,
        onPull: () => {
          log.step("pulling");
          log.line("town", `pulling ${input.image}`);
        },
      },
      (tar) => {
        log.step("extracting");
        return unpackArchive(tar, "tar", context.dir, {
          stagingRoot: context.stagingRoot,
          maxBytes: context.limits.maxBytes,
          maxEntries: context.limits.maxEntries,
          signal: context.signal,
        });
      },
    );
  } catch (error) {
    // The image is there (pulled if need be): a missing file is the directory asked for.
    if (
      isTownError(error) &&
      error.code === "not_found" &&
      (await runtime.imageExists(input.image))
    ) {
      throw new TownError(
        "invalid_argument",
        `the image ${input.image} has no directory ${printable(directory)}`,
      );
    }
    throw error;
  }
  log.line(
    "town",
    `extracted ${printable(directory)} from ${input.image}: ${result.entries} entries, ${sizeText(result.bytes)}`,
  );
  return { commit: null, refused: refusedPaths(result, log) };
}

/**
 * The directory in the image, absolute; a trailing `/` is tolerated.
 * @throws TownError `invalid_argument` for a relative path or one with `..`.
 */
export function imagePath(path: string): string {
  if (!path.startsWith("/")) {
    throw new TownError("invalid_argument", `the image path "${printable(path)}" is not absolute`);
  }
  const inner = path.replace(/^\/+|\/+$/g, "");
  if (inner === "") return "/";
  const check = checkRelativePath(inner);
  if ("reason" in check) {
    throw new TownError("invalid_argument", `the image path "${printable(path)}": ${check.reason}`);
  }
  return `/${check.parts.join("/")}`;
}

function refusedPaths(result: UnpackResult, log: DeployLog): string[] {
  if (result.refusedCount === 0) return [];
  log.line("town", `left out ${result.refusedCount} unsafe entries`);
  for (const entry of result.refused.slice(0, 20)) {
    log.line("town", `  ${printable(entry.path)}: ${entry.reason}`);
  }
  return result.refused.map((entry) => printable(entry.path, 300));
}
