/**
 * Secrets over the daemon's HTTP API with real Podman: a note holding a
 * generated password is masked for non-admins (and shown to admins), logs
 * and health are admin-only until `apps.logs_for_users` opens them, and
 * git URLs with credentials and post_update commands with secrets never
 * reach progress streams, `lastError` or the audit log in the clear.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
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
import {
  logInto,
  setupAdmin,
  signedInAccount,
  startPodmanDaemon,
  until,
  untilAppsAvailable,
} from "../../test/daemon.js";
import { scratchDir } from "../../test/net.js";
import type { RunningDaemon } from "../daemon.js";
import type { Podman } from "../runtime/podman/client.js";
import type { ServiceState } from "../runtime/podman/service.js";

if (podmanMissing) console.log(`# skipping the secrets integration test: ${podmanMissing}`);

/** A credential in a git URL written into the package itself, not an answer. */
const URL_PASSWORD = "literal-pw-9c1e";
const TOKEN = "token-answer-5e3a7f";

function dbPackage(postUpdate: boolean): string {
  return `
image: ${TEST_IMAGE}
description: A database stand-in whose connection note carries its password
entrypoint: ["/bin/busybox"]
command: ["httpd", "-f", "-p", "8080", "-h", "/tmp"]
questions:
  password:
    query: "Superuser password"
    type: secret
    default: auto
notes:
  Connection:
    value: "postgresql://admin:@password@@@PACKAGE_DNS@:5432/db"
    type: url
  Host:
    value: "@PACKAGE_DNS@"
${postUpdate ? `post_update:\n  - "echo vacuum as admin:@password@ >&2; exit 3"\n` : ""}`;
}

/** Seeded from a private repository whose URL carries a password and a secret token. */
function srcPackage(gitPort: number): string {
  return `
image: ${TEST_IMAGE}
description: A site seeded from a private repository
entrypoint: ["/bin/busybox"]
command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
volumes:
  www:
    mountpoint: /www
questions:
  token:
    query: "Access token"
    type: secret
git_sources:
  - url: "http://puller:${URL_PASSWORD}@127.0.0.1:${gitPort}/private.git?access_token=@token@"
    volume: www
`;
}

/** The JSON events of a text/event-stream body. */
function events(text: string): { type: string; app?: AppView }[] {
  return text
    .split("\n")
    .filter((line) => line.startsWith("data: "))
    .map((line) => JSON.parse(line.slice(6)) as { type: string; app?: AppView });
}

