/**
 * Fakes for the app controller and service tests (the runtime is
 * test/runtime/fake-runtime.ts): in-memory storage that counts every mutating call, a seeder and a template writer
 * over a map of files, a reconciler over them, and an install record.
 */
import type { CompiledPackage } from "@townos/format";
import {
  AppReconciler,
  type AppReconcilerOptions,
  type AppStorage,
  type VolumeSeeder,
} from "../../src/apps/controller.js";
import type { InstallInput } from "../../src/store/installs.js";
import type { CreateVolumeOptions, Owner } from "../../src/storage/driver.js";
import type { TemplateFile, TemplateOutcome, TemplateVolume } from "../../src/storage/seed.js";

export const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
export const BOX = "b0x";

/** The fakes answer asynchronously, as the real drivers do. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

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

/** An AppReconciler at NOW in BOX whose templates and seeds go into `files`. */
export function fakeReconciler(
  options: Pick<AppReconcilerOptions, "runtime" | "storage" | "desired"> &
    Partial<AppReconcilerOptions>,
  files = new Map<string, string>(),
): AppReconciler {
  return new AppReconciler({
    writeTemplates: fakeTemplateWriter(files),
    seeder: fakeSeeder(files),
    clock: () => NOW,
    box: BOX,
    ...options,
  });
}

/** The install of `plan` with its answers, enabled, from definition "x"; `extra` overrides. */
export function installOf(plan: CompiledPackage, extra: Partial<InstallInput> = {}): InstallInput {
  return {
    repo: plan.repo,
    name: plan.name,
    version: plan.version,
    definitionHash: "x",
    answers: plan.answers,
    enabled: true,
    plan,
    ...extra,
  };
}
