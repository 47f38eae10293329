/**
 * What the Town OS image tells the dashboard, in Debian's Chromium against a
 * real daemon reading the image's two files (here in a temp dir): with no
 * data disk, Home says loudly that nothing is saved and why; once the data
 * is on a disk, it does not; the running image's version is shown. A
 * screenshot lands in docs/screenshots for reviewers. The box's network
 * settings are applied into a temp networkd directory, networkctl recorded
 * (this host runs no systemd-networkd, and a test must not move its address).
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { BrowserContext, Page } from "playwright-core";
import { TownClient } from "@townos/client";
import { startDaemon, type RunningDaemon } from "@townos/daemon";
import { findProgram } from "../../daemon/src/storage/exec.js";
import { setupAdmin, testDaemonConfig } from "../../daemon/test/daemon.js";
import { chromiumMissing, ensureBuilt, launchChromium, webDir } from "./browser.js";

const shotsDir = join(webDir, "../../docs/screenshots");
// Hashing runs chpasswd in a scratch root (a chroot): as root, like the image's daemon.
const noChpasswd =
  (await findProgram("chpasswd")) === undefined
    ? "chpasswd is not installed (apt: passwd)"
    : process.getuid?.() !== 0
      ? "chpasswd -R needs root"
      : false;

if (chromiumMissing) console.log(`# skipping the Town OS image test: ${chromiumMissing}`);

describe("the dashboard on the Town OS image", { skip: chromiumMissing, timeout: 120_000 }, () => {
  let scratch: string;
  let daemon: RunningDaemon | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let dataFile = "";
  let adminToken = "";
  let loginRoot = "";
  const networkctl: string[] = [];

  before(async () => {
    await ensureBuilt();
    await mkdir(shotsDir, { recursive: true });
    scratch = await mkdtemp(join(tmpdir(), "town-web-os-"));
    const releaseFile = join(scratch, "town-os-release");
    dataFile = join(scratch, "town-os-data");
    await writeFile(
      releaseFile,
      "TOWN_OS_VERSION=2026.12.04-test\nTOWN_OS_BUILT=2026-12-04T19:00:00Z\n",
    );
    await writeFile(dataFile, "ram no blank disk was named (town.data=/dev/DISK)\n");
    // The image's /etc as the console password finds it: root locked.
    loginRoot = join(scratch, "root");
    await mkdir(join(loginRoot, "etc"), { recursive: true });
    await writeFile(join(loginRoot, "etc", "passwd"), "root:x:0:0:root:/root:/bin/bash\n");
    await writeFile(join(loginRoot, "etc", "shadow"), "root:*:19000:0:99999:7:::\n", {
      mode: 0o600,
    });
    await mkdir(join(scratch, "net", "enp1s0", "device"), { recursive: true });
    await writeFile(join(scratch, "cmdline"), "boot=live\n");
    daemon = await startDaemon(
      testDaemonConfig(scratch, {
        webRoot: join(webDir, "dist"),
        apps: false,
        network: false,
        monitoring: false,
        osFiles: { release: releaseFile, data: dataFile },
        consoleLoginRoot: loginRoot,
        networkdDir: join(scratch, "networkd"),
        osNetworkHost: {
          sysClassNet: join(scratch, "net"),
          cmdlineFile: join(scratch, "cmdline"),
          networkctl: (args) => {
            networkctl.push(args.join(" "));
            return Promise.resolve();
          },
        },
      }),
    );
    await daemon.booted;
    const admin = await setupAdmin(daemon, "admin-password-0s1m");
    adminToken = admin.token;
    assert.deepEqual(await admin.osInfo(), {
      image: { version: "2026.12.04-test", built: "2026-12-04T19:00:00Z" },
      data: {
        storage: "ram",
        detail: "no blank disk was named (town.data=/dev/DISK)",
        degraded: false,
      },
    });
    context = await launchChromium(join(scratch, "chromium"), {
      viewport: { width: 1280, height: 900 },
    });
    await context.addCookies([{ name: "town_session", value: admin.token, url: daemon.url }]);
    page = context.pages()[0] ?? (await context.newPage());
  });

  after(async () => {
    await context?.close();
    await daemon?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it("says on Home that nothing is saved while the data is in RAM, and why", async () => {
    assert.ok(daemon);
    await page.goto(`${daemon.url}/`);
    const banner = page.getByRole("alert").filter({ hasText: "Your data is not saved" });
    await banner.waitFor();
    assert.match(await banner.innerText(), /lost when it restarts/);
    assert.match(await banner.innerText(), /Why: no blank disk was named/);
    await page.getByText("Town OS image 2026.12.04-test").waitFor();
    await page.screenshot({ path: join(shotsDir, "home-data-in-ram.png") });
  });

  it("says nothing of the kind once the data is on a disk", async () => {
    assert.ok(daemon);
    await writeFile(dataFile, "disk /dev/vdb\n");
    await page.reload();
    await page.getByText("Town OS image 2026.12.04-test").waitFor();
    assert.equal(await page.getByText("Your data is not saved").count(), 0);
    assert.equal(await page.getByText("A disk of your data pool is missing").count(), 0);
  });

  it("says on Home that a disk of the pool is missing, which disks are left", async () => {
    assert.ok(daemon);
    await writeFile(dataFile, "disk-degraded /dev/vdb\n");
    await page.reload();
    const banner = page
      .getByRole("alert")
      .filter({ hasText: "A disk of your data pool is missing" });
    await banner.waitFor();
    assert.match(await banner.innerText(), /one copy only/);
    assert.match(await banner.innerText(), /Disks found: \/dev\/vdb/);
    await page.screenshot({ path: join(shotsDir, "home-pool-degraded.png") });
    assert.equal(await page.getByText("Your data is not saved").count(), 0);
  });

  it("lets an administrator give root an SSH key and take it back", async () => {
    assert.ok(daemon);
    const key =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBzoKgnJgqbt9H6G2pZUa3vM3/jDippBAPlEL68knkOG ada@laptop";
    await page.goto(`${daemon.url}/settings`);
    const section = page.locator("section").filter({ hasText: "SSH keys" });
    await section.getByText("No keys: nobody can log in over SSH.").waitFor();
    const field = section.getByLabel(/Public key/);
    await field.fill("ssh-ed25519 not-a-key");
    await section.getByRole("button", { name: "Add key" }).click();
    await section.getByRole("alert").filter({ hasText: "its key is not base64" }).waitFor();
    await field.fill(key);
    await section.getByRole("button", { name: "Add key" }).click();
    // As `ssh-keygen -l` names that key.
    await section.getByText("SHA256:bzNJigRUn1+I2fYKdBiUb29MUuNIYqVg1R0bCN8UXZs").waitFor();
    assert.equal(await field.inputValue(), "");
    await section.screenshot({ path: join(shotsDir, "settings-ssh-keys.png") });
    assert.deepEqual(
      (await new TownClient({ baseUrl: daemon.url, token: adminToken }).sshKeys()).keys.map(
        (k) => k.line,
      ),
      [key],
    );
    await section.getByRole("button", { name: "Remove" }).click();
    await section.getByText("No keys: nobody can log in over SSH.").waitFor();
  });

  it(
    "lets an administrator set root's console password and remove it",
    { skip: noChpasswd },
    async () => {
      assert.ok(daemon);
      const rootHash = async () =>
        (await readFile(join(loginRoot, "etc", "shadow"), "utf8")).split(":")[1];
      await page.goto(`${daemon.url}/settings`);
      const section = page.locator("section").filter({ hasText: "Console login" });
      await section.getByText("No console password").waitFor();
      assert.match(await section.innerText(), /Alt\+F2/);
      const password = section.getByLabel(/New console password/);
      const repeat = section.getByLabel("The same again");
      const submit = section.getByRole("button", { name: "Set password" });
      await password.fill("short");
      await repeat.fill("shorT");
      await section.getByText("The two passwords differ.").waitFor();
      assert.equal(await submit.isDisabled(), true);
      await repeat.fill("short");
      await submit.click();
      await section.getByRole("alert").filter({ hasText: "at least 8 characters" }).waitFor();
      await password.fill("rescue at the box");
      await repeat.fill("rescue at the box");
      await submit.click();
      await section.getByText("Root has a console password.").waitFor();
      assert.equal(await password.inputValue(), "");
      assert.match((await rootHash()) ?? "", /^\$y\$/);
      await section.screenshot({ path: join(shotsDir, "settings-console-password.png") });
      await section.getByRole("button", { name: "Remove password" }).click();
      await section.getByText("No console password").waitFor();
      assert.equal(await rootHash(), "*");
    },
  );

  it("lets an administrator give the box a fixed address, each mistake at its field", async () => {
    assert.ok(daemon);
    await page.goto(`${daemon.url}/settings`);
    const section = page.locator("section").filter({ hasText: "How the box gets its address" });
    await section.getByLabel("Fixed address").check();
    assert.equal(await section.getByLabel("Network port").inputValue(), "enp1s0");
    await section.getByLabel(/Address with prefix length/).fill("192.168.1.50/24");
    await section.getByLabel(/Gateway/).fill("192.168.2.1");
    await section.getByText("the dashboard is at http://NEW-ADDRESS:5309/").waitFor();
    await section.getByRole("button", { name: "Save" }).click();
    await section.getByText("it must be inside 192.168.1.0/24, the address's network").waitFor();
    await section.getByLabel(/Gateway/).fill("192.168.1.1");
    await section.getByLabel(/DNS servers/).fill("9.9.9.9, 1.1.1.1");
    await section.getByRole("button", { name: "Save" }).click();
    const moved = section.getByRole("link", { name: "http://192.168.1.50:5309/" });
    await moved.waitFor();
    // Taller than what the sticky top bar leaves free: the bar would cover its top.
    const topbar = page.locator(".topbar");
    await topbar.evaluate((bar: HTMLElement) => {
      bar.style.position = "static";
    });
    await section.screenshot({ path: join(shotsDir, "settings-network.png") });
    await topbar.evaluate((bar: HTMLElement) => {
      bar.style.position = "";
    });
    const admin = new TownClient({ baseUrl: daemon.url, token: adminToken });
    assert.deepEqual((await admin.networkSettings()).settings, {
      mode: "static",
      interface: "enp1s0",
      address: "192.168.1.50/24",
      gateway: "192.168.1.1",
      dns: ["9.9.9.9", "1.1.1.1"],
    });
    await section.getByLabel("From the router (DHCP)").check();
    await section.getByRole("button", { name: "Save" }).click();
    await moved.waitFor({ state: "detached" });
    // Saved, answered, then applied.
    for (let tries = 0; networkctl.length < 4 && tries < 100; tries += 1) await sleep(20);
    assert.deepEqual((await admin.networkSettings()).settings, { mode: "dhcp" });
    assert.deepEqual(networkctl, ["reload", "reconfigure enp1s0", "reload", "reconfigure enp1s0"]);
  });
});
