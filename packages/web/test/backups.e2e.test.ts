/**
 * The Backups screen and an app's restore points in Debian's Chromium
 * against a real daemon (real Podman, a package repository over git smart
 * HTTP): an administrator adds a folder target, sets a schedule for an app
 * sending to it, backs up now and watches the run finish and the backup
 * appear on the target; then on the app's page takes a restore point, sees
 * it in the timeline and restores the app to it; a run to a target whose
 * folder is gone fails and shows on Home. A screenshot of each lands
 * in docs/screenshots for reviewers.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import type { RunningDaemon } from "@townos/daemon";
import { setupAdmin, startPodmanDaemon, untilAppsAvailable } from "../../daemon/test/daemon.js";
import { createRepo, startGitServer, type GitServer } from "../../daemon/test/git-server.js";
import {
  podmanMissing,
  preparePodmanHost,
  removeAppLeftovers,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
  type TestPodman,
} from "../../daemon/test/runtime/podman-host.js";
import { chromiumMissing, ensureBuilt, launchChromium, signedInPage, webDir } from "./browser.js";

const shotsDir = join(webDir, "../../docs/screenshots");
const missing: string | false = chromiumMissing || podmanMissing;
if (missing) console.log(`# skipping the Backups screen test: ${missing}`);

/** An app with one volume holding a file, and nothing to publish. */
const NOTES_PACKAGE = `
image: ${TEST_IMAGE}
description: Notes, for testing the Backups screen
entrypoint: ["/bin/busybox"]
command: ["sh", "-c", "[ -f /data/note.txt ] || echo first > /data/note.txt; exec sleep 3600"]
volumes:
  data:
    mountpoint: /data
`;

