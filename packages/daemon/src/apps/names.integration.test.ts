/**
 * App names and ownership end to end, with real Podman and a real daemon
 * over HTTP: names that used to meet (a dependency and an app named like
 * it, `a-b`/`c` and `a`/`b-c`) now name distinct objects, a failed install
 * never deletes another app's volume, and of concurrent installs of one app
 * exactly one is made.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ApiError, TownClient, type AppView } from "@townos/client";
import { createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
import {
  podmanMissing,
  preparePodmanHost,
  removeAppLeftovers,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
} from "../../test/runtime/podman-host.js";
import { setupAdmin, startPodmanDaemon, untilAppsAvailable } from "../../test/daemon.js";
import { scratchDir } from "../../test/net.js";
import type { RunningDaemon } from "../daemon.js";
import type { Podman } from "../runtime/podman/client.js";
import type { ServiceState } from "../runtime/podman/service.js";
import { LABEL_APP } from "./labels.js";

if (podmanMissing) console.log(`# skipping the app names integration test: ${podmanMissing}`);

/** A container that only sleeps, with the lines given added to its definition. */
const sleeper = (more = ""): string => `
image: ${TEST_IMAGE}
description: A test container
entrypoint: ["/bin/busybox"]
command: ["sleep", "600"]
${more}`;

const STORE = sleeper(`
volumes:
  data:
    mountpoint: /data
templates:
  marker:
    volume: data
    path: marker.txt
    content: "kept\\n"
`);

/** Depends on store under the key db: once named app-db, like the package below. */
const APP = sleeper(`
dependencies:
  db:
    package: store
`);

/** Named like app's dependency was; its first reconcile fails for good (a directory no image has). */
const APP_DB = sleeper(`
volumes:
  data:
    mountpoint: /data
  seeded:
    mountpoint: /seeded
archives:
  - image: ${TEST_IMAGE}
    directory: /no/such/directory
    volume: seeded
`);

/** A generated secret written into its volume on the first start. */
const SECRET = sleeper(`
questions:
  token:
    query: "A secret"
    type: secret
    default: auto
volumes:
  data:
    mountpoint: /data
templates:
  token:
    volume: data
    path: token.txt
    content: "@token@\\n"
`);

