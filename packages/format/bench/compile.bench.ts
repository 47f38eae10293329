/**
 * Loads, validates and compiles 1,000 package files and prints how long each
 * phase takes and the peak memory. The files are the bundled example
 * packages, renamed into 1,000 distinct package versions.
 * Run: npm run bench (target: under 1 s for 1,000 files on one core).
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import {
  compilePackage,
  loadRepository,
  PackageIndex,
  prefillAnswers,
  type RepositoryFile,
} from "../src/index.js";
import { readTree, repoRoot, seededRandom, testSystem } from "../test/support.js";

const FILES = 1000;
const ROUNDS = 5;

const examples = (await readTree(join(repoRoot, "examples/repository"))).filter((file) =>
  file.path.startsWith("packages/"),
);
const files: RepositoryFile[] = [];
for (let i = 0; files.length < FILES; i++) {
  for (const file of examples) {
    if (files.length === FILES) break;
    // keyvalue keeps its name: guestbook copies depend on it.
    const renamed = file.path.includes("/keyvalue/")
      ? file.path.replace(/\/([^/]+)\.yaml$/, `/$1.${i}.yaml`)
      : file.path.replace(/^packages\/([^/]+)\//, `packages/$1-${i}/`);
    files.push({ path: renamed, text: file.text });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

const loadTimes: number[] = [];
const compileTimes: number[] = [];
let compiled = 0;
for (let round = 0; round < ROUNDS; round++) {
  const loadStart = performance.now();
  const repository = loadRepository(files);
  loadTimes.push(performance.now() - loadStart);

  const index = new PackageIndex([{ name: "default", repository }]);
  const compileStart = performance.now();
  compiled = 0;
  for (const versions of repository.packages.values()) {
    for (const entry of versions.values()) {
      if (!entry.definition)
        throw new Error(`${entry.path}: ${entry.errors[0]?.message ?? "invalid"}`);
      compilePackage(
        { repo: "default", name: entry.name, version: entry.version, definition: entry.definition },
        prefillAnswers(entry.definition.questions),
        {
          tld: "home",
          system: testSystem,
          random: seededRandom(compiled + 1),
          resolveDependency: (request) => index.find(request),
        },
      );
      compiled += 1;
    }
  }
  compileTimes.push(performance.now() - compileStart);
}

const load = median(loadTimes);
const compile = median(compileTimes);
const peakRssMb = process.resourceUsage().maxRSS / 1024;
console.log(
  `package files:            ${files.length} (${compiled} compiled, dependencies included in each)`,
);
console.log(`load + validate:          ${load.toFixed(1)} ms (median of ${ROUNDS})`);
console.log(`compile with defaults:    ${compile.toFixed(1)} ms (median of ${ROUNDS})`);
console.log(
  `total per 1,000 files:    ${(((load + compile) * 1000) / files.length).toFixed(1)} ms`,
);
console.log(`peak memory (max RSS):    ${peakRssMb.toFixed(1)} MB`);
