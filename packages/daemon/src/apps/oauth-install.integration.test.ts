/**
 * The plex-shaped package installs with its account link done (real
 * Podman): `town app install --connect` links the account against the local
 * provider, and the container gets the token as its PLEX_CLAIM while the
 * token appears in no answer a non-administrator sees, no audit entry and
 * no log line.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ApiError, TownClient } from "@townos/client";
import { runTownCaptured } from "../../../cli/test/run-town.js";
import { commitFiles, createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
import {
  logInto,
  setupAdmin,
  startPodmanDaemon,
  until,
  untilAppsAvailable,
} from "../../test/daemon.js";
import { scratchDir } from "../../test/net.js";
import {
  approvingNextStart,
  makeCertificates,
  plexFixtureAt,
  PROVIDER_TOKEN,
  startMockProvider,
  type MockProvider,
} from "../../test/oauth-provider.js";
import {
  podmanMissing,
  preparePodmanHost,
  removeAppLeftovers,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
} from "../../test/runtime/podman-host.js";
import type { RunningDaemon } from "../daemon.js";
import type { Podman } from "../runtime/podman/client.js";
import type { ServiceState } from "../runtime/podman/service.js";

if (podmanMissing) console.log(`# skipping the oauth install test: ${podmanMissing}`);

describe(
  "installing plex 3.0 with its account linked",
  { skip: podmanMissing, timeout: 120_000 },
  () => {
    const repo = `o${randomBytes(4).toString("hex")}`;
    let scratch: string;
    let provider: MockProvider;
    let server: GitServer | undefined;
    let daemon: RunningDaemon | undefined;
    let podman: Podman;
    let service: ServiceState = { started: false, pid: null };
    let admin: TownClient;
    /** The fixture as this box can run it, and the repository holding it. */
    let plex: string;
    let repoDir: string;
    const logLines: string[] = [];

    before(async () => {
      await preparePodmanHost();
      scratch = await scratchDir("town-oauth-install-");
      const certificates = await makeCertificates(scratch);
      provider = await startMockProvider(certificates);
      // The fixture as it is, with its provider moved here and an image that exists on this box.
      plex = (await plexFixtureAt(provider.url)).replace(
        "image: plexinc/pms-docker:latest",
        `image: ${TEST_IMAGE}\nentrypoint: ["/bin/busybox"]\ncommand: ["httpd", "-f", "-p", "32400", "-h", "/config"]`,
      );
      repoDir = await createRepo(join(scratch, "git"), "links.git", {
        "packages/plex/3.0.yaml": plex,
      });
      ({ podman, service } = await startTestPodman(scratch));
      server = await startGitServer({ root: join(scratch, "git") });
      daemon = await startPodmanDaemon(scratch, podman, {
        oauth: { trustedCaFile: certificates.caFile, allowPrivateAddresses: true },
        logLevel: "debug",
        logStream: logInto((text) => logLines.push(text)),
      });
      admin = await setupAdmin(daemon, "admin-password-9c4e");
      await admin.addRepository({ name: repo, url: server.url("links.git") });
      await untilAppsAvailable(admin);
    });

    after(async () => {
      try {
        await daemon?.stop();
        await server?.close();
        await provider.close();
        await removeAppLeftovers(podman, [`${repo}/plex`]);
      } finally {
        stopTestPodman({ podman, service });
        await rm(scratch, { recursive: true, force: true });
      }
    });

    it("checks the answers with the link, installs, and the container has the token", async () => {
      assert.ok(daemon);
      const url = daemon.url;
      // Without a link the check asks for the account; with a done link it does not.
      const unlinked = await admin.previewInstall({ repo, name: "plex", answers: {} });
      assert.deepEqual(unlinked.questionsToAnswer, ["claim_token"]);
      await assert.rejects(
        () => admin.installApp({ repo, name: "plex", answers: {} }),
        (error: ApiError) =>
          error.problem.code === "invalid_answers" &&
          error.problem.issues?.some((issue) => issue.question === "claim_token") === true,
      );
      const checked = await approvingNextStart(provider, PROVIDER_TOKEN, () =>
        admin.startOAuthFlow({ repo, name: "plex", question: "claim_token" }),
      );
      await until(
        "the check's link",
        10_000,
        () => admin.oauthFlow(checked.id),
        (view) => view.state === "done",
      );
      const preview = await admin.previewInstall({
        repo,
        name: "plex",
        answers: {},
        oauthFlows: { claim_token: checked.id },
      });
      assert.deepEqual(preview.questionsToAnswer, []);
      assert.deepEqual(preview.answerProblems, []);

      // The command links its own account and installs naming the link.
      const install = await approvingNextStart(provider, `${PROVIDER_TOKEN}-cli`, () =>
        runTownCaptured(["app", "install", `${repo}/plex`, "--connect", "claim_token"], {
          cwd: scratch,
          env: { TOWN_SERVER: url, TOWN_TOKEN: admin.token },
        }),
      );
      assert.equal(install.code, 0, install.stderr);
      assert.match(install.stdout, /Open this page to link the account for "claim_token"/);
      const [container] = (await admin.app(repo, "plex")).containers;
      assert.equal(container?.state, "running");
      assert.match(install.stdout, new RegExp(`container ${container.name}: running`));

      // The container's environment holds the token (this busybox has `env`, not `printenv`).
      const environment = await podman.exec(container.name, ["/bin/busybox", "env"]);
      assert.ok(
        environment.stdout.split("\n").includes(`PLEX_CLAIM=${PROVIDER_TOKEN}-cli`),
        environment.stdout,
      );
      // Saved like a secret answer: administrators get it back for a reinstall.
      assert.equal(
        (await admin.lastAnswers(repo, "plex")).answers["claim_token"],
        `${PROVIDER_TOKEN}-cli`,
      );

      // A non-administrator sees the app, not the token.
      await admin.createAccount({ username: "dana", password: "dana-password-6a1d" });
      const dana = new TownClient({
        baseUrl: daemon.url,
        token: (
          await new TownClient({ baseUrl: daemon.url }).login({
            username: "dana",
            password: "dana-password-6a1d",
          })
        ).token,
      });
      assert.ok(!JSON.stringify(await dana.app(repo, "plex")).includes(PROVIDER_TOKEN));
      await assert.rejects(() => dana.lastAnswers(repo, "plex"), /only administrators/);
      const audit = JSON.stringify((await admin.audit({})).items);
      assert.match(audit, /"linked":\["claim_token"\]/);
      assert.ok(!audit.includes(PROVIDER_TOKEN), "the audit log holds the token");
      assert.ok(!logLines.join("").includes(PROVIDER_TOKEN), "a log line holds the token");
    });

    it("town app upgrade --connect links the account anew for the new version", async () => {
      assert.ok(daemon);
      const url = daemon.url;
      await commitFiles(repoDir, { "packages/plex/3.1.yaml": plex }, "plex 3.1");
      await admin.refreshRepository(repo);
      const upgrade = await approvingNextStart(provider, `${PROVIDER_TOKEN}-new`, () =>
        runTownCaptured(["app", "upgrade", `${repo}/plex`, "--connect", "claim_token"], {
          cwd: scratch,
          env: { TOWN_SERVER: url, TOWN_TOKEN: admin.token },
        }),
      );
      assert.equal(upgrade.code, 0, upgrade.stderr);
      const view = await admin.app(repo, "plex");
      assert.equal(view.version, "3.1");
      const [container] = view.containers;
      assert.equal(container?.state, "running");
      const environment = await podman.exec(container.name, ["/bin/busybox", "env"]);
      assert.ok(
        environment.stdout.split("\n").includes(`PLEX_CLAIM=${PROVIDER_TOKEN}-new`),
        environment.stdout,
      );
      assert.ok(!logLines.join("").includes(PROVIDER_TOKEN), "a log line holds the token");
    });
  },
);
