/**
 * Versions of page content from archives, in temporary directories:
 * choosing the served directory, sanitising, limits, failures that leave
 * nothing behind, and the version list.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { expectTownError } from "../../../format/test/support.js";
import { buildTar, type TarSpec } from "../../test/storage/archives.js";
import { withDirectory } from "../storage/tree.js";
import { PageContent, VERSION_ID, type PageLimits, versionRoot } from "./content.js";
import { sanitiseTree } from "./sanitise.js";
import type { DeployLog, DeployOptions } from "./types.js";

let base: string;
let counter = 0;

before(async () => {
  base = await mkdtemp(join(tmpdir(), "town-pages-"));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

interface Logged extends DeployLog {
  lines: string[];
  steps: string[];
}

function recorder(): Logged {
  const lines: string[] = [];
  const steps: string[] = [];
  return {
    lines,
    steps,
    step: (step) => steps.push(step),
    line: (stream, text) => lines.push(`${stream}: ${text}`),
  };
}

function deployOptions(
  log: DeployLog = recorder(),
  signal = new AbortController().signal,
): DeployOptions {
  return { log, signal, build: null, labels: {} };
}

/** A fresh sites directory, opened; `now` moves a second per call to `clock`. */
async function content(
  limits: Partial<PageLimits> = {},
): Promise<{ pages: PageContent; sites: string }> {
  const sites = join(base, `sites-${counter++}`);
  let now = Date.UTC(2026, 11, 3, 16, 0, 0, 5);
  const pages = new PageContent({ sitesDir: sites, limits, clock: () => (now += 1000) });
  await pages.open();
  return { pages, sites };
}

function archive(entries: readonly TarSpec[], dir: string | null = null) {
  return { type: "archive" as const, dir, input: Readable.from([gzipSync(buildTar(entries))]) };
}

const SITE: TarSpec[] = [
  { path: "site/", type: "Directory", mode: 0o700 },
  { path: "site/index.html", body: "<h1>hello</h1>", mode: 0o600 },
  { path: "site/sub/", type: "Directory", mode: 0o777 },
  { path: "site/sub/page.html", body: "page", mode: 0o4755 },
  { path: "site/link.html", type: "SymbolicLink", linkpath: "index.html" },
  { path: "README", body: "not served" },
  { path: "../escape", body: "out" },
  { path: "/etc/absolute", body: "out" },
];

async function modes(dir: string, prefix = ""): Promise<string[]> {
  const lines: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const stats = await lstat(join(dir, name));
    const type = stats.isDirectory() ? "/" : stats.isFile() ? "" : "?";
    lines.push(
      `${prefix}${name}${type} ${(stats.mode & 0o7777).toString(8)} ${stats.uid}:${stats.gid}`,
    );
    if (stats.isDirectory()) lines.push(...(await modes(join(dir, name), `${prefix}${name}/`)));
  }
  return lines;
}

