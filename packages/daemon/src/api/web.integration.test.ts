import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { FetchedRepository, RepositoryFetcher } from "../catalog/catalog.js";
import { startDaemon, type RunningDaemon } from "../daemon.js";
import { testDaemonConfig } from "../../test/daemon.js";

const PAGE = "<!doctype html><title>Town OS</title>";

describe("the dashboard's files", () => {
  let scratch: string;
  let daemon: RunningDaemon;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-web-"));
    const web = join(scratch, "web");
    await mkdir(join(web, "assets"), { recursive: true });
    await writeFile(join(web, "index.html"), PAGE);
    await writeFile(join(web, "assets/index-abc123.js"), "console.log(1)");
    await writeFile(join(web, ".secret"), "no");
    const offline: RepositoryFetcher = {
      sync: () => Promise.reject(new Error("offline")),
      readLocal: () => Promise.resolve(undefined as unknown as FetchedRepository),
      remove: () => Promise.resolve(),
    };
    daemon = await startDaemon(
      testDaemonConfig(scratch, {
        fetcher: offline,
        apps: false,
        webRoot: web,
      }),
    );
    await daemon.booted;
  });

  after(async () => {
    await daemon.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  const get = (path: string, accept = "text/html"): Promise<Response> =>
    fetch(`${daemon.url}${path}`, { headers: { accept } });

  it("serves the page uncached and hashed assets cached for a year", async () => {
    const page = await get("/");
    assert.equal(page.status, 200);
    assert.equal(await page.text(), PAGE);
    assert.equal(page.headers.get("cache-control"), "no-cache");
    const asset = await get("/assets/index-abc123.js", "*/*");
    assert.equal(asset.status, 200);
    assert.equal(asset.headers.get("cache-control"), "public, max-age=31536000, immutable");
  });

  it("answers the dashboard's own routes with the page, and everything else as before", async () => {
    const routed = await get("/apps/default/hello");
    assert.equal(routed.status, 200);
    assert.equal(await routed.text(), PAGE);
    assert.equal(routed.headers.get("cache-control"), "no-cache");
    const api = await get("/api/v1/nope", "application/json");
    assert.equal(api.status, 404);
    assert.equal(((await api.json()) as { code: string }).code, "not_found");
    assert.equal((await get("/assets/missing.js", "*/*")).status, 404);
    assert.equal((await get("/.secret", "*/*")).status, 404);
    // The API keeps its access rules: the page being public opens nothing else.
    assert.equal((await get("/api/v1/apps", "application/json")).status, 401);
  });
});
