import assert from "node:assert/strict";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { TownError, type CompiledPackage } from "@townos/format";
import { readTree, repoRoot, testSystem } from "../../../format/test/support.js";
import { compileExample } from "../../test/runtime/examples.js";
import { Catalog, type RepositoryFetcher } from "../catalog/catalog.js";
import { LABEL_SPEC_HASH, type SpecGenerator } from "../runtime/podman/container-spec.js";
import type { NetworkSpec } from "../runtime/podman/networks.js";
import type { CreateVolumeOptions, Owner } from "../storage/driver.js";
import type { TemplateFile, TemplateOutcome, TemplateVolume } from "../storage/seed.js";
import { openDatabase } from "../store/database.js";
import { Installs } from "../store/installs.js";
import { Repositories } from "../store/repositories.js";
import { Apps, portHolders } from "./apps.js";
import { appNetworkName } from "./names.js";
import {
  appKey,
  AppReconciler,
  LABEL_APP,
  LABEL_BOX,
  parseAppKey,
  type AppRuntime,
  type AppStorage,
  type ReconcileProgress,
  type VolumeSeeder,
} from "./reconciler.js";

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
const BOX = "b0x";

// --- fakes: in-memory Podman and storage that count every mutating call ---

/** The fakes answer asynchronously, as the real drivers do. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** In-memory Podman: counts every mutating call so tests can assert there were none. */
class FakeRuntime implements AppRuntime {
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

class FakeStorage implements AppStorage {
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
function fakeSeeder(files: Map<string, string>): VolumeSeeder {
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
function fakeTemplateWriter(files: Map<string, string>) {
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
function legacyPlan(plan: CompiledPackage): CompiledPackage {
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

describe("AppReconciler", () => {
  let runtime: FakeRuntime;
  let storage: FakeStorage;
  let files: Map<string, string>;
  let installs: Installs;
  let reconciler: AppReconciler;

  const install = (plan: CompiledPackage, enabled = true): void => {
    installs.put({
      repo: plan.repo,
      name: plan.name,
      version: plan.version,
      definitionHash: "x",
      answers: plan.answers,
      enabled,
      plan,
    });
  };
  const mutatingCalls = (): number => runtime.calls.length + storage.calls.length;

  beforeEach(() => {
    runtime = new FakeRuntime();
    storage = new FakeStorage();
    files = new Map();
    installs = new Installs(openDatabase(":memory:"), () => NOW);
    reconciler = new AppReconciler({
      runtime,
      storage,
      writeTemplates: fakeTemplateWriter(files),
      seeder: fakeSeeder(files),
      desired: installs,
      clock: () => NOW,
      box: BOX,
    });
  });

  it("creates network, volumes, templates and containers, dependencies first, and starts them", async () => {
    const plan = compileExample("guestbook", "1.0", { feedport: "9091" });
    install(plan);
    const report = await reconciler.reconcile("default", "guestbook");
    assert.deepEqual(report.mutations, [
      "create network town-default--guestbook",
      "create volume pkg.default.guestbook--store.data",
      "write template data:serve.sh",
      "create volume pkg.default.guestbook.www",
      "create volume pkg.default.guestbook.www-uploads",
      "write template www:index.html",
      "create container town-default--guestbook--store",
      "start container town-default--guestbook--store",
      "create container town-default--guestbook",
      "start container town-default--guestbook",
    ]);
    // Dependencies before the app; the dependency joins the app network under its key.
    assert.deepEqual(
      [...runtime.containers.keys()],
      ["town-default--guestbook--store", "town-default--guestbook"],
    );
    const store = runtime.containers.get("town-default--guestbook--store");
    assert.ok(store);
    assert.deepEqual(store.spec.networks, { "town-default--guestbook": { aliases: ["store"] } });
    assert.equal(store.spec.labels[LABEL_APP], "default/guestbook");
    assert.equal(store.state, "running");
    assert.deepEqual(
      runtime.containers.get("town-default--guestbook")?.spec.portmappings.map((p) => p.host_ip),
      [""],
    );
    assert.ok(files.has("/storage/volumes/pkg.default.guestbook.www/index.html"));
  });

  it("makes no mutating call on a pass over an unchanged system", async () => {
    install(compileExample("guestbook", "1.0", { feedport: "9091" }));
    await reconciler.reconcile("default", "guestbook");
    const before = mutatingCalls();
    const report = await reconciler.reconcile("default", "guestbook");
    assert.deepEqual(report.mutations, []);
    assert.equal(mutatingCalls(), before);
  });

  it("recreates a container whose spec hash changed and leaves the others alone", async () => {
    install(compileExample("hello", "1.0"));
    await reconciler.reconcile("default", "hello");
    const container = runtime.containers.get("town-default--hello");
    assert.ok(container);
    container.spec.labels[LABEL_SPEC_HASH] = "stale";
    const report = await reconciler.reconcile("default", "hello");
    assert.deepEqual(report.mutations, [
      "remove container town-default--hello",
      "create container town-default--hello",
      "start container town-default--hello",
    ]);
    assert.notEqual(
      runtime.containers.get("town-default--hello")?.spec.labels[LABEL_SPEC_HASH],
      "stale",
    );
  });

  it("applies a changed plan by recreating only the changed container", async () => {
    const plan = compileExample("guestbook", "1.0", { feedport: "9091" });
    install(plan);
    await reconciler.reconcile("default", "guestbook");
    install({ ...plan, environment: { ...plan.environment, GREETING: "hi" } });
    const report = await reconciler.reconcile("default", "guestbook");
    assert.deepEqual(report.mutations, [
      "remove container town-default--guestbook",
      "create container town-default--guestbook",
      "start container town-default--guestbook",
    ]);
  });

  it("recreates a container removed by hand and starts one that stopped", async () => {
    install(compileExample("guestbook", "1.0", { feedport: "9091" }));
    await reconciler.reconcile("default", "guestbook");
    runtime.containers.delete("town-default--guestbook");
    const store = runtime.containers.get("town-default--guestbook--store");
    assert.ok(store);
    store.state = "exited";
    const report = await reconciler.reconcile("default", "guestbook");
    assert.deepEqual(report.mutations, [
      "start container town-default--guestbook--store",
      "create container town-default--guestbook",
      "start container town-default--guestbook",
    ]);
  });

  it("stops the containers of a disabled app", async () => {
    const plan = compileExample("hello", "1.0");
    install(plan);
    await reconciler.reconcile("default", "hello");
    install(plan, false);
    const report = await reconciler.reconcile("default", "hello");
    assert.deepEqual(report.mutations, ["stop container town-default--hello"]);
  });

  it("uninstall removes containers and network and moves the volumes aside", async () => {
    install(compileExample("guestbook", "1.0", { feedport: "9091" }));
    await reconciler.reconcile("default", "guestbook");
    assert.equal(installs.remove("default", "guestbook", false), true);
    const report = await reconciler.reconcile("default", "guestbook");
    assert.deepEqual(runtime.containers.size, 0);
    assert.deepEqual(runtime.networks.size, 0);
    assert.deepEqual([...storage.volumes.keys()].sort(), [
      "uninstalled.default.guestbook--store.data.20261127T120000Z",
      "uninstalled.default.guestbook.www-uploads.20261127T120000Z",
      "uninstalled.default.guestbook.www.20261127T120000Z",
    ]);
    assert.ok(report.mutations.includes("remove network town-default--guestbook"));
    assert.equal(installs.removal("default", "guestbook"), undefined);
    // Done: the next pass changes nothing.
    assert.deepEqual((await reconciler.reconcile("default", "guestbook")).mutations, []);
  });

  it("uninstall with purge deletes the volumes", async () => {
    install(compileExample("hello", "1.0"));
    await reconciler.reconcile("default", "hello");
    installs.remove("default", "hello", true);
    const report = await reconciler.reconcile("default", "hello");
    assert.deepEqual(report.mutations, [
      "remove container town-default--hello",
      "remove network town-default--hello",
      "delete volume pkg.default.hello.www",
    ]);
    assert.equal(storage.volumes.size, 0);
  });

  it("a failed uninstall keeps its intent and converges on the next pass", async () => {
    install(compileExample("hello", "1.0"));
    await reconciler.reconcile("default", "hello");
    installs.remove("default", "hello", false);
    const rename = storage.rename.bind(storage);
    storage.rename = () => Promise.reject(new TownError("io", "device busy"));
    await assert.rejects(reconciler.reconcile("default", "hello"), (error: TownError) => {
      assert.equal(error.code, "io");
      assert.equal(
        error.message,
        "uninstall hello: move volume pkg.default.hello.www to uninstalled.default.hello.www.20261127T120000Z: device busy",
      );
      return true;
    });
    assert.ok(installs.removal("default", "hello"));
    storage.rename = rename;
    await reconciler.reconcile("default", "hello");
    assert.deepEqual(
      [...storage.volumes.keys()],
      ["uninstalled.default.hello.www.20261127T120000Z"],
    );
    assert.equal(installs.removal("default", "hello"), undefined);
  });

  it("names the failing step and keeps the error's code", async () => {
    install(compileExample("hello", "1.0"));
    runtime.failCreate = "town-default--hello";
    await assert.rejects(reconciler.reconcile("default", "hello"), (error: TownError) => {
      assert.equal(error.code, "io");
      assert.equal(
        error.message,
        "install hello: create container town-default--hello: disk on fire",
      );
      return true;
    });
  });

  it("cleans up leftover containers of an app that is neither installed nor being removed", async () => {
    install(compileExample("hello", "1.0"));
    await reconciler.reconcile("default", "hello");
    installs.finishRemoval("default", "hello");
    installs.remove("default", "hello", false);
    installs.finishRemoval("default", "hello");
    const report = await reconciler.reconcile("default", "hello");
    assert.deepEqual(report.mutations, [
      "remove container town-default--hello",
      "remove network town-default--hello",
    ]);
    // Volumes are data: only an explicit uninstall touches them.
    assert.deepEqual([...storage.volumes.keys()], ["pkg.default.hello.www"]);
  });

  it("stops the app before its dependencies, and starts dependencies first", async () => {
    install(compileExample("guestbook", "1.0", { feedport: "9091" }));
    await reconciler.reconcile("default", "guestbook");
    installs.setRunning("default", "guestbook", false);
    assert.deepEqual((await reconciler.reconcile("default", "guestbook")).mutations, [
      "stop container town-default--guestbook",
      "stop container town-default--guestbook--store",
    ]);
    installs.setRunning("default", "guestbook", true);
    assert.deepEqual((await reconciler.reconcile("default", "guestbook")).mutations, [
      "start container town-default--guestbook--store",
      "start container town-default--guestbook",
    ]);
  });

  it("seeds empty volumes from images and git before the container first starts, never twice", async () => {
    const plan = compileExample("hello", "1.0");
    install({
      ...plan,
      archives: [{ image: "localhost/town/site:1", directory: "/site", volume: "www" }],
      gitSources: [{ url: "http://git.invalid/site.git", branch: null, volume: "www" }],
    });
    const progress: ReconcileProgress[] = [];
    const report = await reconciler.reconcile("default", "hello", (p) => progress.push(p));
    assert.deepEqual(report.mutations.slice(0, 4), [
      "create network town-default--hello",
      "create volume pkg.default.hello.www",
      "seed volume www from localhost/town/site:1:/site",
      "write template www:index.html",
    ]);
    // The git source found the volume full: nothing overwritten.
    assert.equal(
      files.get("/storage/volumes/pkg.default.hello.www/seeded"),
      "localhost/town/site:1:/site",
    );
    assert.deepEqual(
      progress
        .filter((p) => p.state === "started")
        .map((p) => p.step)
        .slice(1, 4),
      [
        "create volume pkg.default.hello.www",
        "seed volume www from localhost/town/site:1:/site",
        "seed volume www from http://git.invalid/site.git",
      ],
    );
    assert.deepEqual((await reconciler.reconcile("default", "hello")).mutations, []);
  });

  it("pulls a missing image with progress, and a missing one everywhere fails for good", async () => {
    const plan = compileExample("hello", "1.0");
    install({ ...plan, image: "registry.example/web:2" });
    const details: string[] = [];
    await reconciler.reconcile("default", "hello", (p) => {
      if (p.detail) details.push(p.detail);
    });
    assert.ok(runtime.calls.includes("pull registry.example/web:2"));
    assert.deepEqual(details, ["Copying blob 1"]);
    install({ ...plan, image: "registry.example/missing:1" });
    await assert.rejects(reconciler.reconcile("default", "hello"), (error: TownError) => {
      assert.equal(error.code, "not_found");
      assert.equal(error.terminal, true);
      assert.equal(
        error.message,
        "install hello: pull image registry.example/missing:1: no such image",
      );
      return true;
    });
  });

  it("puts back a quota or owner changed by hand", async () => {
    reconciler = new AppReconciler({
      runtime,
      storage,
      writeTemplates: fakeTemplateWriter(files),
      seeder: fakeSeeder(files),
      desired: installs,
      clock: () => NOW,
      box: BOX,
      volumeCheckMs: 0,
    });
    install(compileExample("hello", "1.0"));
    await reconciler.reconcile("default", "hello");
    assert.deepEqual((await reconciler.reconcile("default", "hello")).mutations, []);
    storage.volumes.set("pkg.default.hello.www", { quota: 1024 ** 3 });
    assert.deepEqual((await reconciler.reconcile("default", "hello")).mutations, [
      `set quota of pkg.default.hello.www`,
    ]);
    assert.equal(storage.volumes.get("pkg.default.hello.www")?.quota, 64 * 1024 ** 2);
  });

  it("runs post_update commands once after an upgrade, and fails the pass when one fails", async () => {
    const plan = { ...compileExample("hello", "1.0"), postUpdate: ["migrate --all"] };
    installs.put({
      repo: "default",
      name: "hello",
      version: "1.0",
      definitionHash: "x",
      answers: {},
      enabled: true,
      plan,
      postUpdateFor: plan.hash,
    });
    runtime.execExitCode = 3;
    await assert.rejects(reconciler.reconcile("default", "hello"), (error: TownError) => {
      assert.equal(error.message, 'install hello: post_update "migrate --all" exited with 3: oops');
      return true;
    });
    runtime.execExitCode = 0;
    const report = await reconciler.reconcile("default", "hello");
    assert.deepEqual(report.mutations, ['run post_update "migrate --all"']);
    assert.ok(runtime.calls.includes("exec town-default--hello /bin/sh -c migrate --all"));
    assert.equal(installs.get("default", "hello")?.postUpdateFor, null);
    assert.deepEqual((await reconciler.reconcile("default", "hello")).mutations, []);
  });

  it("reattaches the uninstalled volumes an install asked for instead of making new ones", async () => {
    const plan = compileExample("hello", "1.0");
    install(plan);
    await reconciler.reconcile("default", "hello");
    installs.remove("default", "hello", false);
    await reconciler.reconcile("default", "hello");
    const aside = "uninstalled.default.hello.www.20261127T120000Z";
    assert.equal(installs.uninstalledVolumeVersion(aside), "1.0");
    installs.put({
      repo: "default",
      name: "hello",
      version: "1.1",
      definitionHash: "x",
      answers: {},
      enabled: true,
      plan,
      reused: [aside],
    });
    const report = await reconciler.reconcile("default", "hello");
    assert.equal(report.mutations[1], `reattach volume pkg.default.hello.www from ${aside}`);
    assert.deepEqual([...storage.volumes.keys()], ["pkg.default.hello.www"]);
    assert.equal(installs.uninstalledVolumeVersion(aside), undefined);
  });
});

describe("app keys and names", () => {
  it("round-trips keys and refuses others", () => {
    assert.deepEqual(parseAppKey(appKey("default", "hello")), { repo: "default", name: "hello" });
    assert.equal(parseAppKey("page/x"), undefined);
    assert.equal(parseAppKey("app/a/b/c"), undefined);
    assert.equal(appNetworkName("default", "hello"), "town-default--hello");
  });
});

describe("Apps: install and uninstall requests", () => {
  let tld: string;
  let hostPorts: Set<number>;
  let runtime: FakeRuntime;
  let storage: FakeStorage;
  let installs: Installs;
  let apps: Apps;
  const exampleFiles = readTree(join(repoRoot, "examples/repository"));

  beforeEach(async () => {
    const db = openDatabase(":memory:");
    const clock = (): number => NOW;
    const repositories = new Repositories(db, clock);
    repositories.add({ name: "default", url: "https://packages.invalid/default" });
    installs = new Installs(db, clock);
    const examples = await exampleFiles;
    // A package whose name is what guestbook's dependency was called before names were injective.
    const keyvalue = examples.find((file) => file.path === "packages/keyvalue/1.0.yaml");
    assert.ok(keyvalue);
    const files = [...examples, { path: "packages/guestbook-store/1.0.yaml", text: keyvalue.text }];
    const fetcher: RepositoryFetcher = {
      sync: () => Promise.reject(new Error("offline in this test")),
      readLocal: () => Promise.resolve({ commit: "c1", files, changedPaths: null, skipped: [] }),
      remove: () => Promise.resolve(),
    };
    const catalog = new Catalog(db, repositories, installs, fetcher, "/nonexistent", clock);
    await catalog.loadLocal();
    hostPorts = new Set();
    tld = "home";
    apps = new Apps({
      installs,
      catalog,
      tld: () => tld,
      system: () => testSystem,
      box: BOX,
      hostPorts: () => Promise.resolve(hostPorts),
    });
    runtime = new FakeRuntime();
    storage = new FakeStorage();
  });

  afterEach(async () => {
    await apps.stop();
  });

  const attach = (): void => {
    const files = new Map<string, string>();
    apps.attach({
      runtime,
      storage,
      reconciler: new AppReconciler({
        runtime,
        storage,
        writeTemplates: fakeTemplateWriter(files),
        seeder: fakeSeeder(files),
        desired: installs,
        clock: () => NOW,
        box: BOX,
        held: (repo, name) => apps.isHeld(repo, name),
      }),
    });
  };

  it("answers unavailable, with the reason, until a runtime is attached", async () => {
    apps.setUnavailable("podman is not installed");
    await assert.rejects(apps.list(), (error: TownError) => {
      assert.equal(error.code, "unavailable");
      assert.match(error.message, /podman is not installed/);
      return true;
    });
    await assert.rejects(
      apps.install({ repo: "default", name: "hello", answers: {} }),
      (error: TownError) => error.code === "unavailable",
    );
    assert.deepEqual(installs.list(), []);
  });

  it("refuses invalid answers with every issue before recording or creating anything", async () => {
    attach();
    await assert.rejects(
      apps.install({ repo: "default", name: "guestbook", answers: { feedport: "no" } }),
      (error: TownError) => {
        assert.equal(error.code, "invalid_answers");
        assert.ok(error.issues.some((issue) => issue.question === "feedport"));
        return true;
      },
    );
    assert.deepEqual(installs.list(), []);
    assert.deepEqual(runtime.calls, []);
  });

  it("installs, answers after the first reconcile, and refuses a second install", async () => {
    attach();
    const { app, settled } = await apps.install({ repo: "default", name: "hello", answers: {} });
    assert.equal(settled, true);
    assert.equal(app.version, "1.1");
    assert.deepEqual(app.containers, [{ name: "town-default--hello", state: "running" }]);
    assert.deepEqual(
      app.volumes.map((v) => `${v.instance}/${v.name}`),
      ["hello/www"],
    );
    assert.equal(app.lastError, null);
    assert.equal(installs.get("default", "hello")?.plan?.name, "hello");
    await assert.rejects(
      apps.install({ repo: "default", name: "hello", answers: {} }),
      (error: TownError) => error.code === "conflict",
    );
  });

  it("keeps the host ports of installed apps taken", async () => {
    attach();
    await apps.install({
      repo: "default",
      name: "keyvalue",
      version: "1.0",
      answers: { port: "7379" },
    });
    assert.deepEqual([...portHolders(installs.list())], [[7379, "default/keyvalue"]]);
    await assert.rejects(
      apps.install({ repo: "default", name: "guestbook", answers: { feedport: "7379" } }),
      (error: TownError) => {
        assert.equal(error.code, "invalid_answers");
        assert.match(error.message, /port 7379 is already in use \(by default\/keyvalue\)/);
        return true;
      },
    );
    // A port some other program listens on is refused too, before anything is made.
    hostPorts.add(9091);
    await assert.rejects(
      apps.install({ repo: "default", name: "guestbook", answers: { feedport: "9091" } }),
      (error: TownError) =>
        /9091 is already in use \(by a program on this host\)/.test(error.message),
    );
    assert.deepEqual(
      runtime.calls.filter((call) => call.includes("guestbook")),
      [],
    );
  });

  it("records a reconcile error on the app and clears it once a pass succeeds", async () => {
    attach();
    runtime.failCreate = "town-default--hello";
    const { app } = await apps.install({ repo: "default", name: "hello", answers: {} });
    assert.equal(
      app.lastError,
      "install hello: create container town-default--hello: disk on fire",
    );
    assert.deepEqual(app.containers, [{ name: "town-default--hello", state: "missing" }]);
    runtime.failCreate = undefined;
    await apps.resync();
    await apps.idle();
    assert.equal((await apps.view("default", "hello")).lastError, null);
  });

  it("uninstalls: the volumes move aside and the app is gone", async () => {
    attach();
    await assert.rejects(
      apps.uninstall("default", "hello", false),
      (error: TownError) => error.code === "not_found",
    );
    await apps.install({ repo: "default", name: "hello", answers: {} });
    assert.equal(await apps.uninstall("default", "hello", false), true);
    assert.deepEqual(
      [...storage.volumes.keys()],
      ["uninstalled.default.hello.www.20261127T120000Z"],
    );
    assert.deepEqual(runtime.containers.size, 0);
    assert.deepEqual(await apps.list(), []);
    assert.equal(installs.removal("default", "hello"), undefined);
  });

  it("a first reconcile that fails for good removes what it made and names the step", async () => {
    attach();
    runtime.images.clear();
    const catalogImage = "localhost/town/busybox:latest";
    runtime.pullImage = (reference) => {
      runtime.calls.push(`pull ${reference}`);
      return Promise.reject(new TownError("not_found", "no such image"));
    };
    await assert.rejects(
      apps.install({ repo: "default", name: "hello", answers: {} }),
      (error: TownError) => {
        assert.equal(error.code, "not_found");
        assert.equal(error.message, `install hello: pull image ${catalogImage}: no such image`);
        return true;
      },
    );
    assert.deepEqual(installs.list(), []);
    assert.equal(installs.removal("default", "hello"), undefined);
    assert.equal(storage.volumes.size, 0);
    assert.equal(runtime.containers.size, 0);
    assert.equal(runtime.networks.size, 0);
  });

  it("two concurrent installs of one app: exactly one is recorded, the other gets a conflict", async () => {
    attach();
    const request = { repo: "default", name: "guestbook", answers: { feedport: "9091" } };
    const outcomes = await Promise.allSettled([apps.install(request), apps.install(request)]);
    const won = outcomes.filter((outcome) => outcome.status === "fulfilled");
    const lost = outcomes.flatMap((outcome) => (outcome.status === "rejected" ? [outcome] : []));
    assert.equal(won.length, 1);
    assert.equal(lost.length, 1);
    assert.equal((lost[0]?.reason as TownError).code, "conflict");
    // The secret the store's volume was set up with is the one recorded: the loser changed nothing.
    const password = installs.get("default", "guestbook")?.plan?.dependencies[0]?.answers[
      "password"
    ];
    const store = runtime.containers.get("town-default--guestbook--store");
    assert.equal(store?.spec.env["KV_PASSWORD"], password);
    assert.equal(storage.calls.filter((call) => call.startsWith("create")).length, 3);
  });

  it("an upgrade of an app uninstalled meanwhile fails with not_found and does not bring it back", async () => {
    attach();
    await apps.install({ repo: "default", name: "hello", version: "1.0", answers: {} });
    const upgrade = apps.upgrade({ repo: "default", name: "hello" });
    const uninstall = apps.uninstall("default", "hello", false);
    await assert.rejects(upgrade, (error: TownError) => error.code === "not_found");
    await uninstall;
    assert.equal(installs.get("default", "hello"), undefined);
    await apps.idle();
    assert.equal(runtime.containers.size, 0);
  });

  it("refuses an install naming another app's objects before anything is made, naming the owner", async () => {
    attach();
    // guestbook installed before names were injective: its dependency was guestbook-store.
    const old = legacyPlan(compileExample("guestbook", "1.0", { feedport: "9091" }));
    installs.put({
      repo: "default",
      name: "guestbook",
      version: "1.0",
      definitionHash: "old",
      answers: old.answers,
      enabled: true,
      plan: old,
    });
    await apps.resync();
    await apps.idle();
    assert.ok(storage.volumes.has("pkg.default.guestbook-store.data"));
    const before = [...runtime.calls, ...storage.calls];
    await assert.rejects(
      apps.install({ repo: "default", name: "guestbook-store", answers: {} }),
      (error: TownError) => {
        assert.equal(error.code, "conflict");
        assert.match(error.message, /belongs to default\/guestbook/);
        return true;
      },
    );
    assert.deepEqual([...runtime.calls, ...storage.calls], before);
    assert.equal(installs.get("default", "guestbook-store"), undefined);
    assert.ok(storage.volumes.has("pkg.default.guestbook-store.data"));
  });

  it("an upgrade of an app installed before names were injective moves its volumes and network", async () => {
    attach();
    const old = legacyPlan(compileExample("guestbook", "1.0", { feedport: "9091" }));
    installs.put({
      repo: "default",
      name: "guestbook",
      version: "1.0",
      definitionHash: "old",
      answers: { feedport: "9091" },
      enabled: true,
      plan: old,
    });
    await apps.resync();
    await apps.idle();
    assert.deepEqual([...runtime.networks.keys()], ["town-default-guestbook"]);
    storage.calls.length = 0;
    await apps.upgrade({ repo: "default", name: "guestbook" });
    assert.deepEqual(storage.calls, [
      "rename pkg.default.guestbook-store.data pkg.default.guestbook--store.data",
    ]);
    assert.deepEqual([...storage.volumes.keys()].sort(), [
      "pkg.default.guestbook--store.data",
      "pkg.default.guestbook.www",
      "pkg.default.guestbook.www-uploads",
    ]);
    assert.deepEqual([...runtime.networks.keys()], ["town-default--guestbook"]);
    assert.deepEqual([...runtime.containers.keys()].sort(), [
      "town-default--guestbook",
      "town-default--guestbook--store",
    ]);
  });

  it("an upgrade and a reinstall take the saved answers again, durations included", async () => {
    attach();
    await apps.install({
      repo: "default",
      name: "guestbook",
      version: "1.0",
      answers: { feedport: "9092", retention: "2d" },
    });
    assert.equal(installs.get("default", "guestbook")?.answers["retention"], "172800");
    await apps.upgrade({ repo: "default", name: "guestbook", answers: { moderated: "false" } });
    assert.equal(installs.get("default", "guestbook")?.answers["retention"], "172800");
    assert.equal(apps.lastAnswers("default", "guestbook")?.answers["retention"], "172800s");
  });

  it("a failed install's undo deletes only the volumes it made, never one that was there", async () => {
    attach();
    // Left by someone else (a crash, a hand-made copy): not this install's to delete.
    await storage.create("pkg.default.guestbook.www", { quota: null });
    runtime.images.clear();
    runtime.pullImage = () => Promise.reject(new TownError("not_found", "no such image"));
    await assert.rejects(
      apps.install({ repo: "default", name: "guestbook", answers: { feedport: "9091" } }),
      (error: TownError) => error.code === "not_found",
    );
    assert.deepEqual([...storage.volumes.keys()], ["pkg.default.guestbook.www"]);
    assert.equal(installs.removal("default", "guestbook"), undefined);
  });

  it("reinstall takes back the kept volumes, or those of the version asked for, and the preview says so", async () => {
    attach();
    await apps.install({ repo: "default", name: "hello", version: "1.0", answers: {} });
    await apps.uninstall("default", "hello", false);
    const kept = "uninstalled.default.hello.www.20261127T120000Z";
    const preview = await apps.preview({ repo: "default", name: "hello", answers: {} });
    assert.deepEqual(
      preview.volumes.map((v) => [v.volume, v.action, v.from]),
      [["pkg.default.hello.www", "reuse", kept]],
    );
    assert.equal(preview.disk.quotaBytes, 0);
    assert.deepEqual(
      (
        await apps.preview({
          repo: "default",
          name: "hello",
          answers: {},
          importFromVersion: "0.9",
        })
      ).volumes.map((v) => v.action),
      ["create"],
    );
    const fresh = await apps.preview({
      repo: "default",
      name: "hello",
      answers: {},
      reuseVolumes: false,
    });
    assert.deepEqual(fresh.disk.quotaBytes, 64 * 1024 ** 2);
    assert.equal(fresh.disk.quotasEnforced, true);
    await apps.install({ repo: "default", name: "hello", answers: {}, importFromVersion: "1.0" });
    assert.deepEqual([...storage.volumes.keys()], ["pkg.default.hello.www"]);
    assert.deepEqual(apps.lastAnswers("default", "hello")?.version, "1.1");
  });

  it("a preview with bad answers lists the questions and changes nothing", async () => {
    attach();
    const preview = await apps.preview({
      repo: "default",
      name: "guestbook",
      answers: { feedport: "no" },
    });
    assert.deepEqual(preview.questionsToAnswer, ["feedport"]);
    assert.deepEqual(
      preview.answerProblems.map((issue) => [issue.question, issue.message]),
      [["feedport", '"no" is not a port number']],
    );
    assert.deepEqual(runtime.calls, []);
    assert.deepEqual(storage.calls, []);
  });

  it("upgrades in place keeping volumes and answers, then runs post_update once", async () => {
    attach();
    await apps.install({
      repo: "default",
      name: "hello",
      version: "1.0",
      answers: { title: "Mine" },
    });
    const { app } = await apps.upgrade({ repo: "default", name: "hello" });
    assert.equal(app.version, "1.1");
    assert.equal(app.postUpdatePending, false);
    assert.equal(installs.get("default", "hello")?.answers["title"], "Mine");
    assert.ok(
      runtime.calls.includes(
        "exec town-default--hello /bin/sh -c echo upgraded to 1.1 > /www/upgraded.txt",
      ),
    );
    assert.deepEqual(
      storage.calls.filter((call) => call.startsWith("create")),
      ["create pkg.default.hello.www"],
    );
    await assert.rejects(
      apps.upgrade({ repo: "default", name: "hello" }),
      (error: TownError) => error.code === "conflict",
    );
  });

  it("start, stop, enable, disable and restart change the desired state and converge", async () => {
    attach();
    await apps.install({ repo: "default", name: "hello", answers: {} });
    let { app } = await apps.setState("default", "hello", "stop");
    assert.deepEqual([app.running, app.enabled, app.containers[0]?.state], [false, true, "exited"]);
    ({ app } = await apps.setState("default", "hello", "start"));
    assert.equal(app.containers[0]?.state, "running");
    ({ app } = await apps.setState("default", "hello", "disable"));
    assert.deepEqual(
      [app.running, app.enabled, app.containers[0]?.state],
      [false, false, "exited"],
    );
    ({ app } = await apps.setState("default", "hello", "enable"));
    assert.deepEqual([app.running, app.enabled, app.containers[0]?.state], [true, true, "running"]);
    runtime.calls.length = 0;
    ({ app } = await apps.restart("default", "hello"));
    assert.deepEqual(runtime.calls, ["stop town-default--hello", "start town-default--hello"]);
    await assert.rejects(
      apps.setState("default", "nope", "start"),
      (error: TownError) => error.code === "not_found",
    );
  });

  it("holds an app stopped while its volume is worked on, then starts it again", async () => {
    attach();
    await apps.install({ repo: "default", name: "hello", answers: {} });
    const release = await apps.holdVolume("pkg.default.hello.www");
    let app = await apps.view("default", "hello");
    assert.deepEqual([app.held, app.containers[0]?.state], [true, "exited"]);
    await release();
    app = await apps.view("default", "hello");
    assert.deepEqual([app.held, app.containers[0]?.state], [false, "running"]);
    // Not a package volume of an installed app: nothing to hold.
    await (
      await apps.holdVolume("user.photos")
    )();
  });

  it("a resync removes containers left by an app nobody installed", async () => {
    attach();
    await apps.idle();
    runtime.containers.set("town-default--ghost", {
      state: "running",
      spec: {
        name: "town-default--ghost",
        labels: { [LABEL_APP]: "default/ghost", [LABEL_BOX]: BOX },
      } as unknown as SpecGenerator,
    });
    await apps.resync();
    await apps.idle();
    assert.equal(runtime.containers.has("town-default--ghost"), false);
  });

  it("a resync lists Podman's containers once for all apps, and changes nothing when converged", async () => {
    attach();
    await apps.install({ repo: "default", name: "hello", answers: {} });
    await apps.install({ repo: "default", name: "keyvalue", answers: { port: "7379" } });
    await apps.idle();
    runtime.listings = 0;
    runtime.calls.length = 0;
    await apps.resync();
    await apps.idle();
    assert.equal(runtime.listings, 1);
    assert.deepEqual(runtime.calls, []);
    // The listing serves one pass per app only: the next request lists again.
    await apps.setState("default", "hello", "start");
    assert.equal(runtime.listings, 3);
  });

  it("tells networking the names, the ingress port and each port's exposure, live", async () => {
    attach();
    let changes = 0;
    apps.onNetworkChange(() => (changes += 1));
    await apps.install({ repo: "default", name: "hello", answers: {} });
    await apps.install({ repo: "default", name: "keyvalue", answers: { port: "7379" } });
    assert.ok(changes > 0);
    const inputs = apps.networkInputs(5309);
    const hello = inputs.apps.find((app) => app.name === "hello");
    const ingressPort = installs.get("default", "hello")?.ingressPorts["hello"];
    assert.ok(ingressPort !== undefined && ingressPort >= 10000);
    assert.deepEqual(hello?.ingress, { host: "hello.default.home", port: ingressPort });
    assert.deepEqual(hello.names, ["hello.default.home"]);
    // The ingress's port is published on loopback only and not listed as the app's own.
    const spec = runtime.containers.get("town-default--hello")?.spec;
    assert.deepEqual(
      spec?.portmappings.map((p) => [p.host_ip, p.host_port]),
      [["127.0.0.1", ingressPort]],
    );
    assert.deepEqual((await apps.view("default", "hello")).ports, []);
    assert.deepEqual((await apps.view("default", "hello")).urls, ["https://hello.default.home/"]);
    const kv = () => apps.networkInputs(5309).apps.find((app) => app.name === "keyvalue");
    assert.deepEqual(kv()?.ports, [
      { host: 7379, protocol: "tcp", exposure: "lan", instance: "keyvalue" },
    ]);
    await apps.expose("default", "keyvalue", 7379, "internet");
    assert.equal(kv()?.ports[0]?.exposure, "internet");
    await apps.expose("default", "keyvalue", 7379, "local");
    assert.equal(kv()?.ports[0]?.exposure, "local");
    assert.equal(
      runtime.containers.get("town-default--keyvalue")?.spec.portmappings[0]?.host_ip,
      "127.0.0.1",
    );
    await apps.setState("default", "keyvalue", "disable");
    assert.deepEqual(kv()?.ports, []);
    await apps.publishNames("default", "hello", false);
    assert.deepEqual(apps.networkInputs(5309).apps.find((a) => a.name === "hello")?.names, []);
    // One function derives every name from the TLD setting.
    tld = "lan";
    assert.equal(
      apps.networkInputs(5309).apps.find((a) => a.name === "hello")?.ingress?.host,
      "hello.default.lan",
    );
    await assert.rejects(
      apps.expose("default", "keyvalue", 1, "lan"),
      (error: TownError) => error.code === "not_found",
    );
  });
});