describe("PageContent", () => {
  it("deploys a tar.gz's sub-directory as a sanitised version", async () => {
    const { pages, sites } = await content();
    const log = recorder();
    const version = await pages.deploy("blog", archive(SITE, "site"), deployOptions(log));
    assert.match(version.id, VERSION_ID);
    assert.match(version.id, /^20261203T160001005Z-[0-9a-f]{4}$/);
    assert.equal(version.files, 2);
    assert.equal(version.bytes, "<h1>hello</h1>".length + "page".length);
    assert.equal(version.commit, null);
    assert.deepEqual(version.skipped.sort(), ["../escape", "/etc/absolute", "link.html"].sort());
    const root = join(sites, versionRoot("blog", version.id));
    assert.deepEqual(await modes(root), [
      "index.html 644 0:0",
      "sub/ 755 0:0",
      "sub/page.html 644 0:0",
    ]);
    assert.equal((await lstat(root)).mode & 0o7777, 0o755);
    assert.equal(await readFile(join(root, "index.html"), "utf8"), "<h1>hello</h1>");
    assert.equal(versionRoot("blog", version.id), `blog/${version.id}`);
    assert.deepEqual(await pages.versions("blog"), [version.id]);
    assert.deepEqual(await readdir(join(sites, ".work")), []);
    assert.deepEqual(log.steps, ["receiving", "publishing"]);
    assert.ok(
      log.lines.some((line) => /^town: unpacked tar\.gz: \d+ entries/.test(line)),
      log.lines.join("\n"),
    );
    await assert.rejects(lstat(join(base, "escape")));
  });

  it("serves the whole tree without a dir", async () => {
    const { pages, sites } = await content();
    const version = await pages.deploy("whole", archive(SITE), deployOptions());
    const root = join(sites, "whole", version.id);
    assert.deepEqual((await readdir(root)).sort(), ["README", "site"]);
  });

  it("refuses a missing dir, a dir that is a link, and a bad dir, leaving nothing", async () => {
    const { pages, sites } = await content();
    await expectTownError(
      pages.deploy("docs", archive(SITE, "docs"), deployOptions()),
      "invalid_argument",
      /the archive has no directory docs\//,
    );
    const linked: TarSpec[] = [...SITE, { path: "docs", type: "SymbolicLink", linkpath: "site" }];
    await expectTownError(
      pages.deploy("docs", archive(linked, "docs"), deployOptions()),
      "invalid_argument",
      /docs\/ is a symbolic link/,
    );
    await expectTownError(
      pages.deploy("docs", archive(linked, "docs/sub"), deployOptions()),
      "invalid_argument",
      /goes through the symbolic link "docs"/,
    );
    await expectTownError(
      pages.deploy("docs", archive(SITE, "../site"), deployOptions()),
      "invalid_argument",
      /'\.\.' in path/,
    );
    assert.deepEqual(await pages.versions("docs"), []);
    assert.deepEqual(await readdir(join(sites, ".work")), []);
  });

  it("refuses an archive past maxBytes and a site past maxEntries", async () => {
    const { pages, sites } = await content({ maxBytes: 1000, maxEntries: 3 });
    await expectTownError(
      pages.deploy(
        "big",
        archive([{ path: "big.bin", body: Buffer.alloc(2000) }]),
        deployOptions(),
      ),
      "payload_too_large",
      /larger than 1000 bytes|more than 1000 bytes/,
    );
    await expectTownError(
      pages.deploy(
        "many",
        archive(["a", "b", "c", "d"].map((name) => ({ path: name, body: name }))),
        deployOptions(),
      ),
      "payload_too_large",
      /more than 3 entries/,
    );
    assert.deepEqual(await pages.versions("big"), []);
    assert.deepEqual(await readdir(join(sites, ".work")), []);
  });

  it("stops a deploy when its signal aborts, leaving no work behind", async () => {
    const { pages, sites } = await content();
    const upload = new PassThrough();
    upload.write(gzipSync(buildTar([{ path: "a", body: "a" }])).subarray(0, 20));
    const controller = new AbortController();
    setTimeout(() => {
      controller.abort();
    }, 50);
    await expectTownError(
      pages.deploy(
        "slow",
        { type: "archive", dir: null, input: upload },
        deployOptions(recorder(), controller.signal),
      ),
      "io",
      /cancelled/,
    );
    assert.deepEqual(await pages.versions("slow"), []);
    assert.deepEqual(await readdir(join(sites, ".work")), []);
  });

  it("lists, prunes and removes versions", async () => {
    const { pages, sites } = await content();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(
        (await pages.deploy("site", archive([{ path: "i", body: String(i) }]), deployOptions())).id,
      );
    }
    assert.deepEqual(await pages.versions("site"), ids);
    assert.deepEqual([...ids].sort(), ids);
    await pages.prune("site", ids.slice(1));
    assert.deepEqual(await pages.versions("site"), ids.slice(1));
    await pages.remove("site");
    assert.deepEqual(await pages.versions("site"), []);
    await assert.rejects(lstat(join(sites, "site")));
    assert.deepEqual(await pages.versions("never"), []);
    await pages.prune("never", []);
    await pages.remove("never");
  });

  it("checks page names and version ids again", async () => {
    const { pages } = await content();
    for (const name of ["../etc", ".work", "a/b", "", "UPPER", "-x"]) {
      await expectTownError(pages.versions(name), "invalid_argument", /not a page name/);
      assert.throws(() => versionRoot(name, "20261203T160001005Z-abcd"), /not a page name/);
    }
    assert.throws(() => versionRoot("blog", "../x"), /not a version id/);
  });

  it("needs a container runtime for images and builds", async () => {
    const { pages } = await content();
    await expectTownError(
      pages.deploy("img", { type: "image", image: "localhost/x", path: "/srv" }, deployOptions()),
      "unavailable",
      /no container runtime/,
    );
    await expectTownError(
      pages.deploy("built", archive(SITE), {
        ...deployOptions(),
        build: { image: "localhost/x", command: "true", output: "out" },
      }),
      "unavailable",
      /no container runtime/,
    );
  });

  it("open makes .work private and empties it without following links", async () => {
    const { pages, sites } = await content();
    const outside = join(base, `outside-${counter++}`);
    await mkdir(outside);
    await writeFile(join(outside, "keep"), "keep");
    const work = join(sites, ".work");
    await mkdir(join(work, "left", "src"), { recursive: true });
    await writeFile(join(work, "left", "src", "half"), "x");
    await symlink(outside, join(work, "link"));
    await chmod(work, 0o777);
    await pages.open();
    assert.deepEqual(await readdir(work), []);
    assert.equal((await lstat(work)).mode & 0o777, 0o700);
    assert.equal(await readFile(join(outside, "keep"), "utf8"), "keep");
    // A link planted where .work goes is replaced, its target untouched.
    await rm(work, { recursive: true });
    await symlink(outside, work);
    await pages.open();
    assert.ok((await lstat(work)).isDirectory());
    assert.deepEqual(await readdir(outside), ["keep"]);
  });
});

