/**
 * Page content from the real sources: a git smart-HTTP server (with
 * credentials, a sub-directory and a second commit), and with Podman an
 * image's directory and builds in a locally built builder image, hostile
 * and failing ones included.
 */
import assert from "node:assert/strict";
import { lstat, mkdtemp, readdir, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { expectTownError } from "../../../format/test/support.js";
import { commitFiles, createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
import { podmanForSuite, podmanMissing } from "../../test/runtime/podman-host.js";
import { buildStandIn } from "../../test/runtime/stand-in-images.js";
import { buildTar, type TarSpec } from "../../test/storage/archives.js";
import { PodmanRuntime } from "../runtime/podman/runtime.js";
import { PageContent, versionRoot } from "./content.js";
import { remoteHead } from "./git-head.js";
import type { DeployLog, DeployOptions } from "./types.js";

const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const labels = { "town.test-run": run };

function recorder(): DeployLog & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    step: () => undefined,
    line: (stream, text) => lines.push(`${stream}: ${text}`),
  };
}

function options(log: DeployLog = recorder(), build: DeployOptions["build"] = null): DeployOptions {
  return { log, signal: new AbortController().signal, build, labels };
}

/** Every path below `dir`, directories with a trailing `/`, links and others marked. */
async function listing(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const stats = await lstat(join(dir, name));
    if (stats.isDirectory()) {
      out.push(`${prefix}${name}/`, ...(await listing(join(dir, name), `${prefix}${name}/`)));
    } else out.push(`${prefix}${name}${stats.isFile() ? "" : " (not a file)"}`);
  }
  return out;
}

describe("git pages", () => {
  let scratch: string;
  let server: GitServer;
  let repo: string;
  let url: string;
  let pages: PageContent;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-pages-git-"));
    repo = await createRepo(join(scratch, "git"), "site.git", {
      "docs/index.html": "first",
      "docs/guide/a.html": "guide",
      "README.md": "not served",
    });
    // git keeps links as links: they are checked out, then never served.
    await symlink("../README.md", join(repo, "docs", "link"));
    await symlink("/etc/passwd", join(repo, "docs", "passwd"));
    await commitFiles(repo, {}, "links");
    const auth = { username: "pages", password: "s3cret-pass" };
    server = await startGitServer({ root: join(scratch, "git"), auth });
    url = server.url("site.git").replace("http://", `http://${auth.username}:${auth.password}@`);
    pages = new PageContent({ sitesDir: join(scratch, "sites") });
    await pages.open();
  });
  after(async () => {
    await server.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it("clones a branch's sub-directory without .git, and remoteHead follows new commits", async () => {
    const first = await remoteHead(url, null);
    assert.equal(await remoteHead(url, "main"), first);
    const log = recorder();
    const version = await pages.deploy(
      "docs",
      { type: "git", url, branch: "main", dir: "docs" },
      options(log),
    );
    assert.equal(version.commit, first);
    const root = join(scratch, "sites", versionRoot("docs", version.id));
    assert.deepEqual(await listing(root), ["guide/", "guide/a.html", "index.html"]);
    assert.deepEqual([...version.skipped].sort(), ["link", "passwd"]);
    assert.ok(log.lines.includes(`town: checked out ${first.slice(0, 7)}`), log.lines.join("\n"));
    assert.ok(!log.lines.join("\n").includes("s3cret-pass"));

    const second = await commitFiles(
      repo,
      { "docs/index.html": "second", "docs/link": null, "docs/passwd": null },
      "update",
    );
    assert.notEqual(second, first);
    assert.equal(await remoteHead(url, null), second);
    const whole = await pages.deploy(
      "docs",
      { type: "git", url, branch: null, dir: null },
      options(),
    );
    assert.equal(whole.commit, second);
    const wholeRoot = join(scratch, "sites", "docs", whole.id);
    assert.deepEqual(await listing(wholeRoot), [
      "README.md",
      "docs/",
      "docs/guide/",
      "docs/guide/a.html",
      "docs/index.html",
    ]);
    assert.equal(await readFile(join(wholeRoot, "docs", "index.html"), "utf8"), "second");
    assert.deepEqual(await pages.versions("docs"), [version.id, whole.id]);
  });

  it("remoteHead and deploys name a missing branch, never the password", async () => {
    const error = await expectTownError(remoteHead(url, "nope"), "not_found", /nope/);
    assert.ok(!error.message.includes("s3cret-pass"));
    await expectTownError(
      pages.deploy("docs", { type: "git", url, branch: "main", dir: "missing" }, options()),
      "invalid_argument",
      /the repository has no directory missing\//,
    );
    const wrong = url.replace("s3cret-pass", "wrong-pass");
    const refused = await expectTownError(
      remoteHead(wrong, null),
      "io",
      /credentials were rejected/,
    );
    assert.ok(!refused.message.includes("wrong-pass"));
  });
});

