/**
 * The Pages screen in Debian's Chromium against a real daemon whose ingress
 * (Caddy) serves the pages (apps off: archive and git pages need no Podman): an
 * administrator creates a page from an archive in the dialog and watches it
 * upload, sees it served at its HTTPS name, uploads a new version, reads the
 * build log, sees a failed upload keep the old version online, rolls back,
 * adds a public domain and deletes the page; a git page (from a loopback
 * smart-HTTP server) deploys by itself, shows its commit and webhook URL, and
 * rebuilds. Screenshots of the screen land in docs/screenshots for reviewers.
 */
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { startDaemon, type RunningDaemon } from "@townos/daemon";
import type { TownClient } from "@townos/client";
import { setupAdmin, testDaemonConfig } from "../../daemon/test/daemon.js";
import { loopbackNetwork, networkMissing, scratchDir } from "../../daemon/test/net.js";
import { readyForPages, servesPage, visitPage } from "../../daemon/test/pages.js";
import { createRepo, startGitServer, type GitServer } from "../../daemon/test/git-server.js";
import { buildTar } from "../../daemon/test/storage/archives.js";
import { chromiumMissing, ensureBuilt, launchChromium, webDir } from "./browser.js";

const shotsDir = join(webDir, "../../docs/screenshots");
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const missing = chromiumMissing || networkMissing();
if (missing) console.log(`# skipping the Pages screen test: ${missing}`);

/** An archive of a site in `public/`, padded so its upload takes a moment on a slowed link. */
function site(text: string, padding = 0): Buffer {
  return buildTar([
    { path: "public/index.html", body: text },
    { path: "public/padding.bin", body: Buffer.alloc(padding, 7) },
  ]);
}