describe(
  "app names and ownership with real Podman",
  { skip: podmanMissing, timeout: 180_000 },
  () => {
    // Repository names of this run only: container and network names are host-wide.
    const repo = `n${randomBytes(4).toString("hex")}`;
    const other = `${repo}-b`;
    const apps = [`${repo}/app`, `${repo}/app-db`, `${repo}/b-c`, `${other}/c`, `${repo}/secret`];
    let scratch: string;
    let server: GitServer | undefined;
    let daemon: RunningDaemon | undefined;
    let podman: Podman;
    let service: ServiceState = { started: false, pid: null };
    let admin: TownClient;

    const volumes = async (): Promise<string[]> =>
      (await readdir(join(scratch, "data/storage/volumes"))).sort();
    const running = (app: AppView): boolean =>
      app.containers.length > 0 && app.containers.every((c) => c.state === "running");

    before(async () => {
      await preparePodmanHost();
      scratch = await scratchDir("town-names-");
      ({ podman, service } = await startTestPodman(scratch));
      await createRepo(join(scratch, "git"), "one.git", {
        "packages/store/1.0.yaml": STORE,
        "packages/app/1.0.yaml": APP,
        "packages/app-db/1.0.yaml": APP_DB,
        "packages/b-c/1.0.yaml": sleeper(),
        "packages/secret/1.0.yaml": SECRET,
      });
      await createRepo(join(scratch, "git"), "two.git", { "packages/c/1.0.yaml": sleeper() });
      server = await startGitServer({ root: join(scratch, "git") });
      daemon = await startPodmanDaemon(scratch, podman);
      admin = await setupAdmin(daemon);
      await admin.addRepository({ name: repo, url: server.url("one.git") });
      await admin.addRepository({ name: other, url: server.url("two.git") });
      await untilAppsAvailable(admin);
    });

    after(async () => {
      try {
        await daemon?.stop();
        await server?.close();
        // Whatever a failed test left.
        await removeAppLeftovers(podman, apps);
      } finally {
        stopTestPodman({ podman, service });
        await rm(scratch, { recursive: true, force: true });
      }
    });

    it("an app named like another's dependency gets its own volumes; its failed install leaves the dependency's alone", async () => {
      const app = await admin.installApp({ repo, name: "app", answers: {} });
      assert.ok(running(app), JSON.stringify(app.containers));
      const [dependencyVolume, ...rest] = (await volumes()).filter((name) =>
        name.startsWith(`pkg.${repo}.app`),
      );
      assert.ok(dependencyVolume !== undefined && rest.length === 0);
      const marker = join(scratch, "data/storage/volumes", dependencyVolume, "marker.txt");
      assert.equal(await readFile(marker, "utf8"), "kept\n");

      await assert.rejects(
        () => admin.installApp({ repo, name: "app-db", answers: {} }),
        (error: ApiError) => {
          assert.equal(error.problem.code, "not_found", error.message);
          assert.match(error.message, /no\/such\/directory/);
          return true;
        },
      );
      // The failed install took back only what it made: app's dependency keeps its data and runs on.
      assert.equal(await readFile(marker, "utf8"), "kept\n");
      assert.deepEqual(
        (await volumes()).filter((name) => name.startsWith(`pkg.${repo}.`)),
        [dependencyVolume],
      );
      assert.ok(running(await admin.app(repo, "app")));
      await admin.uninstallApp(repo, "app", { purge: true });
    });

    it("a-b/c and a/b-c get distinct containers and networks, and both run", async () => {
      const first = await admin.installApp({ repo, name: "b-c", answers: {} });
      const second = await admin.installApp({ repo: other, name: "c", answers: {} });
      assert.ok(running(first), JSON.stringify(first.containers));
      assert.ok(running(second), JSON.stringify(second.containers));
      assert.notEqual(first.containers[0]?.name, second.containers[0]?.name);
      const [firstNetwork] = await podman.listNetworks({ [LABEL_APP]: `${repo}/b-c` });
      const [secondNetwork] = await podman.listNetworks({ [LABEL_APP]: `${other}/c` });
      assert.ok(firstNetwork && secondNetwork);
      assert.notEqual(firstNetwork.name, secondNetwork.name);
      await admin.uninstallApp(repo, "b-c", { purge: true });
      // The other app's network and container are untouched by this uninstall.
      assert.ok(running(await admin.app(other, "c")));
      assert.ok(await podman.inspectNetwork(secondNetwork.name));
      await admin.uninstallApp(other, "c", { purge: true });
    });

    it("of concurrent install requests of one app exactly one succeeds, the others get a conflict", async () => {
      const outcomes = await Promise.allSettled(
        [1, 2, 3].map(() => admin.installApp({ repo, name: "secret", answers: {} })),
      );
      const won = outcomes.filter((outcome) => outcome.status === "fulfilled");
      const lost = outcomes.flatMap((outcome) =>
        outcome.status === "rejected" ? [outcome.reason as ApiError] : [],
      );
      assert.equal(won.length, 1, JSON.stringify(lost.map((error) => error.message)));
      assert.deepEqual(
        lost.map((error) => error.problem.status),
        [409, 409],
      );
      const installed = (await admin.apps()).items.filter((app) => app.name === "secret");
      assert.equal(installed.length, 1);
      assert.ok(running(await admin.app(repo, "secret")));
      const tokens = (await volumes()).filter((name) => name.startsWith(`pkg.${repo}.secret.`));
      assert.equal(tokens.length, 1);
      await admin.uninstallApp(repo, "secret", { purge: true });
    });
  },
);
