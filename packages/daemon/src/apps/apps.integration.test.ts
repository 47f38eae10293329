/**
 * Apps end to end with real Podman: a daemon installs a package from a git
 * repository served over smart HTTP, the container serves its template, a
 * container removed by hand comes back, and an uninstall keeps the volume.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ApiError, TownClient, type AppView } from "@townos/client";
import { runTownCaptured, type TownRun } from "../../../cli/test/run-town.js";
import { createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
import {
  freePort,
  podmanMissing,
  portListeners,
  preparePodmanHost,
  removeAppLeftovers,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
} from "../../test/runtime/podman-host.js";
import { setupAdmin, startPodmanDaemon, until, untilAppsAvailable } from "../../test/daemon.js";
import {
  dig,
  eventually,
  loopbackNetwork,
  networkMissing,
  scratchDir,
  viaCaddy,
} from "../../test/net.js";
import { systemInfo, type RunningDaemon } from "../daemon.js";
import type { Podman } from "../runtime/podman/client.js";
import type { ServiceState } from "../runtime/podman/service.js";
import { PodmanRuntime } from "../runtime/podman/runtime.js";
import { setupStorage } from "../storage/setup.js";
import { appNetworkName } from "./names.js";
import { LABEL_APP } from "./labels.js";
import { appReconciler } from "./seeder.js";

if (podmanMissing) console.log(`# skipping the apps integration test: ${podmanMissing}`);

const PAGE_TEXT = "hello from a Town OS app";

/** The same page on an `http` port: served by the ingress at the app's name. */
const SITE_PACKAGE = `
image: ${TEST_IMAGE}
description: A test site behind the ingress
entrypoint: ["/bin/busybox"]
command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
network:
  internal:
    http: "8080"
volumes:
  www:
    mountpoint: /www
templates:
  index:
    volume: www
    path: index.html
    content: "${PAGE_TEXT}\\n"
`;

/** A web page served by busybox httpd on a host port the installer picks. */
const WEB_PACKAGE = `
image: ${TEST_IMAGE}
description: A test page
entrypoint: ["/bin/busybox"]
command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
network:
  external:
    "@port@": "8080"
volumes:
  www:
    mountpoint: /www
questions:
  port:
    query: "Port for the page"
    type: port
templates:
  index:
    volume: www
    path: index.html
    content: "${PAGE_TEXT}\\n"
`;

