/**
 * The Monitoring screen in Debian's Chromium against a real daemon running
 * the real Prometheus and Node Exporter (apps off: the box's own charts and
 * targets need none): an account finds it in the menu, the box's charts
 * are drawn, the app charts say there is no data yet, a longer range asks
 * for coarser points, every target shows its health, and once Prometheus
 * is gone the charts and Home's alerts say so instead of showing nothing.
 * Screenshots land in docs/screenshots for reviewers.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { startDaemon, type RunningDaemon } from "@townos/daemon";
import { setupAdmin, testDaemonConfig } from "../../daemon/test/daemon.js";
import { eventually } from "../../daemon/test/net.js";
import { prometheusMissing } from "../../daemon/test/monitoring.js";
import { freePort } from "../../daemon/test/runtime/podman-host.js";
import { chromiumMissing, ensureBuilt, launchChromium, webDir } from "./browser.js";

const shotsDir = join(webDir, "../../docs/screenshots");
const SIZES = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } };

const missing = chromiumMissing || prometheusMissing();
if (missing) console.log(`# skipping the Monitoring screen test: ${missing}`);

describe("the Monitoring screen", { skip: missing, timeout: 240_000 }, () => {
  let scratch: string;
  let daemon: RunningDaemon | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  const ranges: URLSearchParams[] = [];

  before(async () => {
    await ensureBuilt();
    await mkdir(shotsDir, { recursive: true });
    scratch = await mkdtemp(join(tmpdir(), "town-web-monitoring-"));
    daemon = await startDaemon(
      testDaemonConfig(scratch, {
        webRoot: join(webDir, "dist"),
        apps: false,
        monitoring: { prometheusPort: await freePort(), nodeExporterPort: await freePort() },
      }),
    );
    await daemon.booted;
    const admin = await setupAdmin(daemon, "admin-password-70d1");
    await admin.setSetting("monitoring.scrape_interval", 5);
    context = await launchChromium(join(scratch, "chromium"), { viewport: SIZES.desktop });
    await context.addCookies([{ name: "town_session", value: admin.token, url: daemon.url }]);
    page = context.pages()[0] ?? (await context.newPage());
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (url.pathname === "/api/v1/monitoring/query_range") ranges.push(url.searchParams);
    });
  });

  after(async () => {
    await context?.close();
    const monitoring = daemon?.boot.services?.monitoring;
    await daemon?.stop();
    // The daemon leaves Prometheus running for the next one to adopt: this test's must go.
    await monitoring?.stopForTests();
    await rm(scratch, { recursive: true, force: true });
  });

  /** Reloads until `check` passes: charts and targets refresh only every 30 s by themselves. */
  const untilShown = (what: string, check: () => Promise<unknown>) =>
    eventually(
      what,
      async () => {
        try {
          await check();
        } catch (error) {
          await page.reload();
          throw error;
        }
      },
      90_000,
    );

  it("draws the box's charts, shows each target's health, and says when Prometheus is gone", async () => {
    assert.ok(daemon);
    await page.goto(daemon.url);
    await page
      .getByRole("navigation", { name: "Main" })
      .getByRole("link", { name: "Monitoring" })
      .click();
    await page.getByRole("heading", { name: "Monitoring", level: 1 }).waitFor();

    const memory = page.getByRole("article", { name: "Memory in use" });
    await untilShown("the memory chart", () => memory.locator("canvas").waitFor({ timeout: 3000 }));
    await untilShown("CPU, which needs two scrapes", () =>
      page
        .getByRole("article", { name: "CPU in use" })
        .locator("canvas")
        .waitFor({ timeout: 3000 }),
    );
    // No apps here: their charts say so rather than drawing an empty box.
    await page.getByRole("article", { name: "CPU by app" }).getByText("No data yet.").waitFor();
    const targets = page.getByRole("region", { name: "What is measured" });
    await untilShown("Node Exporter up", () =>
      targets
        .getByRole("row")
        .filter({ hasText: /^node/ })
        .filter({ hasText: "up" })
        .waitFor({ timeout: 3000 }),
    );
    // An hour: 240 points, 15 s apart.
    assert.ok(ranges.some((query) => query.get("step") === "15"));
    for (const [size, viewport] of Object.entries(SIZES)) {
      await page.setViewportSize(viewport);
      await page.screenshot({ path: join(shotsDir, `monitoring-${size}.png`), fullPage: true });
    }
    await page.setViewportSize(SIZES.desktop);

    // 30 days: 240 points of three hours each, the rate window two steps.
    ranges.length = 0;
    await page.getByLabel("Time range").selectOption("30d");
    await memory.locator("canvas").waitFor();
    await eventually("the 30-day queries", () => {
      const cpu = ranges.find((query) => query.get("query")?.includes("node_cpu_seconds_total"));
      assert.equal(cpu?.get("step"), "10800");
      assert.match(cpu.get("query") ?? "", /\[21600s\]/);
      assert.equal(Number(cpu.get("end")) - Number(cpu.get("start")), 30 * 86_400);
      return Promise.resolve();
    });

    // Prometheus gone: the charts and Home's alerts say so.
    await daemon.boot.services?.monitoring.stopForTests();
    await page.reload();
    await memory.getByText(/^Prometheus is (down|not answering yet|starting)/).waitFor();
    await page.getByRole("link", { name: "Home" }).first().click();
    await page.getByText("Alerts are unavailable right now").waitFor();
  });
});
