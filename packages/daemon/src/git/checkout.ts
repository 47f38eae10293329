/**
 * Checking out a cloned commit into its work tree, after checking the tree:
 * a hostile server can send trees that real git would never make, and
 * isomorphic-git's checkout would write them as they are.
 *
 * The check reads the trees itself rather than through `walk`: `walk` joins
 * and normalizes names into paths (so `..` or `a/b` would not be seen as
 * they are) and looks entries up by path (so a name listed twice shows one
 * entry).
 */
import fs from "node:fs";
import * as git from "isomorphic-git";
import { TownError, type Issue } from "@townos/format";
import { printable } from "../storage/names.js";
import { hasControl, MAX_DEPTH } from "../storage/paths.js";
import { ioError } from "../storage/safe-fs.js";
import { reportProgress, type GitProgress } from "./network.js";
import { redactSecrets } from "./remote.js";

/** Most problems listed in one error. */
const MAX_ISSUES = 20;

export interface CheckoutOptions {
  /** The clone: a work tree with `.git` in it. */
  dir: string;
  /** isomorphic-git's cache, shared with the clone. */
  cache: object;
  /** Most paths in the commit's tree. */
  maxFiles: number;
  /** Starts every message, e.g. `git: clone <url>`. */
  context: string;
  onProgress: ((event: GitProgress) => void) | undefined;
}

/**
 * Checks the tree of the commit `HEAD` names, then checks it out (links as
 * links, as git does). Returns the commit.
 * @throws TownError `not_found` without a commit, `invalid_argument` for a
 *   tree that is not safe or over the limits (nothing is checked out then),
 *   `io` for an unreadable tree, `io` or `payload_too_large` when the checkout fails.
 */
export async function checkoutHead(options: CheckoutOptions): Promise<string> {
  const { dir, cache } = options;
  let commit: string;
  let branch: string | undefined;
  try {
    commit = await git.resolveRef({ fs, dir, ref: "HEAD" });
    branch = (await git.currentBranch({ fs, dir })) ?? undefined;
  } catch {
    throw new TownError("not_found", `${options.context}: the repository has no commits`);
  }
  await checkTree(dir, commit, options);
  try {
    await git.checkout({
      fs,
      dir,
      cache,
      ref: branch ?? commit,
      onProgress: (event) => {
        reportProgress(options.onProgress, event);
      },
    });
  } catch (error) {
    // The work tree is written to a volume: a full disk or quota is the volume's error.
    throw ioError(`${options.context}: checkout`, error);
  }
  return commit;
}

/** Refuses names that are empty, `.`, `..`, hold `/` or control characters, `.git`, or repeat. */
async function checkTree(dir: string, commit: string, options: CheckoutOptions): Promise<void> {
  const { cache, maxFiles, context } = options;
  const issues: Issue[] = [];
  let files = 0;
  const visit = async (oid: string, prefix: string, depth: number): Promise<void> => {
    const { tree } = await git.readTree({ fs, dir, oid, cache });
    const names = new Set<string>();
    for (const entry of tree) {
      const path = `${prefix}${entry.path}`;
      if (++files > maxFiles)
        throw new TownError("invalid_argument", `${context}: more than ${maxFiles} paths`);
      const problem = nameProblem(entry.path, names);
      names.add(entry.path);
      if (problem) {
        if (issues.length < MAX_ISSUES)
          issues.push({ field: printable(path, 200), message: problem });
        continue;
      }
      if (entry.type === "tree") {
        if (depth >= MAX_DEPTH)
          throw new TownError(
            "invalid_argument",
            `${context}: nested deeper than ${MAX_DEPTH} levels`,
          );
        await visit(entry.oid, `${path}/`, depth + 1);
      }
    }
  };
  try {
    await visit(commit, "", 1);
  } catch (error) {
    if (error instanceof TownError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new TownError(
      "io",
      `${context}: reading the tree failed: ${printable(redactSecrets(message, undefined), 300)}`,
    );
  }
  if (issues.length > 0) {
    throw new TownError(
      "invalid_argument",
      `${context}: the repository holds paths that are not safe to check out`,
      { issues },
    );
  }
}

function nameProblem(name: string, seen: ReadonlySet<string>): string | undefined {
  if (name === "" || name === "." || name === ".." || name.includes("/")) return "not a valid name";
  if (name.toLowerCase() === ".git") return "a path named .git";
  if (hasControl(name)) return "a control character in the name";
  if (seen.has(name)) return "a name listed twice";
  return undefined;
}
