/**
 * The install dialog's Connect button in Debian's Chromium against a real
 * daemon and the local Plex-shaped provider: the approval page opens in a
 * new tab, the dialog shows the link waiting and then linked, and the
 * install check names the link, while no answer the browser receives ever
 * holds the token.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { startDaemon, type RunningDaemon } from "@townos/daemon";
import { setupAdmin, testDaemonConfig } from "../../daemon/test/daemon.js";
import { createRepo, startGitServer, type GitServer } from "../../daemon/test/git-server.js";
import {
  makeCertificates,
  plexFixtureAt,
  PROVIDER_TOKEN,
  startMockProvider,
  type MockProvider,
} from "../../daemon/test/oauth-provider.js";
import { chromiumMissing, ensureBuilt, launchChromium, webDir } from "./browser.js";

if (chromiumMissing) console.log(`# skipping the Connect button test: ${chromiumMissing}`);

describe(
  "the Connect button of an oauth question",
  { skip: chromiumMissing, timeout: 180_000 },
  () => {
    let scratch: string;
    let provider: MockProvider;
    let server: GitServer | undefined;
    let daemon: RunningDaemon | undefined;
    let context: BrowserContext | undefined;
    let page: Page;
    /** Every body the dashboard's page received from the daemon's API. */
    const apiBodies: string[] = [];

    before(async () => {
      await ensureBuilt();
      scratch = await mkdtemp(join(tmpdir(), "town-web-oauth-"));
      const certificates = await makeCertificates(scratch);
      provider = await startMockProvider(certificates);
      await createRepo(join(scratch, "git"), "links.git", {
        "packages/plex/3.0.yaml": await plexFixtureAt(provider.url),
      });
      server = await startGitServer({ root: join(scratch, "git") });
      daemon = await startDaemon(
        testDaemonConfig(scratch, {
          webRoot: join(webDir, "dist"),
          apps: false,
          oauth: { trustedCaFile: certificates.caFile, allowPrivateAddresses: true },
        }),
      );
      await daemon.booted;
      const admin = await setupAdmin(daemon, "admin-password-3b8d");
      await admin.addRepository({ name: "links", url: server.url("links.git") });
      // The browser does not know the test CA: the approval tab is only looked at, not trusted.
      context = await launchChromium(join(scratch, "chromium"), {
        viewport: { width: 1280, height: 800 },
        ignoreHTTPSErrors: true,
      });
      await context.addCookies([{ name: "town_session", value: admin.token, url: daemon.url }]);
      page = context.pages()[0] ?? (await context.newPage());
      page.on("response", (response) => {
        if (!response.url().includes("/api/v1/")) return;
        response.text().then(
          (text) => apiBodies.push(text),
          () => undefined,
        );
      });
    });

    after(async () => {
      await context?.close();
      await daemon?.stop();
      await server?.close();
      await provider.close();
      await rm(scratch, { recursive: true, force: true });
    });

    it("opens the approval page, shows the link waiting then linked, and the check names it", async () => {
      assert.ok(daemon);
      await page.goto(`${daemon.url}/store/links/plex`);
      await page.getByRole("button", { name: "Install…" }).click();
      const dialog = page.getByRole("dialog");
      await dialog.getByText("Not linked yet").waitFor();

      const [tab] = await Promise.all([
        context?.waitForEvent("page"),
        dialog.getByRole("button", { name: "Connect", exact: true }).click(),
      ]);
      assert.ok(tab);
      await tab.waitForURL(/\/app\/auth#/);
      const approve = new URL(tab.url());
      assert.equal(approve.origin, provider.url);
      const clientId = new URLSearchParams(approve.hash.slice(2)).get("clientID");
      // The tab has no way back to the dashboard.
      assert.equal(await tab.evaluate(() => window.opener === null), true);
      await dialog.getByText("Waiting for your approval in the other tab").waitFor();
      assert.equal(
        provider.requests.find((r) => r.method === "POST")?.headers["x-plex-client-identifier"],
        clientId,
      );

      provider.approve(provider.lastPin(), PROVIDER_TOKEN);
      await dialog.getByText("Linked.").waitFor();
      assert.equal(await dialog.getByRole("button", { name: "Connect again" }).isEnabled(), true);

      // The check sends the link, not a token (apps are off here, so it stops at that).
      const [check] = await Promise.all([
        page.waitForRequest((request) => request.url().endsWith("/api/v1/apps/preview")),
        dialog.getByRole("button", { name: "Next: check" }).click(),
      ]);
      const body = check.postDataJSON() as {
        answers: Record<string, string>;
        oauthFlows?: Record<string, string>;
      };
      assert.equal(body.answers["claim_token"], undefined);
      assert.match(body.oauthFlows?.["claim_token"] ?? "", /^[0-9a-f-]{36}$/);
      await dialog.getByText(/running apps is turned off/).waitFor();
      assert.ok(apiBodies.length > 3);
      assert.ok(!apiBodies.join("\n").includes(PROVIDER_TOKEN), "the browser received the token");
    });
  },
);
