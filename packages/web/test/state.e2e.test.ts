/**
 * The State repository screen in Debian's Chromium against a real daemon
 * (real Podman: a sync reads the box's apps) following a state repository
 * over git smart HTTP that declares a package repository, a setting and a
 * person's volume: an administrator follows it from the screen and sees the
 * commit, what git manages and the history; a new commit shows after Sync
 * now; a broken commit shows the failed sync's alert and a refused row.
 * The Settings, Repositories and Storage screens mark what git declares
 * Managed from git with its controls disabled, next to objects made by hand
 * that stay editable; an ordinary user sees no mark (and no error). A
 * screenshot of the screens lands in docs/screenshots for reviewers.
 */
import assert from "node:assert/strict";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import type { TownClient } from "@townos/client";
import type { RunningDaemon } from "@townos/daemon";
import { setupAdmin, startPodmanDaemon, untilAppsAvailable } from "../../daemon/test/daemon.js";
import {
  commitFiles,
  createRepo,
  git,
  startGitServer,
  type GitServer,
} from "../../daemon/test/git-server.js";
import { scratchDir } from "../../daemon/test/net.js";
import {
  podmanMissing,
  preparePodmanHost,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
  type TestPodman,
} from "../../daemon/test/runtime/podman-host.js";
import { chromiumMissing, ensureBuilt, launchChromium, signedInPage, webDir } from "./browser.js";

const shotsDir = join(webDir, "../../docs/screenshots");
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const missing: string | false = chromiumMissing || podmanMissing;
if (missing) console.log(`# skipping the State repository screen test: ${missing}`);

const PACKAGE = `
image: ${TEST_IMAGE}
description: A package, so that the repository has one
entrypoint: ["/bin/busybox"]
command: ["sleep", "3600"]
`;

