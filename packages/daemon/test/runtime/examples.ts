/**
 * Compiles the example packages of examples/repository as the install form
 * would (defaults prefilled, then the given answers), with the format
 * package's seeded randomness so that secrets come out the same every run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  compilePackage,
  loadRepository,
  PackageIndex,
  prefillAnswers,
  VM_DISK,
  type CompiledPackage,
} from "@townos/format";
import { readTree, repoRoot, seededRandom, testSystem } from "../../../format/test/support.js";

const index = new PackageIndex([
  {
    name: "default",
    repository: loadRepository(await readTree(join(repoRoot, "examples/repository"))),
  },
]);

export function compileExample(
  name: string,
  version: string,
  answers: Readonly<Record<string, string>> = {},
): CompiledPackage {
  const pkg = index.find({ repo: "default", name, version });
  assert.ok(pkg, `${name}@${version} is in the example repository`);
  return compilePackage(
    pkg,
    { ...prefillAnswers(pkg.definition.questions), ...answers },
    {
      tld: "home",
      system: testSystem,
      random: seededRandom(),
      resolveDependency: (request) => index.find(request),
    },
  );
}

/**
 * The plan as it would be if its package ran as a VM on `image` (a store
 * name or URL), 64 MiB and 1 CPU, with the disk volume the compile adds.
 */
export function asVm(plan: CompiledPackage, image: string): CompiledPackage {
  return {
    ...plan,
    runtime: "vm",
    image: null,
    vm: { image, memory: 64 * 1024 * 1024, cpus: 1, sha256: null },
    volumes: [...plan.volumes, { ...VM_DISK }],
  };
}