describe("sanitiseTree", () => {
  it("deletes links and special files, reports them and makes the rest root's 0644/0755", async () => {
    const dir = join(base, `tree-${counter++}`);
    await mkdir(join(dir, "deep", "er"), { recursive: true, mode: 0o700 });
    await writeFile(join(dir, "index.html"), "hi", { mode: 0o600 });
    await writeFile(join(dir, "deep", "er", "setuid"), "x", { mode: 0o755 });
    await chmod(join(dir, "deep", "er", "setuid"), 0o4755);
    await chown(join(dir, "deep", "er", "setuid"), 1000, 1000);
    await chown(join(dir, "deep"), 1000, 1000);
    await symlink("/etc/passwd", join(dir, "passwd"));
    await symlink("/etc", join(dir, "deep", "etc"));
    execFileSync("mkfifo", [join(dir, "deep", "fifo")]);
    const tree = await withDirectory(dir, (handle) =>
      sanitiseTree(handle, { maxBytes: 1000, maxEntries: 100 }),
    );
    assert.deepEqual(tree.skipped.sort(), ["deep/etc", "deep/fifo", "passwd"]);
    assert.equal(tree.skippedCount, 3);
    assert.equal(tree.files, 2);
    assert.equal(tree.bytes, 3);
    assert.deepEqual(await modes(dir), [
      "deep/ 755 0:0",
      "deep/er/ 755 0:0",
      "deep/er/setuid 644 0:0",
      "index.html 644 0:0",
    ]);
    assert.ok((await lstat("/etc/passwd")).isFile());
  });

  it("counts hard links once and stops past the limits", async () => {
    const dir = join(base, `tree-${counter++}`);
    await mkdir(dir);
    await writeFile(join(dir, "a"), Buffer.alloc(600));
    execFileSync("ln", [join(dir, "a"), join(dir, "b")]);
    const tree = await withDirectory(dir, (handle) =>
      sanitiseTree(handle, { maxBytes: 1000, maxEntries: 10 }),
    );
    assert.equal(tree.files, 2);
    assert.equal(tree.bytes, 600);
    await writeFile(join(dir, "c"), Buffer.alloc(600));
    await expectTownError(
      withDirectory(dir, (handle) => sanitiseTree(handle, { maxBytes: 1000, maxEntries: 10 })),
      "payload_too_large",
      /larger than 1000 bytes/,
    );
    await expectTownError(
      withDirectory(dir, (handle) => sanitiseTree(handle, { maxBytes: 10_000, maxEntries: 2 })),
      "payload_too_large",
      /more than 2 entries/,
    );
  });
});
