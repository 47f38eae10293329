/**
 * The VM images screen in Debian's Chromium against a real daemon (apps off:
 * the image store does not need them) and a loopback server of qcow2 files:
 * an administrator finds it in the menu, adds an image from a URL and
 * watches its progress bar, sees a failed download's error and dismisses
 * it, and is shown why an image an installed app uses cannot be deleted.
 * Screenshots of the screen land in docs/screenshots for reviewers.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { startDaemon, type RunningDaemon } from "@townos/daemon";
import { setupAdmin, testDaemonConfig } from "../../daemon/test/daemon.js";
import { installOf } from "../../daemon/test/apps/fakes.js";
import { asVm, compileExample } from "../../daemon/test/runtime/examples.js";
import { startImageServer, type ImageServer } from "../../daemon/test/vm-image-server.js";
import { chromiumMissing, ensureBuilt, launchChromium, webDir } from "./browser.js";

const shotsDir = join(webDir, "../../docs/screenshots");
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

if (chromiumMissing) console.log(`# skipping the VM images screen test: ${chromiumMissing}`);

describe("the VM images screen", { skip: chromiumMissing, timeout: 180_000 }, () => {
  let scratch: string;
  let files: ImageServer | undefined;
  let daemon: RunningDaemon | undefined;
  let context: BrowserContext | undefined;
  let page: Page;

  before(async () => {
    await ensureBuilt();
    await mkdir(shotsDir, { recursive: true });
    scratch = await mkdtemp(join(tmpdir(), "town-web-vm-images-"));
    files = await startImageServer(scratch);
    daemon = await startDaemon(
      testDaemonConfig(scratch, { webRoot: join(webDir, "dist"), apps: false }),
    );
    await daemon.booted;
    const admin = await setupAdmin(daemon, "admin-password-51c0");
    context = await launchChromium(join(scratch, "chromium"), {
      viewport: SIZES.desktop,
    });
    await context.addCookies([{ name: "town_session", value: admin.token, url: daemon.url }]);
    page = context.pages()[0] ?? (await context.newPage());
    // Deleting asks first.
    page.on("dialog", (dialog) => void dialog.accept());
  });

  after(async () => {
    await context?.close();
    await daemon?.stop();
    await files?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it("adds an image with a progress bar, dismisses a failed one, and says who uses an image", async () => {
    assert.ok(daemon && files);
    await page.goto(daemon.url);
    await page
      .getByRole("navigation", { name: "Main" })
      .getByRole("link", { name: "VM images" })
      .click();
    await page.getByRole("heading", { name: "VM images", level: 1 }).waitFor();
    await page.getByText("No VM images yet.").waitFor();

    // The server holds the second half back: the bar stands at 50% meanwhile.
    files.hold();
    await page.getByLabel("URL of the disk image").fill(`${files.url}/held.qcow2`);
    await page.getByLabel("Name (optional: made from the URL)").fill("tiny");
    await page.getByRole("button", { name: "Add", exact: true }).click();
    const bar = page.getByRole("progressbar", { name: "Adding tiny" });
    await page
      .getByRole("status")
      .filter({ hasText: /^Downloading: .+ \(50%\)$/ })
      .waitFor();
    const size = files.files.get("/held.qcow2")?.length ?? 0;
    assert.equal(await bar.getAttribute("value"), String(Math.floor(size / 2)));
    assert.equal(await bar.getAttribute("max"), String(size));
    files.release();
    const card = page.getByRole("article", { name: "tiny" });
    await card.getByText("as the guest sees it").waitFor();
    assert.match((await card.textContent()) ?? "", /16 MB as the guest sees it/);
    assert.match((await card.textContent()) ?? "", /From http:\/\/127\.0\.0\.1:\d+\/held\.qcow2/);
    await bar.waitFor({ state: "detached" });
    for (const [size, viewport] of Object.entries(SIZES)) {
      await page.setViewportSize(viewport);
      await page.screenshot({ path: join(shotsDir, `vm-images-${size}.png`), fullPage: true });
    }
    await page.setViewportSize(SIZES.desktop);

    // A wrong checksum: the error stays until dismissed.
    await page.getByLabel("URL of the disk image").fill(`${files.url}/tiny.qcow2`);
    await page.getByLabel("Name (optional: made from the URL)").fill("bad");
    await page.getByLabel("SHA-256 checksum (optional)").fill("0".repeat(64));
    await page.getByRole("button", { name: "Add", exact: true }).click();
    const failed = page.getByRole("article", { name: "bad" });
    await failed
      .getByRole("alert")
      .filter({ hasText: /sha256 is [0-9a-f]{64}, but 0{64} was expected/ })
      .waitFor();
    await failed.getByRole("button", { name: "Dismiss" }).click();
    await failed.waitFor({ state: "detached" });

    // An installed app runs a VM on it: the delete is refused, naming the app.
    daemon.boot.services?.installs.put(installOf(asVm(compileExample("hello", "1.0"), "tiny")));
    await page.reload();
    await card.getByText("Used by default/hello").waitFor();
    await card.getByRole("button", { name: "Delete…" }).click();
    await card
      .getByRole("alert")
      .filter({ hasText: /VM image "tiny" is used by default\/hello/ })
      .waitFor();
    daemon.boot.services?.installs.remove("default", "hello", false);
    await card.getByRole("button", { name: "Delete…" }).click();
    await page.getByText("No VM images yet.").waitFor();
  });
});
