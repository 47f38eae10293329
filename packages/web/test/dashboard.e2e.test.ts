/**
 * The dashboard end to end in Debian's Chromium against a real daemon (real
 * Podman, a package repository over git smart HTTP): first-run setup, sign
 * in, add the repository, install an app answering its questions (fixing
 * invalid answers on the spot), see it running, open it, read its logs,
 * uninstall keeping the data and get the data back on reinstall; then an
 * ordinary user finds the admin actions absent and refused. Screenshots of
 * each main screen land in docs/screenshots for reviewers.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { BrowserContext, Page } from "playwright-core";
import { TownClient } from "@townos/client";
import { startDaemon, type RunningDaemon } from "@townos/daemon";
import { testDaemonConfig, until } from "../../daemon/test/daemon.js";
import {
  commitFiles,
  createRepo,
  startGitServer,
  type GitServer,
} from "../../daemon/test/git-server.js";
import {
  freePort,
  podmanMissing,
  preparePodmanHost,
  TEST_IMAGE,
} from "../../daemon/test/runtime/podman-host.js";
import { Podman } from "../../daemon/src/runtime/podman/client.js";
import type { ServiceState } from "../../daemon/src/runtime/podman/service.js";
import { appNetworkName } from "../../daemon/src/apps/names.js";
import { LABEL_APP } from "../../daemon/src/apps/labels.js";
import { chromiumMissing, ensureBuilt, launchChromium, webDir } from "./browser.js";

const run = promisify(execFile);
const shotsDir = join(webDir, "../../docs/screenshots");
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

const missing: string | false = chromiumMissing || podmanMissing;
if (missing) console.log(`# skipping the dashboard test: ${missing}`);

const PAGE_TEXT = "hello from a Town OS app";
const ADMIN = { username: "admin", password: "admin-password-7d1e" };

/**
 * busybox httpd serving a template, with a file written on the first start
 * only (a random number): finding it again after a reinstall proves the
 * data was kept.
 */
const WEB_PACKAGE = `
image: ${TEST_IMAGE}
description: A small web page, for testing the dashboard
entrypoint: ["/bin/busybox"]
command: ["sh", "-c", "echo town-web started; [ -f /www/visits.txt ] || echo $RANDOM$RANDOM > /www/visits.txt; exec httpd -f -v -p 8080 -h /www"]
network:
  external:
    "@port@": "8080"
volumes:
  www:
    mountpoint: /www
questions:
  port:
    query: Port for the page
    type: port
  greeting:
    query: Greeting shown to visitors
  admin_password:
    query: Administrator password
    type: secret
  extras:
    query: Turn on extras
    type: boolean
  cache:
    query: Cache size
    type: bytes
    default: 64mb
    show_if: extras
notes:
  Greeting: "@greeting@"
  Admin password: "@admin_password@"
templates:
  index:
    volume: www
    path: index.html
    content: "${PAGE_TEXT}\\n"
`;

/**
 * Saves the page at desktop and phone sizes as docs/screenshots/<name>-<size>.png:
 * the whole page, or what the screen shows while a dialog is open.
 */
async function shoot(page: Page, name: string, fullPage = true): Promise<void> {
  for (const [size, viewport] of Object.entries(SIZES)) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: join(shotsDir, `${name}-${size}.png`), fullPage });
  }
  await page.setViewportSize(SIZES.desktop);
}

