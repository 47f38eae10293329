/** For browser tests: the dashboard's build (made again only when a source is newer) and Chromium. */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium, type BrowserContext, type Page } from "playwright-core";

const run = promisify(execFile);
export const webDir = join(import.meta.dirname, "..");

/** Newest modification time under `path` (a file or a folder), in ms. */
async function newest(path: string): Promise<number> {
  const info = await stat(path);
  if (!info.isDirectory()) return info.mtimeMs;
  let latest = info.mtimeMs;
  for (const entry of await readdir(path))
    latest = Math.max(latest, await newest(join(path, entry)));
  return latest;
}

/** Builds the dashboard unless dist is newer than every source. */
export async function ensureBuilt(): Promise<void> {
  const page = join(webDir, "dist/index.html");
  const sources = Math.max(
    await newest(join(webDir, "src")),
    await newest(join(webDir, "index.html")),
    await newest(join(webDir, "vite.config.ts")),
  );
  if (existsSync(page) && (await stat(page)).mtimeMs > sources) return;
  await run("npx", ["vite", "build", "--logLevel", "warn"], { cwd: webDir, timeout: 120_000 });
}

/** Debian's Chromium. */
export const CHROMIUM = "/usr/bin/chromium";

/** Why browser tests cannot run here, or false. */
export const chromiumMissing: string | false = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing (apt-get install chromium)`;

/** Headless Chromium with its profile in `profileDir`, quiet (no updates, sync or QUIC). */
export async function launchChromium(
  profileDir: string,
  options: { viewport: { width: number; height: number }; ignoreHTTPSErrors?: boolean },
): Promise<BrowserContext> {
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    ...options,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context.setDefaultTimeout(30_000);
  return context;
}

/** The context's first tab, signed in to the daemon at `url` with the session `token`. */
export async function signedInPage(
  context: BrowserContext,
  url: string,
  token: string,
): Promise<Page> {
  await context.addCookies([{ name: "town_session", value: token, url }]);
  return context.pages()[0] ?? (await context.newPage());
}
