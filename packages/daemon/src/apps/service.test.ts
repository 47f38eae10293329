import assert from "node:assert/strict";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { TownError } from "@townos/format";
import { readTree, repoRoot, testSystem } from "../../../format/test/support.js";
import {
  BOX,
  FakeStorage,
  fakeReconciler,
  installOf,
  legacyPlan,
  NOW,
} from "../../test/apps/fakes.js";
import { FakeRuntime, type FakeWorkload } from "../../test/runtime/fake-runtime.js";
import { compileExample } from "../../test/runtime/examples.js";
import { Catalog, type RepositoryFetcher } from "../catalog/catalog.js";
import { openDatabase } from "../store/database.js";
import { Installs } from "../store/installs.js";
import { Manager } from "../reconcile/manager.js";
import { Repositories } from "../store/repositories.js";
import { LABEL_APP, LABEL_BOX } from "./labels.js";
import { portHolders } from "./planner.js";
import { Apps } from "./service.js";

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
      manager: new Manager(),
    });
    runtime = new FakeRuntime();
    storage = new FakeStorage();
  });

  afterEach(async () => {
    await apps.stop();
  });

  const attach = (): void => {
    apps.attach({
      runtime,
      storage,
      reconciler: fakeReconciler({
        runtime,
        storage,
        desired: installs,
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
    installs.put(installOf(old, { definitionHash: "old" }));
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
    installs.put(installOf(old, { definitionHash: "old", answers: { feedport: "9091" } }));
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
    runtime.add(
      {
        name: "town-default--ghost",
        labels: { [LABEL_APP]: "default/ghost", [LABEL_BOX]: BOX },
      } as unknown as FakeWorkload["spec"],
      "running",
    );
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
      spec?.ports.map((p) => [p.hostAddress, p.hostPort]),
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
      runtime.containers.get("town-default--keyvalue")?.spec.ports[0]?.hostAddress,
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