describe(
  "secrets and non-admins, over HTTP with real Podman",
  { skip: podmanMissing, timeout: 120_000 },
  () => {
    const repo = `s${randomBytes(4).toString("hex")}`;
    let scratch: string;
    let server: GitServer | undefined;
    let privateServer: GitServer | undefined;
    let daemon: RunningDaemon | undefined;
    let podman: Podman;
    let service: ServiceState = { started: false, pid: null };
    let admin: TownClient;
    let user: TownClient;
    /** What the daemon logged (JSON lines, warnings and up). */
    let logged = "";

    /** A request's status and whole body (an event stream read to its end). */
    async function call(
      client: TownClient,
      method: string,
      path: string,
      body?: unknown,
    ): Promise<{ status: number; text: string }> {
      assert.ok(daemon && client.token);
      const response = await fetch(`${daemon.url}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${client.token}`,
          accept: "text/event-stream",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(90_000),
      });
      return { status: response.status, text: await response.text() };
    }

    before(async () => {
      await preparePodmanHost();
      scratch = await scratchDir("town-secrets-");
      ({ podman, service } = await startTestPodman(scratch));
      // The private repository answers only other credentials: the clone fails with the URL in hand.
      await createRepo(join(scratch, "private"), "private.git", { "index.html": "private\n" });
      privateServer = await startGitServer({
        root: join(scratch, "private"),
        auth: { username: "puller", password: "the-right-one" },
      });
      await createRepo(join(scratch, "git"), "apps.git", {
        "packages/db/1.0.yaml": dbPackage(false),
        "packages/db/1.1.yaml": dbPackage(true),
        "packages/src/1.0.yaml": srcPackage(privateServer.port),
      });
      server = await startGitServer({ root: join(scratch, "git") });
      daemon = await startPodmanDaemon(scratch, podman, {
        logLevel: "warn",
        logStream: logInto((text) => (logged += text)),
      });
      admin = await setupAdmin(daemon);
      user = await signedInAccount(daemon, admin, "bob", "bob-password-81d2");
      await admin.addRepository({ name: repo, url: server.url("apps.git") });
      await untilAppsAvailable(admin);
    });

    after(async () => {
      try {
        // Containers, networks and volumes go with the apps; whatever is left after a failure goes below.
        for (const name of ["db", "src"]) {
          await admin.uninstallApp(repo, name, { purge: true }).catch(() => undefined);
        }
        await daemon?.stop();
        await server?.close();
        await privateServer?.close();
        await removeAppLeftovers(podman, [`${repo}/db`, `${repo}/src`]);
      } finally {
        stopTestPodman({ podman, service });
        await rm(scratch, { recursive: true, force: true });
      }
    });

    it("masks a note holding a generated password for non-admins, in the list and the app", async () => {
      const installed = await call(admin, "POST", "/apps", { repo, name: "db", version: "1.0" });
      assert.equal(installed.status, 200, installed.text);
      const seen = await admin.app(repo, "db");
      const connection = seen.notes.find((note) => note.label === "Connection");
      const password = /^postgresql:\/\/admin:([0-9a-f]{64})@/.exec(connection?.value ?? "")?.[1];
      assert.ok(password, `the admin sees the password: ${JSON.stringify(seen.notes)}`);
      // The install's own answer, streamed to the admin who asked for it, holds it too.
      assert.ok(installed.text.includes(password));

      const listed = await user.apps();
      const asUser: AppView[] = [...listed.items, await user.app(repo, "db")];
      for (const view of asUser) {
        assert.ok(!JSON.stringify(view).includes(password), JSON.stringify(view.notes));
        assert.deepEqual(
          view.notes.map((note) => [note.label, note.value, note.secret]),
          [
            ["Connection", "", true],
            ["Host", `db.${repo}.home`, false],
          ],
        );
      }
      const raw = await call(user, "GET", `/apps/${repo}/db`);
      assert.equal(raw.status, 200);
      assert.ok(!raw.text.includes(password));
      // Administrators are told which notes hold secrets (the dashboard shows them masked).
      assert.equal(connection?.secret, true);
    });

    it("keeps logs and health for administrators until apps.logs_for_users opens them", async () => {
      const paths = [
        `/apps/${repo}/db/logs`,
        `/apps/${repo}/db/health`,
        `/apps/${repo}/db/logs/stream?tail=0`,
      ];
      const status = async (client: TownClient, path: string): Promise<number> => {
        assert.ok(daemon && client.token);
        const controller = new AbortController();
        const response = await fetch(`${daemon.url}/api/v1${path}`, {
          headers: { authorization: `Bearer ${client.token}` },
          signal: controller.signal,
        });
        // The live stream never ends by itself: its status is all that is needed.
        controller.abort();
        return response.status;
      };
      for (const path of paths) {
        assert.equal(await status(user, path), 403, path);
        assert.equal(await status(admin, path), 200, path);
      }
      await assert.rejects(
        () => user.setSetting("apps.logs_for_users", true),
        (error: ApiError) => error.problem.status === 403,
      );
      await admin.setSetting("apps.logs_for_users", true);
      for (const path of paths) assert.equal(await status(user, path), 200, path);
      await admin.setSetting("apps.logs_for_users", false);
      for (const path of paths) assert.equal(await status(user, path), 403, path);
    });

    it("redacts a post_update command's secret and its output from progress and lastError", async () => {
      const answers = await call(admin, "GET", `/apps/${repo}/db/answers`);
      const password = (JSON.parse(answers.text) as { answers: { password: string } }).answers
        .password;
      assert.match(password, /^[0-9a-f]{64}$/);
      const upgrade = await call(admin, "POST", `/apps/${repo}/db/upgrade`, { version: "1.1" });
      assert.equal(upgrade.status, 200, upgrade.text);
      assert.match(upgrade.text, /run post_update \\"echo vacuum as admin:\[redacted\]/);
      const failed = await until(
        "the post_update failure",
        30_000,
        () => user.app(repo, "db"),
        (app) => app.lastError !== null,
      );
      assert.match(failed.lastError ?? "", /exited with 3: vacuum as admin:\[redacted\]/);
      // The administrator's own answer holds the password in the app's notes, and only there.
      const shown = events(upgrade.text).map((event) =>
        event.type === "done" ? (event.app?.lastError ?? "") : JSON.stringify(event),
      );
      shown.push(JSON.stringify(failed), (await admin.app(repo, "db")).lastError ?? "");
      assert.match(logged, /post_update.*"msg":"app reconcile failed"/);
      shown.push(logged);
      for (const text of shown) assert.ok(!text.includes(password), text);
    });

    it("shows a repository URL's query (a token) to administrators only", async () => {
      assert.ok(server);
      const url = `${server.url("apps.git")}?private_token=repo-token-77b1`;
      await admin.addRepository({ name: `${repo}q`, url });
      const asAdmin = (await admin.repositories()).items.find((r) => r.name === `${repo}q`);
      assert.equal(asAdmin?.url, url);
      const listed = await user.repositories();
      assert.ok(!JSON.stringify(listed).includes("repo-token-77b1"), JSON.stringify(listed));
      const asUser = listed.items.find((r) => r.name === `${repo}q`);
      assert.equal(asUser?.url, `${server.url("apps.git")}?[redacted]`);
      await admin.removeRepository(`${repo}q`);
    });

    it("keeps a git URL's credentials and secret token out of progress, errors and the audit log", async () => {
      const install = await call(admin, "POST", "/apps", {
        repo,
        name: "src",
        answers: { token: TOKEN },
      });
      assert.equal(install.status, 200, install.text);
      const shown = [install.text];
      const view = await user.apps();
      shown.push(JSON.stringify(view));
      const src = view.items.find((app) => app.name === "src");
      // A failure that may pass leaves the app installed with its error; a terminal one undoes it.
      if (src) assert.ok(src.lastError?.includes("private.git"), src.lastError ?? "no error");
      shown.push(JSON.stringify(await admin.audit({ action: "app.install" })));
      assert.match(logged, /private\.git.*"msg":"app reconcile failed"/);
      shown.push(logged);
      for (const text of shown) {
        assert.ok(!text.includes(URL_PASSWORD), text);
        assert.ok(!text.includes(TOKEN), text);
      }
      // The seed step names the repository, without what would open it.
      assert.match(
        install.text,
        new RegExp(
          `seed volume www from http://\\[redacted\\]@127\\.0\\.0\\.1:${privateServer?.port}/private\\.git\\?\\[redacted\\]`,
        ),
      );
    });
  },
);