describe("image and build pages", { skip: podmanMissing, timeout: 300_000 }, () => {
  const suite = podmanForSuite("town-pages-", labels);
  const runtime = new PodmanRuntime(suite.podman);
  let pages: PageContent;
  let sites: string;
  let siteImage: string;
  let builder: string;

  before(async () => {
    sites = join(suite.work, "sites");
    pages = new PageContent({ sitesDir: sites, runtime, limits: { buildTimeoutMs: 60_000 } });
    await pages.open();
    siteImage = await buildStandIn({
      description: "a page's content in an image",
      files: { "/srv/site/index.html": "from the image", "/srv/site/css/site.css": "body{}" },
    });
    builder = await buildStandIn({
      description: "a static site builder",
      files: {
        "/usr/local/bin/build-site":
          '#!/bin/sh\nset -e\necho "building in $(pwd)"\necho "a warning" >&2\nmkdir -p out\ncp pages/* out/\necho "<h1>built</h1>" > out/index.html\n',
      },
    });
  });

  async function noLeftovers(): Promise<void> {
    assert.deepEqual(await readdir(join(sites, ".work")), []);
    assert.deepEqual(await runtime.list(labels), []);
  }

  function source(entries: TarSpec[] = [{ path: "pages/about.html", body: "about" }]) {
    return {
      type: "archive" as const,
      dir: null,
      input: Readable.from([gzipSync(buildTar(entries))]),
    };
  }

  it("extracts a directory of a locally built image", async () => {
    const version = await pages.deploy(
      "img",
      { type: "image", image: siteImage, path: "/srv/site/" },
      options(),
    );
    const root = join(sites, versionRoot("img", version.id));
    assert.deepEqual(await listing(root), ["css/", "css/site.css", "index.html"]);
    assert.equal(await readFile(join(root, "index.html"), "utf8"), "from the image");
    await expectTownError(
      pages.deploy("img", { type: "image", image: siteImage, path: "/srv/missing" }, options()),
      "invalid_argument",
      /has no directory \/srv\/missing/,
    );
    await noLeftovers();
  });

  it("serves a build's output, its lines in the log", async () => {
    const log = recorder();
    const version = await pages.deploy(
      "built",
      source(),
      options(log, { image: builder, command: "/usr/local/bin/build-site", output: "out" }),
    );
    const root = join(sites, "built", version.id);
    assert.deepEqual(await listing(root), ["about.html", "index.html"]);
    assert.equal(await readFile(join(root, "index.html"), "utf8"), "<h1>built</h1>\n");
    assert.ok(log.lines.includes("stdout: building in /site"), log.lines.join("\n"));
    assert.ok(log.lines.includes("stderr: a warning"), log.lines.join("\n"));
    await noLeftovers();
  });

  it("a failing build throws and leaves no new version", async () => {
    const before = await pages.versions("built");
    await expectTownError(
      pages.deploy(
        "built",
        source(),
        options(recorder(), { image: builder, command: "echo no; exit 3", output: "out" }),
      ),
      "io",
      /the build exited with code 3: no$/,
    );
    assert.deepEqual(await pages.versions("built"), before);
    await noLeftovers();
  });

  it("a hostile build's links and FIFOs are not served, nor an output that is a link", async () => {
    const hostile =
      "mkdir -p out/sub && echo hi > out/index.html && chmod 4777 out/index.html && " +
      "ln -s /etc/shadow out/leak && ln -s / out/sub/root && mkfifo out/fifo && chown 1000:1000 out/sub";
    const version = await pages.deploy(
      "hostile",
      source(),
      options(recorder(), { image: builder, command: hostile, output: "out" }),
    );
    const root = join(sites, "hostile", version.id);
    assert.deepEqual(await listing(root), ["index.html", "sub/"]);
    assert.deepEqual([...version.skipped].sort(), ["fifo", "leak", "sub/root"]);
    const stats = await lstat(join(root, "index.html"));
    assert.equal(stats.mode & 0o7777, 0o644);
    assert.equal((await lstat(join(root, "sub"))).uid, 0);
    await expectTownError(
      pages.deploy(
        "hostile",
        source(),
        options(recorder(), { image: builder, command: "ln -s /etc out", output: "out" }),
      ),
      "invalid_argument",
      /out\/ is a symbolic link/,
    );
    await noLeftovers();
  });

  it("stops a build past its time", async () => {
    const quick = new PageContent({ sitesDir: sites, runtime, limits: { buildTimeoutMs: 1500 } });
    await expectTownError(
      quick.deploy(
        "slow",
        source(),
        options(recorder(), { image: builder, command: "sleep 60", output: "out" }),
      ),
      "io",
      /the build took longer than/,
    );
    assert.deepEqual(await pages.versions("slow"), []);
    await noLeftovers();
  });
});