describe("the Pages screen", { skip: missing, timeout: 240_000 }, () => {
  let scratch = "";
  let caFile = "";
  let daemon: RunningDaemon | undefined;
  let git: GitServer | undefined;
  let admin: TownClient;
  let network: Awaited<ReturnType<typeof loopbackNetwork>>;
  let context: BrowserContext | undefined;
  let page: Page;

  const serves = (host: string, body: string) => servesPage(caFile, host, network.httpsPort, body);

  before(async () => {
    await ensureBuilt();
    await mkdir(shotsDir, { recursive: true });
    scratch = await scratchDir("town-web-pages-");
    await createRepo(join(scratch, "git"), "site.git", { "docs/index.html": "from git\n" });
    git = await startGitServer({ root: join(scratch, "git") });
    network = await loopbackNetwork(scratch);
    daemon = await startDaemon(
      testDaemonConfig(scratch, { webRoot: join(webDir, "dist"), apps: false, network }),
    );
    await daemon.booted;
    admin = await setupAdmin(daemon, "admin-password-51c0");
    caFile = await readyForPages(daemon.url, admin, scratch);
    await writeFile(join(scratch, "v1.tar"), site("page one\n", 4 * 1024 * 1024));
    await writeFile(join(scratch, "v2.tar"), site("page two\n"));
    await writeFile(join(scratch, "bad.tar"), "not an archive at all");
    context = await launchChromium(join(scratch, "chromium"), { viewport: SIZES.desktop });
    await context.addCookies([{ name: "town_session", value: admin.token ?? "", url: daemon.url }]);
    page = context.pages()[0] ?? (await context.newPage());
    // Deleting asks first.
    page.on("dialog", (dialog) => void dialog.accept());
  });

  after(async () => {
    await context?.close();
    const running = daemon?.boot.services?.network;
    await daemon?.stop();
    await running?.stopForTests();
    await git?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it("creates a page from an archive with progress, updates, rolls back and deletes it", async () => {
    assert.ok(daemon);
    await page.goto(daemon.url);
    await page
      .getByRole("navigation", { name: "Main" })
      .getByRole("link", { name: "Pages" })
      .click();
    await page.getByRole("heading", { name: "Pages", level: 1 }).waitFor();
    await page.getByText("No pages yet.").waitFor();

    // The dialog names what is missing before anything is sent.
    await page.getByRole("button", { name: "Create a page…" }).click();
    const dialog = page.getByRole("dialog", { name: "Create a page" });
    await dialog.getByRole("button", { name: "Create", exact: true }).click();
    await dialog.getByText("Give the page a name.").waitFor();
    await dialog.getByLabel(/^Name/).fill("blog");
    await dialog.getByRole("button", { name: "Create", exact: true }).click();
    await dialog.getByText("Choose the archive to upload.").waitFor();
    await dialog
      .getByLabel("Archive (tar, tar.gz, tar.xz or zip)")
      .setInputFiles(join(scratch, "v1.tar"));
    await dialog.getByLabel("Folder to serve (optional: all of it)").fill("public");

    // A slowed link (1 MB/s up) leaves time to see the bar move.
    const cdp = await context?.newCDPSession(page);
    await cdp?.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 1024 * 1024,
    });
    await dialog.getByRole("button", { name: "Create", exact: true }).click();
    await dialog
      .getByRole("status")
      .filter({ hasText: /^Sending [\d.]+ \w?B of 4 MB \(\d+%\)…$/ })
      .waitFor();
    const bar = dialog.getByRole("progressbar", { name: "New version of blog" });
    assert.ok(Number(await bar.getAttribute("max")) > 4 * 1024 * 1024);
    await dialog.waitFor({ state: "detached" });
    await cdp?.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: -1,
    });

    const card = page.getByRole("article", { name: "blog" });
    await card.getByText("online", { exact: true }).waitFor();
    await card.getByRole("link", { name: "https://blog.home/" }).waitFor();
    await card.getByText("Archive upload (folder public)").waitFor();
    await serves("blog.home", "page one\n");

    // A new version from the card: the old one becomes what a rollback brings back.
    await card.getByLabel("New version of blog").setInputFiles(join(scratch, "v2.tar"));
    await card.getByRole("button", { name: "Upload a new version" }).click();
    await card.getByText("Previous version").waitFor();
    await serves("blog.home", "page two\n");
    // The log opens by itself while a deploy runs; else on request.
    const logButton = card.getByRole("button", { name: "Build log" });
    if ((await logButton.getAttribute("aria-expanded")) === "false") await logButton.click();
    await card.getByLabel("Build log").getByText("receiving an archive").waitFor();

    // Not an archive: the reason shows, and page two stays online.
    await card.getByLabel("New version of blog").setInputFiles(join(scratch, "bad.tar"));
    await card.getByRole("button", { name: "Upload a new version" }).click();
    await card.getByText("failed", { exact: true }).waitFor();
    await card
      .getByRole("alert")
      .filter({
        hasText: /The last deploy failed.*not a tar.*The version before it stays online\./,
      })
      .waitFor();
    assert.equal((await visitPage(caFile, "blog.home", network.httpsPort)).body, "page two\n");
    await card
      .getByLabel("Build log")
      .getByText(/^failed: archive: not a tar/)
      .waitFor();
    assert.equal(await card.getByRole("alert").count(), 1);
    for (const [size, viewport] of Object.entries(SIZES)) {
      await page.setViewportSize(viewport);
      await page.screenshot({ path: join(shotsDir, `pages-${size}.png`), fullPage: true });
    }
    await page.setViewportSize(SIZES.desktop);

    await card.getByRole("button", { name: "Roll back" }).click();
    await serves("blog.home", "page one\n");
    // A good version is back: the failure box goes.
    await card.getByText("online", { exact: true }).waitFor();
    assert.equal(await card.getByRole("alert").count(), 0);

    await card.getByText("Public domains: 0").click();
    await card.getByLabel("Public domain to add").fill("www.example.org");
    await card.getByRole("button", { name: "Add", exact: true }).click();
    await card.getByRole("link", { name: "https://www.example.org/" }).waitFor();
    await card.getByRole("button", { name: "Remove www.example.org" }).click();
    await card
      .getByRole("link", { name: "https://www.example.org/" })
      .waitFor({ state: "detached" });

    await card.getByRole("button", { name: "Delete…" }).click();
    await page.getByText("No pages yet.").waitFor();
  });

  it("creates a git page that deploys by itself, and shows its webhook URL on request", async () => {
    assert.ok(daemon && git);
    await page.goto(`${daemon.url}/pages`);
    await page.getByRole("button", { name: "Create a page…" }).click();
    const dialog = page.getByRole("dialog", { name: "Create a page" });
    await dialog.getByLabel(/^Name/).fill("docs");
    await dialog.getByRole("radio", { name: "A git repository" }).check();
    await dialog.getByRole("button", { name: "Create", exact: true }).click();
    await dialog.getByText("Give the repository's URL.").waitFor();
    await dialog.getByLabel(/^Repository URL/).fill(git.url("site.git"));
    await dialog.getByLabel("Folder to serve (optional: all of it)").fill("docs");
    await dialog.getByRole("button", { name: "Create", exact: true }).click();
    await dialog.waitFor({ state: "detached" });

    const card = page.getByRole("article", { name: "docs" });
    await card.getByText("online", { exact: true }).waitFor();
    await card.getByText(/^1 file, 9 B, commit [0-9a-f]{40}, /).waitFor();
    await card.getByText(`Git: ${git.url("site.git")} (folder docs)`).waitFor();
    await serves("docs.home", "from git\n");

    await card.getByRole("button", { name: "Show the webhook URL" }).click();
    await card.getByRole("button", { name: "Show", exact: true }).click();
    await card.getByText(/\/api\/v1\/pages\/docs\/hook\/[0-9a-f]+$/).waitFor();

    // A rebuild deploys the same commit again: the version before becomes the previous.
    await card.getByRole("button", { name: "Rebuild" }).click();
    await card.getByText("Previous version").waitFor();
    await card.getByText("online", { exact: true }).waitFor();
    await card.getByRole("button", { name: "Delete…" }).click();
    await page.getByText("No pages yet.").waitFor();
  });
});
