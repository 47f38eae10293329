import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { TownError, type CompiledPackage } from "@townos/format";
import { FakeStorage, fakeReconciler, installOf, NOW } from "../../test/apps/fakes.js";
import { FakeRuntime } from "../../test/runtime/fake-runtime.js";
import { asVm, compileExample } from "../../test/runtime/examples.js";
import { LABEL_SPEC_HASH } from "../runtime/workload.js";
import { openDatabase } from "../store/database.js";
import { Installs } from "../store/installs.js";
import { SETTLE_MS, type AppReconciler, type VmImageSource } from "./controller.js";
import { appKey, LABEL_APP, parseAppKey } from "./labels.js";
import { appNetworkName } from "./names.js";
import type { ReconcileProgress } from "./steps.js";

describe("AppReconciler", () => {
  let runtime: FakeRuntime;
  let storage: FakeStorage;
  let files: Map<string, string>;
  let installs: Installs;
  let reconciler: AppReconciler;

  const install = (plan: CompiledPackage, enabled = true): void => {
    installs.put(installOf(plan, { enabled }));
  };
  const mutatingCalls = (): number => runtime.calls.length + storage.calls.length;

  beforeEach(() => {
    runtime = new FakeRuntime();
    storage = new FakeStorage();
    files = new Map();
    installs = new Installs(openDatabase(":memory:"), () => NOW);
    reconciler = fakeReconciler({ runtime, storage, desired: installs }, files);
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
    assert.deepEqual(store.spec.network, { name: "town-default--guestbook", aliases: ["store"] });
    assert.equal(store.spec.labels[LABEL_APP], "default/guestbook");
    assert.equal(store.state, "running");
    assert.deepEqual(
      runtime.containers.get("town-default--guestbook")?.spec.ports.map((p) => p.hostAddress),
      ["0.0.0.0"],
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

  it("lets a container stopped by someone else settle before starting it, not one it stopped", async () => {
    install(compileExample("hello", "1.0"));
    await reconciler.reconcile("default", "hello");
    const container = runtime.containers.get("town-default--hello");
    assert.ok(container);
    // Someone is removing it: `podman rm -f` kills it first.
    container.state = "stopping";
    assert.deepEqual(await reconciler.reconcile("default", "hello"), {
      mutations: [],
      requeueAfterMs: SETTLE_MS,
    });
    container.state = "exited";
    container.exitedAt = NOW - 1_000;
    assert.deepEqual(await reconciler.reconcile("default", "hello"), {
      mutations: [],
      requeueAfterMs: SETTLE_MS - 1_000,
    });
    container.exitedAt = NOW - SETTLE_MS;
    assert.deepEqual(await reconciler.reconcile("default", "hello"), {
      mutations: ["start container town-default--hello"],
    });
    // A restart stops it here: it starts again at once.
    await reconciler.stop("town-default--hello");
    assert.equal(container.state, "exited");
    container.exitedAt = NOW;
    assert.deepEqual(await reconciler.reconcile("default", "hello"), {
      mutations: ["start container town-default--hello"],
    });
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

  it("runs a VM: its base image fetched once with progress, its disk volume made, no exec", async () => {
    const url = "https://images.example.org/router.qcow2";
    install(asVm(compileExample("hello", "1.0"), url));
    const held = new Set<string>();
    const fetched: { reference: string; sha256: string | null }[] = [];
    const vmImages: VmImageSource = {
      has: (reference) => Promise.resolve(held.has(reference)),
      fetch: async (reference, options) => {
        fetched.push({ reference, sha256: options.sha256 });
        options.onProgress("12 MiB of 40 MiB");
        held.add(reference);
        return Promise.resolve();
      },
    };
    const vmReconciler = fakeReconciler({ runtime, storage, desired: installs, vmImages }, files);
    const details: string[] = [];
    const report = await vmReconciler.reconcile("default", "hello", (p) => {
      if (p.detail) details.push(p.detail);
    });
    assert.deepEqual(report.mutations.slice(-6), [
      "create volume pkg.default.hello.www",
      "create volume pkg.default.hello.vm-disk",
      `download VM image ${url}`,
      "write template www:index.html",
      "create vm town-default--hello",
      "start vm town-default--hello",
    ]);
    assert.deepEqual(fetched, [{ reference: url, sha256: null }]);
    assert.deepEqual(details, ["12 MiB of 40 MiB"]);
    assert.equal(runtime.containers.get("town-default--hello")?.spec.kind, "vm");
    assert.deepEqual((await vmReconciler.reconcile("default", "hello")).mutations, []);

    // A box without QEMU says so instead of failing somewhere later.
    runtime.containers.clear();
    await assert.rejects(reconciler.reconcile("default", "hello"), (error: TownError) => {
      assert.equal(error.code, "unavailable");
      assert.match(error.message, /cannot run them \(QEMU is not set up\)/);
      return true;
    });
  });

  it("puts back a quota or owner changed by hand", async () => {
    reconciler = fakeReconciler({ runtime, storage, desired: installs, volumeCheckMs: 0 }, files);
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
    installs.put(installOf(plan, { answers: {}, postUpdateFor: plan.hash }));
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
    installs.put(installOf(plan, { version: "1.1", answers: {}, reused: [aside] }));
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