describe("the dashboard in Chromium", { skip: missing, timeout: 300_000 }, () => {
  // A repository name of this run only: container and network names are host-wide.
  const repo = `w${randomBytes(4).toString("hex")}`;
  let scratch: string;
  let server: GitServer | undefined;
  let daemon: RunningDaemon | undefined;
  let podman: Podman;
  let service: ServiceState = { started: false, pid: null };
  let context: BrowserContext | undefined;
  let page: Page;
  /** The administrator's API client, on the browser's session. */
  let admin: TownClient;

  before(async () => {
    await ensureBuilt();
    await mkdir(shotsDir, { recursive: true });
    await preparePodmanHost();
    scratch = await mkdtemp(join(tmpdir(), "town-web-e2e-"));
    podman = new Podman({ socketPath: join(scratch, "podman.sock") });
    service = await podman.ensureService();
    await createRepo(join(scratch, "git"), "apps.git", { "packages/web/1.0.yaml": WEB_PACKAGE });
    server = await startGitServer({ root: join(scratch, "git") });
    daemon = await startDaemon(
      testDaemonConfig(scratch, {
        webRoot: join(webDir, "dist"),
        apps: { podman: { socketPath: podman.socketPath } },
      }),
    );
    await daemon.booted;
    context = await launchChromium(join(scratch, "chromium"), { viewport: SIZES.desktop });
    page = context.pages()[0] ?? (await context.newPage());
  });

  after(async () => {
    try {
      await context?.close();
      await daemon?.stop();
      await server?.close();
      for (const container of await podman.listContainers({ [LABEL_APP]: `${repo}/web` })) {
        await podman.removeContainer(container.id, { timeoutSeconds: 0 });
      }
      await podman.removeNetwork(appNetworkName(repo, "web"));
    } finally {
      podman.close();
      if (service.pid !== null) process.kill(service.pid);
      await rm(scratch, { recursive: true, force: true });
    }
  });

  const nav = (name: string) =>
    page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true });

  async function openPackage(): Promise<void> {
    await nav("App store").click();
    await page.getByRole("heading", { name: `From ${repo}` }).waitFor();
    await page.getByRole("link", { name: "web", exact: true }).click();
    await page.getByRole("heading", { name: "web", level: 1 }).waitFor();
  }

  /** Reads a file the app serves on its published port. */
  async function served(port: number, path: string): Promise<string> {
    return until(
      path,
      20_000,
      async () => {
        const response = await fetch(`http://127.0.0.1:${port}${path}`, {
          signal: AbortSignal.timeout(2_000),
        });
        if (!response.ok) throw new Error(String(response.status));
        return (await response.text()).trim();
      },
      () => true,
    );
  }

  it("sets up, installs an app, shows it, uninstalls keeping data and reinstalls", async () => {
    assert.ok(daemon && server);
    // First run: the welcome screen creates the administrator.
    await page.goto(daemon.url);
    await page.getByRole("heading", { name: "Welcome to Town OS" }).waitFor();
    await shoot(page, "setup");
    await page.getByLabel("Setup code").fill(daemon.setupCode ?? "");
    await page.getByLabel("Username").fill(ADMIN.username);
    await page.getByLabel("Password", { exact: true }).fill(ADMIN.password);
    await page.getByLabel("Password again").fill(ADMIN.password);
    await page.getByRole("button", { name: "Create the administrator" }).click();

    // The guided tour, with the certificate to trust.
    await page.getByRole("heading", { name: "Next steps" }).waitFor();
    assert.equal(
      await page.getByRole("link", { name: "Download the certificate" }).getAttribute("href"),
      "/tls/ca.crt",
    );
    await shoot(page, "home-first-run");

    // Log out and in again.
    await page.getByText(`${ADMIN.username} (administrator)`).click();
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByText("You are signed out.").waitFor();
    await shoot(page, "login");
    await page.getByLabel("Username").fill(ADMIN.username);
    await page.getByLabel("Password").fill("wrong-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").getByText("wrong username or password").waitFor();
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Home" }).waitFor();

    // The browser's session is a cookie; the test's own API calls use it too.
    const cookie = (await context?.cookies(daemon.url))?.find((c) => c.name === "town_session");
    assert.ok(cookie, "the session cookie is set");
    admin = new TownClient({ baseUrl: daemon.url, token: cookie.value });
    // Storage and Podman come up after boot: apps answer `unavailable` until then.
    await until(
      "apps to be available",
      30_000,
      () => admin.apps(),
      () => true,
    );

    // Add the package repository.
    await nav("Repositories").click();
    await page.getByLabel("Name", { exact: true }).fill(repo);
    await page.getByLabel("Git URL").fill(server.url("apps.git"));
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await page.getByRole("heading", { name: repo }).waitFor();
    await page.getByText("Apps: 1").waitFor();
    await shoot(page, "repositories");

    // The store, and the package's page with its raw manifest.
    await openPackage();
    await page.getByText("Raw manifest").waitFor();
    await shoot(page, "package");
    await nav("App store").click();
    await page.getByRole("heading", { name: `From ${repo}` }).waitFor();
    await shoot(page, "store");
    await page.getByRole("link", { name: "web", exact: true }).click();

    // The install dialog: invalid answers are marked at their fields, all at once.
    await page.getByRole("button", { name: "Install…" }).click();
    const dialog = page.getByRole("dialog", { name: "Install web" });
    await dialog.waitFor();
    assert.equal(await dialog.getByLabel("Cache size").count(), 0, "show_if hides the group");
    await dialog.getByLabel("Turn on extras").check();
    assert.equal(await dialog.getByLabel("Cache size").inputValue(), "64");
    await dialog.getByLabel("Port for the page").fill("99999");
    await dialog.getByRole("button", { name: "Next: check" }).click();
    await dialog.getByText("Enter a port number between 1 and 65535").waitFor();
    await dialog.getByText("An answer is required.").waitFor();
    await shoot(page, "install-answers", false);

    // A port something already listens on: the daemon refuses it at its field.
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "0.0.0.0", resolve));
    try {
      const taken = (blocker.address() as net.AddressInfo).port;
      await dialog.getByLabel("Port for the page").fill(String(taken));
      await dialog.getByLabel("Greeting shown to visitors").fill("Welcome, neighbours");
      await dialog.getByRole("button", { name: "Next: check" }).click();
      // The daemon's own words, naming who holds the port.
      await dialog
        .getByText(`port ${taken} is already in use (by a program on this host)`)
        .waitFor();
      assert.equal(await dialog.getByText("An answer is required.").count(), 0);
    } finally {
      blocker.close();
    }

    // Fixed on the spot: a free port and a generated password.
    const port = await freePort();
    await dialog.getByLabel("Port for the page").fill(String(port));
    await dialog.getByRole("button", { name: "Generate" }).click();
    const password = await dialog.getByLabel("Administrator password").inputValue();
    assert.match(password, /^[0-9a-f]{64}$/);
    await dialog.getByRole("button", { name: "Next: check" }).click();
    await dialog.getByText("www at /www: new, empty").waitFor();
    await dialog.getByText(`${port} → 8080`).waitFor();
    await shoot(page, "install-preview", false);
    await dialog.getByRole("button", { name: "Install", exact: true }).click();

    // The install ends on the app's page, running.
    await page.waitForURL(`**/apps/${repo}/web`, { timeout: 90_000 });
    await page.locator(".page-header").getByText("Running").waitFor({ timeout: 60_000 });
    await page.getByText("Welcome, neighbours").waitFor();
    assert.equal(await page.getByText(password).count(), 0, "the password note is masked");

    // Home shows it running, with a link to its port.
    await nav("Home").click();
    const card = page.locator(".app-card", { hasText: "web" });
    await card.getByText("Running").waitFor();
    const link = card.getByRole("link", { name: `Open port ${port}` });
    assert.equal(await link.getAttribute("href"), `http://127.0.0.1:${port}/`);
    await shoot(page, "home");

    // Opening it shows the app's page.
    const [opened] = await Promise.all([context?.waitForEvent("page"), link.click()]);
    assert.ok(opened);
    await opened.waitForLoadState();
    assert.match(await opened.locator("body").innerText(), new RegExp(PAGE_TEXT));
    await opened.close();
    const visits = await served(port, "/visits.txt");
    assert.match(visits, /^[0-9]+$/);

    // Its live logs, searchable.
    await card.getByRole("link", { name: "web", exact: true }).click();
    const logs = page.locator("pre.logs");
    await logs.getByText("town-web started").waitFor({ timeout: 30_000 });
    await page.getByLabel("Search the logs").fill("no such line anywhere");
    await logs.getByText("No log lines yet.").waitFor();
    await page.getByLabel("Search the logs").fill("started");
    await logs.getByText("town-web started").waitFor();
    await shoot(page, "app");

    // An archive uploaded into the app's volume: the app serves its file.
    const archiveDir = join(scratch, "archive");
    await mkdir(archiveDir);
    await writeFile(join(archiveDir, "uploaded.txt"), "uploaded through the dashboard\n");
    const archive = join(scratch, "upload.tar.gz");
    await run("tar", ["-czf", archive, "-C", archiveDir, "uploaded.txt"]);
    await nav("Storage").click();
    const volumeCard = page.locator("article", {
      has: page.getByRole("heading", { name: `pkg.${repo}.web.www` }),
    });
    await volumeCard.getByLabel(/Archive to upload/).setInputFiles(archive);
    await volumeCard.getByRole("button", { name: "Upload", exact: true }).click();
    await volumeCard.getByText("Unpacked: 1 entries").waitFor({ timeout: 60_000 });
    await shoot(page, "storage-upload");
    assert.equal(await served(port, "/uploaded.txt"), "uploaded through the dashboard");
    await nav("Home").click();
    await card.getByRole("link", { name: "web", exact: true }).click();

    // Uninstall, keeping the data.
    await page.getByRole("button", { name: "Uninstall…" }).click();
    const confirm = page.getByRole("dialog", { name: "Uninstall web?" });
    assert.ok(await confirm.getByLabel(/Keep the data/).isChecked());
    await confirm.getByLabel("Delete the data").check();
    await confirm.getByText("Deleting the data cannot be undone.").waitFor();
    await shoot(page, "uninstall", false);
    await confirm.getByLabel(/Keep the data/).check();
    await confirm.getByRole("button", { name: "Uninstall", exact: true }).click();
    await page.getByText("No apps are installed yet.").waitFor({ timeout: 60_000 });

    // Reinstall: the last answers come back, and so does the data.
    await openPackage();
    await page.getByRole("button", { name: "Install…" }).click();
    await until(
      "the last answers",
      10_000,
      () => dialog.getByLabel("Port for the page").inputValue(),
      (value) => value === String(port),
    );
    assert.equal(
      await dialog.getByLabel("Greeting shown to visitors").inputValue(),
      "Welcome, neighbours",
    );
    await dialog.getByRole("button", { name: "Next: check" }).click();
    await dialog.getByText(/www at \/www: your earlier data/).waitFor();
    await dialog.getByRole("button", { name: "Install", exact: true }).click();
    await page.waitForURL(`**/apps/${repo}/web`, { timeout: 90_000 });
    await page.locator(".page-header").getByText("Running").waitFor({ timeout: 60_000 });
    assert.equal(await served(port, "/visits.txt"), visits);
    assert.equal(await served(port, "/uploaded.txt"), "uploaded through the dashboard");

    // A new version in the repository: Home offers it, the app's page applies it.
    const commit = await commitFiles(
      join(scratch, "git/apps.git"),
      { "packages/web/1.1.yaml": WEB_PACKAGE.replace("for testing", "upgraded, for testing") },
      "web 1.1",
    );
    await nav("Repositories").click();
    await page.getByRole("button", { name: "Refresh" }).click();
    await page.getByText(`at ${commit.slice(0, 10)}`).waitFor();
    await nav("Home").click();
    await page.getByText("Upgrades available: 1").waitFor();
    await card.getByText("Upgrade available: 1.1").waitFor();
    await shoot(page, "home-upgrade");
    await card.getByRole("link", { name: "web", exact: true }).click();
    await page.getByRole("button", { name: "Upgrade to 1.1" }).click();
    await page.getByText("Version 1.1").waitFor({ timeout: 90_000 });
    await page.locator(".page-header").getByText("Running").waitFor({ timeout: 60_000 });
    assert.equal(await page.getByRole("button", { name: "Upgrade to 1.1" }).count(), 0);
    assert.equal(await served(port, "/visits.txt"), visits);

    // The other screens, for the reviewers; each lists what the API gives.
    for (const [screen, heading, shows] of [
      ["storage", "Storage", `pkg.${repo}.web.www`],
      ["users", "Users", ADMIN.username],
      ["audit", "Audit log", "app.install"],
      ["settings", "Settings", "dns.tld"],
      ["network", "Network", "Download ca.crt"],
    ] as const) {
      await nav(heading === "Audit log" ? "Audit" : heading).click();
      await page.getByRole("heading", { name: heading, level: 1 }).waitFor();
      await page.getByText(shows).first().waitFor();
      await shoot(page, screen);
    }
    // On a phone the navigation folds behind the menu button.
    await page.setViewportSize(SIZES.phone);
    assert.ok(!(await nav("Home").isVisible()));
    await page.getByRole("button", { name: "Menu" }).click();
    await nav("Home").waitFor();
    await page.screenshot({ path: join(shotsDir, "menu-phone.png") });
    await page.setViewportSize(SIZES.desktop);
    await page.emulateMedia({ colorScheme: "dark" });
    await nav("Home").click();
    await card.getByText("Running").waitFor();
    await shoot(page, "home-dark");
    await page.emulateMedia({ colorScheme: "light" });
  });

  it("shows an ordinary user no admin actions, and the API refuses them", async () => {
    assert.ok(daemon && context);
    await admin.createAccount({ username: "alice", password: "alice-password-2b8f", role: "user" });
    await context.clearCookies();
    await page.goto(daemon.url);
    await page.getByLabel("Username").fill("alice");
    await page.getByLabel("Password").fill("alice-password-2b8f");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Home" }).waitFor();
    await page.locator(".app-card", { hasText: "web" }).getByText("Running").waitFor();
    assert.equal(await nav("Users").count(), 0);
    assert.equal(await nav("Audit").count(), 0);
    await shoot(page, "home-user");

    await page.locator(".app-card").getByRole("link", { name: "web", exact: true }).click();
    await page.getByRole("heading", { name: "Logs" }).waitFor();
    // The secret answer's note and the logs are for administrators (apps.logs_for_users is off).
    await page.getByText("Holds a secret: only administrators see it").waitFor();
    await page.getByText(/Only administrators see this app's logs/).waitFor();
    assert.equal(await page.locator("pre.logs").count(), 0);
    for (const name of ["Stop", "Restart", "Uninstall…"]) {
      assert.equal(await page.getByRole("button", { name }).count(), 0, name);
    }
    assert.ok(await page.getByLabel(/Who can reach port/).isDisabled());
    await openPackage();
    await page.getByText("Only an administrator can install apps.").waitFor();
    assert.equal(await page.getByRole("button", { name: "Install…" }).count(), 0);

    // Typing an admin page's address shows the refusal, not a blank page.
    await page.goto(`${daemon.url}/users`);
    await page.getByRole("alert").getByText("only administrators may do this").waitFor();

    // The API refuses what the page leaves out.
    const statuses = await page.evaluate(async (path) => {
      const stop = await fetch(`/api/v1/apps/${path}/stop`, { method: "POST" });
      const accounts = await fetch("/api/v1/accounts");
      return [stop.status, accounts.status];
    }, `${repo}/web`);
    assert.deepEqual(statuses, [403, 403]);
    assert.equal((await admin.app(repo, "web")).running, true);

    // Disabling the account ends its session: the next call leads back to sign-in.
    await admin.updateAccount("alice", { disabled: true });
    await nav("Home").click();
    await page.getByText("Your session ended. Please sign in again.").waitFor();
    await shoot(page, "session-expired");
  });
});
