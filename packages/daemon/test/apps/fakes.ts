/**
 * Fakes for the app controller and service tests: in-memory Podman and
 * storage that count every mutating call, a seeder and a template writer
 * over a map of files.
 */
import { TownError, type CompiledPackage } from "@townos/format";
import type { AppRuntime, AppStorage, VolumeSeeder } from "../../src/apps/controller.js";
import type { SpecGenerator } from "../../src/runtime/podman/container-spec.js";
import type { NetworkSpec } from "../../src/runtime/podman/networks.js";
import type { CreateVolumeOptions, Owner } from "../../src/storage/driver.js";
import type { TemplateFile, TemplateOutcome, TemplateVolume } from "../../src/storage/seed.js";

export const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
export const BOX = "b0x";

/** The fakes answer asynchronously, as the real drivers do. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** In-memory Podman: counts every mutating call so tests can assert there were none. */
export class FakeRuntime implements AppRuntime {
  readonly containers = new Map<string, { state: string; spec: SpecGenerator }>();
  readonly networks = new Map<string, NetworkSpec>();
  readonly calls: string[] = [];
  readonly images = new Set<string>(["localhost/town/busybox:latest"]);
  failCreate: string | undefined;
  /** Exit code of every exec. */
  execExitCode = 0;

  listings = 0;
  async listContainers(labels: Readonly<Record<string, string>>) {
    await tick();
    this.listings += 1;
    return [...this.containers.values()]
      .filter(({ spec }) => Object.entries(labels).every(([k, v]) => spec.labels[k] === v))
      .map(({ spec, state }) => ({ name: spec.name, state, labels: { ...spec.labels } }));
  }
  async createContainer(spec: SpecGenerator) {
    await tick();
    this.calls.push(`create ${spec.name}`);
    if (this.failCreate === spec.name) throw new TownError("io", "disk on fire");
    if (this.containers.has(spec.name)) throw new TownError("conflict", "name taken");
    this.containers.set(spec.name, { state: "created", spec });
    return spec.name;
  }
  async startContainer(name: string) {
    await tick();
    this.calls.push(`start ${name}`);
    const container = this.containers.get(name);
    if (!container) throw new TownError("not_found", `no container ${name}`);
    container.state = "running";
    return true;
  }
  async stopContainer(name: string) {
    await tick();
    this.calls.push(`stop ${name}`);
    const container = this.containers.get(name);
    if (container) container.state = "exited";
    return container !== undefined;
  }
  async removeContainer(name: string) {
    await tick();
    this.calls.push(`remove ${name}`);
    return this.containers.delete(name);
  }
  async inspectNetwork(name: string) {
    await tick();
    const spec = this.networks.get(name);
    return spec && { labels: spec.labels ?? {} };
  }
  async createNetwork(spec: NetworkSpec) {
    await tick();
    this.calls.push(`create network ${spec.name}`);
    this.networks.set(spec.name, spec);
    return spec;
  }
  async removeNetwork(name: string) {
    await tick();
    this.calls.push(`remove network ${name}`);
    return this.networks.delete(name);
  }
  async imageExists(reference: string) {
    await tick();
    return this.images.has(reference);
  }
  async pullImage(reference: string, options: { onProgress?: (line: string) => void }) {
    await tick();
    this.calls.push(`pull ${reference}`);
    if (reference.includes("missing")) throw new TownError("not_found", "no such image");
    options.onProgress?.("Copying blob 1");
    this.images.add(reference);
    return { id: "x", images: [reference] };
  }
  async exec(name: string, command: readonly string[]) {
    await tick();
    this.calls.push(`exec ${name} ${command.join(" ")}`);
    return { exitCode: this.execExitCode, stdout: "", stderr: "oops", truncated: false };
  }
}

export class FakeStorage implements AppStorage {
  readonly volumes = new Map<string, CreateVolumeOptions | undefined>();
  readonly calls: string[] = [];
  readonly root = "/storage";
  readonly capabilities = { quotas: true };
  async list() {
    await tick();
    return [...this.volumes.keys()].sort().map((name) => ({ name, path: this.path(name) }));
  }
  async attributes(name: string) {
    await tick();
    const options = this.volumes.get(name);
    if (!this.volumes.has(name)) return undefined;
    return { quota: options?.quota ?? null, owner: options?.owner ?? { uid: 0, gid: 0 } };
  }
  async setQuota(name: string, quota: number | null) {
    await tick();
    this.calls.push(`quota ${name} ${quota ?? "none"}`);
    this.volumes.set(name, { ...this.volumes.get(name), quota });
  }
  async setOwner(name: string, owner: Owner) {
    await tick();
    this.calls.push(`owner ${name} ${owner.uid}:${owner.gid}`);
    this.volumes.set(name, { ...this.volumes.get(name), owner });
  }
  path(name: string) {
    return `/storage/volumes/${name}`;
  }
  async exists(name: string) {
    await tick();
    return this.volumes.has(name);
  }
  async create(name: string, options?: CreateVolumeOptions) {
    await tick();
    this.calls.push(`create ${name}`);
    this.volumes.set(name, options);
  }
  async remove(name: string) {
    await tick();
    this.calls.push(`remove ${name}`);
    return this.volumes.delete(name);
  }
  async rename(from: string, to: string) {
    await tick();
    this.calls.push(`rename ${from} ${to}`);
    this.volumes.set(to, this.volumes.get(from));
    this.volumes.delete(from);
  }
}

/** Seeds by writing a marker file into `files` when the volume holds none yet. */
export function fakeSeeder(files: Map<string, string>): VolumeSeeder {
  const seed = async (dir: string, what: string): Promise<boolean> => {
    await tick();
    if ([...files.keys()].some((path) => path.startsWith(`${dir}/`))) return false;
    files.set(`${dir}/seeded`, what);
    return true;
  };
  return {
    fromGit: (dir, source) => seed(dir, source.url),
    fromImage: (dir, source) => seed(dir, `${source.image}:${source.directory}`),
  };
}

/** A template writer over `files` (path → content) that, like the real one, keeps what is there. */
export function fakeTemplateWriter(files: Map<string, string>) {
  return async (
    templates: readonly TemplateFile[],
    volumes: Readonly<Record<string, TemplateVolume>>,
  ): Promise<TemplateOutcome[]> => {
    await tick();
    return templates.map((file) => {
      const path = `${volumes[file.volume]?.dir ?? "?"}/${file.path}`;
      const written = !files.has(path);
      if (written) files.set(path, file.content);
      return { volume: file.volume, path: file.path, written };
    });
  };
}

/** A plan as compiled before names were injective: no scope, dependencies `<parent>-<key>` under their own repository. */
export function legacyPlan(plan: CompiledPackage): CompiledPackage {
  const instance = plan.instance.replaceAll("--", "-");
  const legacy: Partial<CompiledPackage> = {
    ...plan,
    instance,
    hostname: `town-${plan.repo}-${instance}`,
    dependencies: plan.dependencies.map((dependency) => ({
      ...legacyPlan(dependency),
      key: dependency.key,
    })),
  };
  delete legacy.scope;
  return legacy as CompiledPackage;
}
