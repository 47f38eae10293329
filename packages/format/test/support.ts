import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import {
  TownError,
  type RandomSource,
  type RepositoryFile,
  type SystemInfo,
} from "../src/index.js";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Real packages from the public Town OS repository, provided beside the project. */
export const upstreamFixtures = join(repoRoot, "../shared/fixtures/townos-default-packages");

export const upstreamMissing = existsSync(upstreamFixtures)
  ? false
  : `the upstream fixtures are not at ${upstreamFixtures}`;

/** Counts up from a seed: the same "random" bytes on every run. */
export function seededRandom(seed = 1): RandomSource {
  let state = seed;
  return {
    bytes(count) {
      const out = new Uint8Array(count);
      for (let i = 0; i < count; i++) {
        state = (state * 1103515245 + 12345) % 2147483648;
        out[i] = state & 0xff;
      }
      return out;
    },
  };
}

export const testSystem: SystemInfo = {
  hostname: "townbox",
  internalIP: "192.0.2.10",
  externalIP: "198.51.100.7",
};

/** Every file below `dir`, as repository files (no size or link checks: test data only). */
export async function readTree(dir: string): Promise<RepositoryFile[]> {
  const files: RepositoryFile[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    files.push({
      path: relative(dir, full).split("\\").join("/"),
      text: await readFile(full, "utf8"),
    });
  }
  return files;
}

/** Awaits a promise that must fail with a TownError of `code` whose message matches. */
export async function expectTownError(
  promise: Promise<unknown>,
  code: TownError["code"],
  pattern: RegExp,
): Promise<TownError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof TownError, `expected a TownError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, pattern);
  return caught;
}
