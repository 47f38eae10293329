/**
 * Test helper: local stand-ins for public images that cannot be pulled here.
 *
 * A stand-in is the local busybox test image plus files and real programs
 * from the host's Debian packages (copied with the libraries `ldd` lists),
 * built once under a private cache name (`localhost/town/test-stand-in`,
 * a name no real box uses) and then tagged under the exact public name a
 * package asks for, so the daemon finds it without a pull. `untagStandIns`
 * takes the public names away again: nobody later mistakes a stand-in for
 * the real image. A public name held by an image that is not a stand-in is
 * never touched.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, cp, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { TEST_IMAGE } from "./podman-host.js";

const run = promisify(execFile);

/** On every stand-in: what it stands in for. */
export const STAND_IN_LABEL = "town.test.stand-in";
const CACHE_REPOSITORY = "localhost/town/test-stand-in";

export interface StandInRecipe {
  /** What it stands in for, said in its label. */
  description: string;
  /** Files by absolute path in the image; those starting with `#!` are made executable. */
  files?: Readonly<Record<string, string>>;
  /** Host programs copied in with their libraries: host path → path in the image. */
  programs?: Readonly<Record<string, string>>;
  /** Host files or directories copied whole, to the same path (data the programs read). */
  paths?: readonly string[];
  entrypoint?: readonly string[];
  cmd?: readonly string[];
  env?: Readonly<Record<string, string>>;
  workdir?: string;
}

/**
 * Builds the stand-in unless an image of the same recipe (and the same host
 * files) is cached, and returns its cache name.
 */
export function buildStandIn(recipe: StandInRecipe): Promise<string> {
  // Two packages may share a stand-in: one build for both.
  const key = JSON.stringify(recipe);
  let building = builds.get(key);
  if (!building) {
    building = build(recipe);
    builds.set(key, building);
  }
  return building;
}

const builds = new Map<string, Promise<string>>();

async function build(recipe: StandInRecipe): Promise<string> {
  const tag = `${CACHE_REPOSITORY}:${await recipeHash(recipe)}`;
  if (await imageExists(tag)) return tag;
  const context = await mkdtemp(join(tmpdir(), "town-stand-in-"));
  try {
    const root = join(context, "root");
    await mkdir(join(root, "tmp"), { recursive: true });
    for (const [path, content] of Object.entries(recipe.files ?? {})) {
      const target = join(root, path);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, content);
      if (content.startsWith("#!")) await chmod(target, 0o755);
    }
    for (const [from, to] of Object.entries(recipe.programs ?? {})) {
      await copyIn(root, from, to);
      for (const library of await librariesOf(from)) await copyIn(root, library, library);
    }
    for (const path of recipe.paths ?? []) await copyIn(root, path, path);
    await writeFile(join(context, "Containerfile"), containerfile(recipe));
    await run("podman", ["build", "--quiet", "--tag", tag, context], {
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return tag;
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

/**
 * Gives the cached stand-in `tag` the public name `image` (as the daemon
 * normalises it). Refuses when that name is held by an image that is not a
 * stand-in: a real image is never replaced.
 */
export async function tagStandIn(tag: string, image: string): Promise<void> {
  const held = await labelOf(image);
  if (held === null) {
    throw new Error(`${image} is a real image here, not a stand-in: not replacing it`);
  }
  await run("podman", ["tag", tag, image]);
}

/** Takes the public names away from the stand-ins; names held by real images are left. */
export async function untagStandIns(images: Iterable<string>): Promise<void> {
  for (const image of images) {
    if ((await labelOf(image)) === null) continue;
    await run("podman", ["untag", image, image]).catch(() => undefined);
  }
}

/** Removes cached stand-ins other than `keep`: those of recipes or host programs since changed. */
export async function pruneStandIns(keep: Iterable<string>): Promise<void> {
  const kept = new Set(keep);
  const { stdout } = await run("podman", [
    "images",
    "--format",
    "{{.Repository}}:{{.Tag}}",
    CACHE_REPOSITORY,
  ]);
  for (const tag of stdout.split("\n").filter((line) => line !== "" && !kept.has(line))) {
    await run("podman", ["rmi", tag]).catch(() => undefined);
  }
}

/** The image's stand-in label: undefined when there is no such image, null when it is not a stand-in. */
async function labelOf(image: string): Promise<string | null | undefined> {
  if (!(await imageExists(image))) return undefined;
  const { stdout } = await run("podman", [
    "image",
    "inspect",
    "--format",
    `{{index .Labels "${STAND_IN_LABEL}"}}`,
    image,
  ]);
  const label = stdout.trim();
  return label === "" || label === "<no value>" ? null : label;
}

async function imageExists(image: string): Promise<boolean> {
  try {
    await run("podman", ["image", "exists", image]);
    return true;
  } catch {
    return false;
  }
}

function containerfile(recipe: StandInRecipe): string {
  const lines = [`FROM ${TEST_IMAGE}`, "COPY root/ /"];
  lines.push(`LABEL ${STAND_IN_LABEL}=${JSON.stringify(recipe.description)}`);
  for (const [key, value] of Object.entries(recipe.env ?? {})) {
    lines.push(`ENV ${key}=${JSON.stringify(value)}`);
  }
  if (recipe.workdir) lines.push(`WORKDIR ${recipe.workdir}`);
  if (recipe.entrypoint) lines.push(`ENTRYPOINT ${JSON.stringify(recipe.entrypoint)}`);
  if (recipe.cmd) lines.push(`CMD ${JSON.stringify(recipe.cmd)}`);
  return `${lines.join("\n")}\n`;
}

/** The recipe and the size and time of each host file it copies: a changed package rebuilds. */
async function recipeHash(recipe: StandInRecipe): Promise<string> {
  const hash = createHash("sha256").update(JSON.stringify(recipe));
  for (const path of [...Object.keys(recipe.programs ?? {}), ...(recipe.paths ?? [])]) {
    const info = await stat(path).catch((error: unknown) => {
      throw new Error(
        `${path} is missing: scripts/setup-tests.sh installs the Debian package with it`,
        {
          cause: error,
        },
      );
    });
    hash.update(`${path}:${info.size}:${info.mtimeMs}`);
  }
  return hash.digest("hex").slice(0, 16);
}

/** The shared libraries (and loader) `ldd` says the program needs. */
async function librariesOf(program: string): Promise<string[]> {
  const { stdout } = await run("ldd", [program]);
  return [...stdout.matchAll(/(?:=>\s*|^\s*)(\/\S+)\s+\(0x/gm)].map((m) => m[1] ?? "");
}

/** Copies a host file or directory into the root, links followed (libraries are links). */
async function copyIn(root: string, from: string, to: string): Promise<void> {
  const target = join(root, to);
  await mkdir(dirname(target), { recursive: true });
  await cp(from, target, { recursive: true, dereference: true });
}