describe(
  "the Backups screen and an app's restore points",
  { skip: missing, timeout: 240_000 },
  () => {
    // A repository name of this run only: container and network names are host-wide.
    const repo = `b${randomBytes(4).toString("hex")}`;
    const app = `${repo}/notes`;
    let scratch = "";
    let podman: TestPodman | undefined;
    let server: GitServer | undefined;
    let daemon: RunningDaemon | undefined;
    let context: BrowserContext | undefined;
    let page: Page;

    before(async () => {
      await ensureBuilt();
      await mkdir(shotsDir, { recursive: true });
      await preparePodmanHost();
      scratch = await mkdtemp(join(tmpdir(), "town-web-backups-"));
      await mkdir(join(scratch, "usb"));
      podman = await startTestPodman(scratch);
      await createRepo(join(scratch, "git"), "apps.git", {
        "packages/notes/1.0.yaml": NOTES_PACKAGE,
      });
      server = await startGitServer({ root: join(scratch, "git") });
      daemon = await startPodmanDaemon(scratch, podman.podman, { webRoot: join(webDir, "dist") });
      const admin = await setupAdmin(daemon, "admin-password-b4c7");
      await admin.addRepository({ name: repo, url: server.url("apps.git") });
      await untilAppsAvailable(admin);
      await admin.changeApp(
        { action: "install", request: { repo, name: "notes", version: "1.0", answers: {} } },
        () => undefined,
      );
      context = await launchChromium(join(scratch, "chromium"), {
        viewport: { width: 1280, height: 800 },
      });
      page = await signedInPage(context, daemon.url, admin.token);
    });

    after(async () => {
      try {
        await context?.close();
        await daemon?.stop();
        await server?.close();
        if (podman) await removeAppLeftovers(podman.podman, [app]);
      } finally {
        if (podman) stopTestPodman(podman);
        await rm(scratch, { recursive: true, force: true });
      }
    });

    it("adds a folder target, schedules the app, backs up now and lists the backup", async () => {
      assert.ok(daemon);
      await page.goto(daemon.url);
      await page
        .getByRole("navigation", { name: "Main" })
        .getByRole("link", { name: "Backups" })
        .click();
      await page.getByRole("heading", { name: "Backups", level: 1 }).waitFor();
      await page.getByText("No targets yet").waitFor();

      // The dialog names what is missing before anything is sent.
      await page.getByRole("button", { name: "Add a target…" }).click();
      const addTarget = page.getByRole("dialog", { name: "Add a backup target" });
      await addTarget.getByRole("button", { name: "Add", exact: true }).click();
      await addTarget.getByText("Give a name of lower-case letters").waitFor();
      await addTarget.getByLabel(/^Name/).fill("usb");
      await addTarget.getByLabel("Folder on the box").fill(join(scratch, "usb"));
      await addTarget.getByRole("button", { name: "Add", exact: true }).click();
      await addTarget.waitFor({ state: "detached" });
      const target = page.getByRole("article", { name: "usb" });
      await target.getByText(join(scratch, "usb")).waitFor();

      await page.getByRole("button", { name: "Add a schedule…" }).click();
      const schedule = page.getByRole("dialog", { name: "New schedule" });
      await schedule.getByLabel("App (repository/name) or volume").fill(app);
      assert.equal(await schedule.getByLabel("When (cron, UTC)").inputValue(), "0 * * * *");
      assert.equal(await schedule.getByRole("textbox", { name: "Hourly" }).inputValue(), "24");
      await schedule.getByLabel("usb").check();
      await schedule.getByRole("button", { name: "Save" }).click();
      await schedule.waitFor({ state: "detached" });
      const policy = page.getByRole("row").filter({ hasText: app }).first();
      await policy.getByText("24 hourly, 7 daily, 4 weekly").waitFor();

      await page.getByRole("button", { name: "Back up now", exact: true }).click();
      const runs = page.getByRole("table", { name: "Recent runs" });
      const run = runs.getByRole("row").filter({ hasText: app }).first();
      await run.getByText("done", { exact: true }).waitFor({ timeout: 90_000 });
      await policy.getByText("done", { exact: true }).waitFor();

      await target.getByText("Backups on usb").click();
      const backups = target.getByRole("table", { name: "Backups on usb" });
      const backup = backups.getByRole("row").filter({ hasText: app });
      await backup.getByRole("button", { name: "Restore", exact: true }).waitFor();
      assert.equal(await backup.getByRole("cell").nth(2).textContent(), "1.0");
      // Something was written to the folder.
      assert.ok((await readdir(join(scratch, "usb"))).length > 0);
      await page.screenshot({ path: join(shotsDir, "backups-desktop.png"), fullPage: true });
    });

    it("takes a restore point on the app's page and restores the app to it", async () => {
      assert.ok(daemon);
      await page.goto(`${daemon.url}/apps/${repo}/notes`);
      const timeline = page.getByRole("list", { name: "Restore points" });
      await page.getByRole("heading", { name: "Restore points" }).waitFor();
      const byHand = timeline.getByRole("listitem").filter({ hasText: "taken by hand" });
      const before = await byHand.count();
      await page.getByRole("button", { name: "Take a restore point" }).click();
      await byHand.nth(before).waitFor();
      const newest = timeline.getByRole("listitem").first();
      await newest.getByText("taken by hand").waitFor();
      await newest.getByText("Version 1.0").waitFor();

      await newest.getByRole("button", { name: "Restore to this…" }).click();
      const confirm = page.getByRole("dialog", { name: "Restore notes" });
      await confirm.getByText(/its current state is kept as a restore point first/).waitFor();
      await confirm.getByRole("button", { name: "Restore", exact: true }).click();
      await confirm.waitFor({ state: "detached", timeout: 90_000 });
      await page.getByText(/^notes is back at 1\.0; what it replaced is kept as \S+\.$/).waitFor();
      await timeline.getByText("before a rollback").waitFor();
      await page.screenshot({ path: join(shotsDir, "restore-points-desktop.png"), fullPage: true });
    });

    it("shows a failed backup on Home when the target's folder is gone", async () => {
      assert.ok(daemon);
      await rm(join(scratch, "usb"), { recursive: true, force: true });
      await page.goto(`${daemon.url}/backups`);
      await page.getByRole("button", { name: `Back up ${app} now` }).click();
      const run = page.getByRole("table", { name: "Recent runs" }).getByRole("row").nth(1);
      await run.getByText("failed", { exact: true }).waitFor({ timeout: 90_000 });

      await page
        .getByRole("navigation", { name: "Main" })
        .getByRole("link", { name: "Home" })
        .click();
      const failures = page.getByRole("region", { name: "Backups that failed" });
      await failures.getByText(new RegExp(`${app} → usb: .+ \\(.+\\)$`)).waitFor();
      await failures.getByRole("link", { name: "Backups" }).waitFor();
    });
  },
);