describe("the State repository screen", { skip: missing, timeout: 240_000 }, () => {
  let scratch = "";
  let podman: TestPodman | undefined;
  let server: GitServer | undefined;
  let daemon: RunningDaemon | undefined;
  let admin: TownClient & { token: string };
  let stateDir = "";
  let context: BrowserContext | undefined;
  let page: Page;

  const short = async (): Promise<string> =>
    (await git(stateDir, ["rev-parse", "HEAD"])).slice(0, 7);
  /** A card of the screen by its heading (cards are sections without a landmark name). */
  const section = (title: string) =>
    page.locator("section", { has: page.getByRole("heading", { name: title, level: 2 }) });
  const open = async (link: string, heading = link): Promise<void> => {
    await page
      .getByRole("navigation", { name: "Main" })
      .getByRole("link", { name: link, exact: true })
      .click();
    await page.getByRole("heading", { name: heading, level: 1 }).waitFor();
  };

  before(async () => {
    await ensureBuilt();
    await mkdir(shotsDir, { recursive: true });
    await preparePodmanHost();
    scratch = await scratchDir("town-web-state-");
    podman = await startTestPodman(scratch);
    const root = join(scratch, "git");
    await createRepo(root, "apps.git", { "packages/sleeper/1.0.yaml": PACKAGE });
    server = await startGitServer({ root });
    stateDir = await createRepo(root, "state.git", {
      "repositories.yaml": `- name: family\n  url: ${server.url("apps.git")}\n`,
      "settings.yaml": "uploads.max_size: 2gb\n",
      "volumes/photos.yaml": "{}\n",
      "README.md": "The box's state.\n",
    });
    daemon = await startPodmanDaemon(join(scratch, "box"), podman.podman, {
      webRoot: join(webDir, "dist"),
    });
    admin = await setupAdmin(daemon, "admin-password-5e1a");
    await untilAppsAvailable(admin);
    context = await launchChromium(join(scratch, "chromium"), { viewport: SIZES.desktop });
    page = await signedInPage(context, daemon.url, admin.token);
  });

  after(async () => {
    try {
      await context?.close();
      await daemon?.stop();
      await server?.close();
    } finally {
      if (podman) stopTestPodman(podman);
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("follows a repository: its commit, what it manages and its history", async () => {
    assert.ok(daemon && server);
    await page.goto(daemon.url);
    await open("State repository");
    await page.getByText("No state repository is set").waitFor();

    await page.getByRole("button", { name: "Follow a repository…" }).click();
    const dialog = page.getByRole("dialog", { name: "Follow a state repository" });
    await dialog.getByLabel(/^Repository URL/).fill(server.url("state.git"));
    await dialog.getByLabel(/^Look for new commits every/).fill("1h");
    await dialog.getByRole("button", { name: "Follow and sync" }).click();
    await dialog.waitFor({ state: "detached", timeout: 60_000 });

    const source = section("Repository");
    await source.getByText(server.url("state.git"), { exact: true }).waitFor();
    await source.getByText("1h", { exact: true }).waitFor();
    await source.getByText(new RegExp(`^${await short()}, applied `)).waitFor();
    const managed = section("Managed from git");
    const declared: [kind: string, names: string][] = [
      ["Repositories", "family"],
      ["Settings", "uploads.max_size"],
      ["Volumes", "photos"],
    ];
    for (const [kind, names] of declared) {
      await managed.getByRole("definition").filter({ hasText: names }).waitFor();
      await managed.getByRole("term").filter({ hasText: kind }).waitFor();
    }
    const history = page.getByRole("table", { name: "Commits" });
    const first = history.getByRole("row").filter({ hasText: await short() });
    await first.getByText("initial commit").waitFor();
    await first.getByText("Town Test <test@town.invalid>").waitFor();
    await first.getByText("applied", { exact: true }).waitFor();
    await first.getByText(/add repository family/).waitFor();
    await first.getByText(/create volume photos/).waitFor();
    assert.equal(await page.getByRole("alert").count(), 0);
  });

  it("shows a new commit after Sync now, and a broken one's error", async () => {
    await commitFiles(stateDir, { "settings.yaml": "uploads.max_size: 3gb\n" }, "bigger uploads");
    const raised = await short();
    await page.getByRole("button", { name: "Sync now" }).click();
    const history = page.getByRole("table", { name: "Commits" });
    const row = history.getByRole("row").filter({ hasText: raised });
    await row.getByText("bigger uploads").waitFor({ timeout: 60_000 });
    await row.getByText(/set uploads\.max_size = /).waitFor();
    const source = section("Repository");
    await source.getByText(new RegExp(`^${raised}, applied `)).waitFor();

    await commitFiles(stateDir, { "volumes/photos.yaml": "quota: lots\n" }, "a broken quota");
    const broken = await short();
    await page.getByRole("button", { name: "Sync now" }).click();
    const alert = page.getByRole("alert").filter({ hasText: "The last sync failed" });
    await alert.getByText(/volumes\/photos\.yaml/).waitFor({ timeout: 60_000 });
    const refused = history.getByRole("row").filter({ hasText: broken });
    await refused.getByText("refused", { exact: true }).waitFor();
    await refused.getByText(/quota: "lots" is not a size/).waitFor();
    // The box stays on the commit before.
    await source.getByText(new RegExp(`^${raised}, applied `)).waitFor();
    for (const [size, viewport] of Object.entries(SIZES)) {
      await page.setViewportSize(viewport);
      await page.screenshot({ path: join(shotsDir, `state-${size}.png`), fullPage: true });
    }
    await page.setViewportSize(SIZES.desktop);
  });

  it("marks what git declares and disables its controls; objects made by hand stay editable", async () => {
    assert.ok(daemon && server);
    await admin.addRepository({ name: "extra", url: server.url("apps.git") });
    await admin.createVolume({ name: "music" });

    await open("Settings");
    const declared = page.locator("form", { hasText: "uploads.max_size" });
    await declared.getByText("Managed from git").waitFor();
    assert.equal(await page.getByLabel(/^uploads\.max_size/).inputValue(), "3gb");
    assert.ok(await page.getByLabel(/^uploads\.max_size/).isDisabled());
    assert.ok(await declared.getByRole("button", { name: "Save" }).isDisabled());
    const byHand = page.locator("form", { hasText: "uploads.unpack_timeout" });
    assert.ok(await page.getByLabel(/^uploads\.unpack_timeout/).isEnabled());
    assert.equal(await byHand.getByText("Managed from git").count(), 0);
    await declared.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(shotsDir, "state-managed-desktop.png") });

    await open("Repositories");
    const family = page
      .getByRole("listitem")
      .filter({ has: page.getByRole("heading", { name: "family" }) });
    await family.getByText("Managed from git").waitFor();
    assert.ok(await family.getByRole("button", { name: "Move family down" }).isDisabled());
    assert.ok(await family.getByRole("button", { name: "Remove" }).isDisabled());
    assert.ok(await family.getByRole("button", { name: "Refresh" }).isEnabled());
    const extra = page
      .getByRole("listitem")
      .filter({ has: page.getByRole("heading", { name: "extra" }) });
    assert.ok(await extra.getByRole("button", { name: "Move extra up" }).isEnabled());
    assert.ok(await extra.getByRole("button", { name: "Remove" }).isEnabled());
    assert.equal(await extra.getByText("Managed from git").count(), 0);

    await open("Storage");
    const photos = page.getByRole("article", { name: "user.photos" });
    await photos.getByText("Managed from git").waitFor();
    assert.ok(await photos.getByRole("button", { name: "Delete…" }).isDisabled());
    const music = page.getByRole("article", { name: "user.music" });
    assert.ok(await music.getByRole("button", { name: "Delete…" }).isEnabled());
    assert.equal(await music.getByText("Managed from git").count(), 0);
  });

  it("shows an ordinary user no mark and no error (only administrators read the state)", async () => {
    assert.ok(daemon && context);
    await admin.createAccount({
      username: "neighbour",
      password: "neighbour-password-2b7d",
      role: "user",
    });
    await context.clearCookies();
    await page.goto(daemon.url);
    await page.getByLabel("Username").fill("neighbour");
    await page.getByLabel("Password").fill("neighbour-password-2b7d");
    await page.getByRole("button", { name: "Sign in" }).click();
    await open("Settings");
    await page.getByLabel(/^uploads\.max_size/).waitFor();
    assert.ok(await page.getByLabel(/^uploads\.max_size/).isDisabled());
    await open("Repositories");
    await page.getByRole("heading", { name: "family" }).waitFor();
    assert.equal(await page.getByText("Managed from git").count(), 0);
    assert.equal(await page.getByRole("alert").count(), 0);
  });
});