describe("apps with real Podman", { skip: podmanMissing, timeout: 180_000 }, () => {
  // A repository name of this run only: container and network names are host-wide.
  const repo = `t${randomBytes(4).toString("hex")}`;
  const appLabel = { [LABEL_APP]: `${repo}/web` };
  let scratch: string;
  let server: GitServer | undefined;
  let daemon: RunningDaemon | undefined;
  let podman: Podman;
  let service: ServiceState = { started: false, pid: null };
  let admin: TownClient;
  let port: number;
  let httpsPort: number;

  /** The `town` command, signed in as the administrator. */
  async function town(...argv: string[]): Promise<TownRun> {
    assert.ok(daemon);
    return runTownCaptured(argv, {
      cwd: scratch,
      env: { TOWN_SERVER: daemon.url, XDG_CONFIG_HOME: join(scratch, "config") },
    });
  }

  before(async () => {
    await preparePodmanHost();
    scratch = await scratchDir("town-apps-");
    // A service of its own, which the daemon finds answering on the socket.
    ({ podman, service } = await startTestPodman(scratch));
    await createRepo(join(scratch, "git"), "apps.git", {
      "packages/web/1.0.yaml": WEB_PACKAGE,
      "packages/site/1.0.yaml": SITE_PACKAGE,
    });
    // The ingress and DNS on free high ports, answering for loopback only.
    const network = await loopbackNetwork(scratch);
    httpsPort = network.httpsPort;
    server = await startGitServer({ root: join(scratch, "git") });
    daemon = await startPodmanDaemon(scratch, podman, {
      // Podman events bring a removed container back at once; the resync too, should an event be late.
      apps: { resyncMs: 5_000 },
      ...(networkMissing() ? {} : { network }),
    });
    admin = await setupAdmin(daemon);
    await admin.addRepository({ name: repo, url: server.url("apps.git") });
    const login = await town("login", "--username", "admin", "--password", "admin-password-3f9c");
    assert.equal(login.code, 0, login.stderr);
    // Storage and Podman come up after boot: app calls answer `unavailable` until then.
    await untilAppsAvailable(admin);
    port = await freePort();
  });

  after(async () => {
    try {
      const network = daemon?.boot.services?.network;
      await daemon?.stop();
      await network?.stopForTests();
      await server?.close();
      // Whatever a failed test left of either app.
      await removeAppLeftovers(podman, [`${repo}/web`, `${repo}/site`]);
    } finally {
      stopTestPodman({ podman, service });
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("refuses invalid answers before creating anything, with every issue", async () => {
    await assert.rejects(
      () => admin.installApp({ repo, name: "web", answers: { port: "not-a-port" } }),
      (error: ApiError) =>
        error.problem.status === 422 &&
        error.problem.code === "invalid_answers" &&
        error.problem.issues?.some((issue) => issue.question === "port") === true,
    );
    assert.deepEqual(await podman.listContainers(appLabel), []);
    assert.equal((await admin.apps()).total, 0);
    // The audit log says which questions were answered, never the answers.
    const [entry] = (await admin.audit({ action: "app.install" })).items;
    assert.equal(entry?.outcome, "invalid_answers");
    assert.deepEqual(entry.detail, { answered: ["port"] });
  });

  it("installs, serves the template, comes back after a hand removal, and converges to no change", async () => {
    const install = await town("app", "install", `${repo}/web@1.0`, "--set", `port=${port}`);
    assert.equal(install.code, 0, install.stderr);
    assert.match(install.stdout, new RegExp(`container town-${repo}--web: running`));
    const view = await admin.app(repo, "web");
    assert.equal(view.lastError, null);
    assert.equal(view.version, "1.0");
    assert.deepEqual(view.containers, [{ name: `town-${repo}--web`, state: "running" }]);
    assert.deepEqual(
      view.ports.map((p) => [p.host, p.container]),
      [[port, 8080]],
    );

    const text = await until(
      "the page",
      10_000,
      async () =>
        (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) })).text(),
      () => true,
    );
    assert.equal(text.trim(), PAGE_TEXT);

    const [before] = await podman.listContainers(appLabel);
    assert.ok(before);
    await podman.removeContainer(before.id, { timeoutSeconds: 0 });
    // The kill's `died` event comes before the removal ends: the reconciler
    // lets the container settle (SETTLE_MS) instead of starting it again, which
    // Podman 4.3 would let through and then orphan the running container with
    // its port. The `remove` event then makes it create a new container.
    const back = await until(
      "the container to come back",
      30_000,
      () => admin.app(repo, "web"),
      // A reconcile that races the removal may fail once ("no such container");
      // the retry clears it, so wait for a clean pass, not just a running container.
      (app: AppView) =>
        app.containers.length === 1 &&
        app.containers.every((c) => c.state === "running") &&
        app.lastError === null,
    ).catch(async (error: unknown) => {
      // Who holds the port says whose bug it is: Podman's, ours, or another program's.
      throw new Error(`${String(error)}; port ${port} held by: ${await portListeners(port)}`);
    });
    assert.deepEqual(back.containers, [{ name: `town-${repo}--web`, state: "running" }]);
    const [after] = await podman.listContainers(appLabel);
    assert.ok(after);
    assert.notEqual(after.id, before.id);

    // A pass over the converged app, against the real Podman and storage, changes nothing.
    const services = daemon?.boot.services;
    assert.ok(services);
    await services.apps.idle();
    const storage = await setupStorage({ dataDir: join(scratch, "data") });
    const reconciler = appReconciler({
      runtime: new PodmanRuntime(podman),
      storage: storage.driver,
      desired: services.installs,
      clock: Date.now,
      box: services.apps.box,
    });
    assert.deepEqual((await reconciler.reconcile(repo, "web")).mutations, []);

    const listed = await town("app", "ls", "--json");
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as AppView[]).map((app) => `${app.repo}/${app.name}`),
      [`${repo}/web`],
    );
    const info = await town("app", "info", `${repo}/web`);
    assert.equal(info.code, 0, info.stderr);
    // An `external` port stays on the home network until the administrator opens it further.
    assert.match(info.stdout, new RegExp(`port ${port} → 8080 \\(lan\\)`));
    assert.match(info.stdout, /volume web\/www at \/www/);
  });

  it("changes a port's exposure live: local answers on loopback only", async () => {
    const lan = systemInfo().internalIP;
    const local = await town("app", "expose", `${repo}/web`, String(port), "local");
    assert.equal(local.code, 0, local.stderr);
    assert.match(local.stdout, new RegExp(`port ${port} → 8080 \\(local\\)`));
    const page = (host: string): Promise<string> =>
      fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(2_000) }).then((r) =>
        r.text(),
      );
    assert.equal(
      (
        await until(
          "the page on loopback",
          10_000,
          () => page("127.0.0.1"),
          () => true,
        )
      ).trim(),
      PAGE_TEXT,
    );
    if (lan !== "127.0.0.1") await assert.rejects(page(lan));
    const back = await town("app", "expose", `${repo}/web`, String(port), "lan");
    assert.equal(back.code, 0, back.stderr);
    if (lan !== "127.0.0.1") {
      assert.equal(
        (
          await until(
            "the page on the LAN",
            10_000,
            () => page(lan),
            () => true,
          )
        ).trim(),
        PAGE_TEXT,
      );
    }
    const bad = await town("app", "expose", `${repo}/web`, "1", "lan");
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /publishes no host port 1/);
  });

  it(
    "serves an app's http port at https://<name>.<repo>.<tld>/ through the ingress, with its name in DNS",
    { skip: networkMissing() },
    async () => {
      await admin.installApp({ repo, name: "site", answers: {} });
      const caFile = join(scratch, "ca.crt");
      await writeFile(caFile, await admin.caCertificate());
      const host = `site.${repo}.home`;
      const page = await eventually("the site through Caddy", () =>
        viaCaddy(caFile, host, httpsPort),
      );
      assert.equal(page.trim(), PAGE_TEXT);
      const status = await admin.netStatus();
      const dnsPort = status.dns?.listen?.port;
      assert.ok(dnsPort);
      // dnsmasq re-reads its hosts file on a signal: the answer follows a moment later.
      await eventually("the name in DNS", async () => {
        assert.equal(await dig(dnsPort, host), "127.0.0.1");
      });
      const view = await admin.app(repo, "site");
      assert.deepEqual(view.urls, [`https://${host}/`]);
      // The ingress's own port is not one of the app's published ports.
      assert.deepEqual(view.ports, []);
      await admin.uninstallApp(repo, "site", { purge: true });
    },
  );

  it("uninstalls: containers and network go, the volume is moved aside", async () => {
    const uninstall = await town("app", "uninstall", `${repo}/web`);
    assert.equal(uninstall.code, 0, uninstall.stderr);
    assert.match(uninstall.stdout, /volumes are kept aside/);
    assert.deepEqual(await podman.listContainers(appLabel), []);
    assert.equal(await podman.inspectNetwork(appNetworkName(repo, "web")), undefined);
    const volumes = await readdir(join(scratch, "data/storage/volumes"));
    assert.ok(!volumes.includes(`pkg.${repo}.web.www`), volumes.join(", "));
    assert.ok(
      volumes.some((name) => name.startsWith(`uninstalled.${repo}.web.www.`)),
      volumes.join(", "),
    );
    await assert.rejects(
      () => admin.app(repo, "web"),
      (error: ApiError) => error.problem.code === "not_found",
    );
  });
});
