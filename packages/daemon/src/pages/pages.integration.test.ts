/**
 * Pages end to end over the daemon's HTTP API, served by the real ingress
 * (Caddy with its local CA) and named by dnsmasq: an uploaded archive, a git
 * page updated by its webhook and by the schedule, a page extracted from a
 * locally built image, a build step (its failure keeps the old version
 * online), rollback, hostile archives and names.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { ApiError, TownClient, type PageInfo } from "@townos/client";
import { setupAdmin, startPodmanDaemon, until } from "../../test/daemon.js";
import { commitFiles, createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
import { dig, eventually, loopbackNetwork, networkMissing, scratchDir } from "../../test/net.js";
import { readyForPages, servesPage, visitPage } from "../../test/pages.js";
import {
  podmanMissing,
  preparePodmanHost,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
} from "../../test/runtime/podman-host.js";
import { buildStandIn } from "../../test/runtime/stand-in-images.js";
import { buildTar } from "../../test/storage/archives.js";
import { LABEL_BOX } from "../apps/labels.js";
import type { RunningDaemon } from "../daemon.js";
import type { Podman } from "../runtime/podman/client.js";
import { containerSpec } from "../runtime/podman/container-spec.js";
import type { ServiceState } from "../runtime/podman/service.js";
import { PAGE_LABEL } from "./service.js";

const missing = podmanMissing || networkMissing();
if (missing) console.log(`# skipping the pages integration test: ${missing}`);

const ADMIN_PASSWORD = "admin-password-pages-7c1d";

describe("pages", { skip: missing, timeout: 300_000 }, () => {
  let scratch = "";
  let server: GitServer | undefined;
  let daemon: RunningDaemon | undefined;
  let podman: Podman;
  let service: ServiceState = { started: false, pid: null };
  let admin: TownClient;
  let network: Awaited<ReturnType<typeof loopbackNetwork>>;
  let caFile = "";
  let siteRepo = "";
  let builtRepo = "";
  const repoName = `r${randomBytes(3).toString("hex")}`;

  const visit = (host: string, path = "/") => visitPage(caFile, host, network.httpsPort, path);
  const serves = (host: string, body: string, path = "/") =>
    servesPage(caFile, host, network.httpsPort, body, path);
  const settled = (name: string): Promise<PageInfo> =>
    until(
      `page ${name} to finish deploying`,
      60_000,
      () => admin.page(name),
      (page) => page.state !== "deploying",
    );

  before(async () => {
    await preparePodmanHost();
    scratch = await scratchDir("town-pages-");
    ({ podman, service } = await startTestPodman(scratch));
    const gitRoot = join(scratch, "git");
    siteRepo = await createRepo(gitRoot, "site.git", {
      "docs/index.html": "git one\n",
      "README.md": "not served\n",
    });
    builtRepo = await createRepo(gitRoot, "built.git", {
      "page.txt": "built one\n",
      "build.sh": "mkdir -p out && cp page.txt out/index.html\n",
    });
    await createRepo(gitRoot, "apps.git", { "README.md": "a repository named like a page\n" });
    server = await startGitServer({ root: gitRoot });
    network = await loopbackNetwork(scratch);
    daemon = await startPodmanDaemon(scratch, podman, { network });
    admin = await setupAdmin(daemon, ADMIN_PASSWORD);
    await admin.addRepository({ name: repoName, url: server.url("apps.git") });
    caFile = await readyForPages(daemon.url, admin, scratch);
  });

  after(async () => {
    try {
      const running = daemon?.boot.services?.network;
      await daemon?.stop();
      await running?.stopForTests();
      await server?.close();
    } finally {
      stopTestPodman({ podman, service });
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("serves an uploaded archive at its HTTPS name, replaces it by an upload, and rolls back", async () => {
    const created = await admin.createPage({
      name: "blog",
      source: { type: "archive", dir: "public" },
    });
    assert.equal(created.state, "empty");
    assert.deepEqual(created.urls, ["https://blog.home/"]);
    const first = gzipSync(
      buildTar([
        { path: "public/index.html", body: "blog one\n" },
        { path: "public/404.html", body: "no such post\n" },
        { path: "public/css/site.css", body: "body { color: teal }\n" },
        { path: "drafts/secret.html", body: "not served\n" },
      ]),
    );
    const online = await admin.uploadPage("blog", new Blob([first]));
    assert.equal(online.state, "online");
    assert.equal(online.current?.files, 3);
    await serves("blog.home", "blog one\n");
    assert.equal((await visit("blog.home", "/missing")).status, 404);
    assert.equal((await visit("blog.home", "/missing")).body, "no such post\n");
    assert.equal((await visit("blog.home", "/css/site.css")).body, "body { color: teal }\n");
    assert.equal((await visit("blog.home", "/secret.html")).status, 404);
    assert.equal(await dig(network.dnsPort, "blog.home"), "127.0.0.1");

    const second = await admin.uploadPage(
      "blog",
      new Blob([buildTar([{ path: "public/index.html", body: "blog two\n" }])]),
    );
    assert.equal(second.previous?.id, online.current.id);
    await serves("blog.home", "blog two\n");

    const back = await admin.rollbackPage("blog");
    assert.equal(back.current?.id, online.current.id);
    assert.equal(back.previous?.id, second.current?.id);
    await serves("blog.home", "blog one\n");
  });

  it("refuses hostile names and leaves hostile archive entries out", async () => {
    for (const name of ["town", "x--y", repoName]) {
      await assert.rejects(
        () => admin.createPage({ name, source: { type: "archive" } }),
        (error: ApiError) => ["invalid_argument", "conflict"].includes(error.problem.code),
        name,
      );
    }
    await assert.rejects(
      () => admin.createPage({ name: "../etc", source: { type: "archive" } }),
      (error: ApiError) => error.problem.status === 400,
    );
    await assert.rejects(
      () => admin.createPage({ name: "gitfile", source: { type: "git", url: "file:///etc" } }),
      (error: ApiError) => error.problem.code === "invalid_argument",
    );

    await admin.createPage({ name: "hostile", source: { type: "archive" } });
    const page = await admin.uploadPage(
      "hostile",
      new Blob([
        buildTar([
          { path: "index.html", body: "hostile but served\n" },
          { path: "../../escape.html", body: "outside\n" },
          { path: "/etc/owned", body: "absolute\n" },
          { path: "passwd", type: "SymbolicLink", linkpath: "/etc/passwd" },
          { path: "hard", type: "Link", linkpath: "/etc/shadow" },
        ]),
      ]),
    );
    assert.equal(page.state, "online");
    await serves("hostile.home", "hostile but served\n");
    for (const path of ["/passwd", "/hard", "/escape.html", "/owned"]) {
      assert.equal((await visit("hostile.home", path)).status, 404, path);
    }

    // Not an archive: refused, and the version online stays.
    await assert.rejects(
      () => admin.uploadPage("hostile", new Blob(["just some text, no archive"])),
      (error: ApiError) => error.problem.status >= 400,
    );
    const after = await admin.page("hostile");
    assert.equal(after.state, "failed");
    assert.equal(after.current?.id, page.current?.id);
    await serves("hostile.home", "hostile but served\n");
  });

  it("deploys a git page and follows new commits by its webhook and by the schedule", async () => {
    assert.ok(server);
    const created = await admin.createPage({
      name: "docs",
      source: { type: "git", url: server.url("site.git"), dir: "docs" },
    });
    assert.equal(created.state, "deploying");
    const online = await settled("docs");
    assert.equal(online.state, "online", online.error ?? "");
    await serves("docs.home", "git one\n");
    assert.equal((await visit("docs.home", "/README.md")).status, 404);

    const hook = new URL((await admin.pageHook("docs")).url);
    const callHook = (path: string) => fetch(`${daemon?.url}${path}`, { method: "POST" });
    assert.equal(
      (await callHook(hook.pathname.replace(/[0-9a-f]{64}$/, "0".repeat(64)))).status,
      404,
    );

    const second = await commitFiles(siteRepo, { "docs/index.html": "git two\n" }, "two");
    assert.equal((await callHook(hook.pathname)).status, 202);
    await serves("docs.home", "git two\n");
    const afterHook = await settled("docs");
    assert.equal(afterHook.current?.commit, second);

    // The same commit again: nothing is deployed.
    assert.equal((await callHook(hook.pathname)).status, 202);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal((await settled("docs")).current?.id, afterHook.current.id);

    await admin.setSetting("pages.refresh_interval", 1);
    try {
      await commitFiles(siteRepo, { "docs/index.html": "git three\n" }, "three");
      await serves("docs.home", "git three\n");
    } finally {
      await admin.setSetting("pages.refresh_interval", 0);
    }
  });

  it("serves the files of a directory extracted from a locally built image", async () => {
    const image = await buildStandIn({
      description: "a static site in an image",
      files: {
        "/srv/site/index.html": "from an image\n",
        "/srv/site/about/index.html": "about the image\n",
      },
    });
    await admin.createPage({ name: "imaged", source: { type: "image", image, path: "/srv/site" } });
    const page = await settled("imaged");
    assert.equal(page.state, "online", page.error ?? "");
    await serves("imaged.home", "from an image\n");
    await serves("imaged.home", "about the image\n", "/about/");
  });

  it("serves a build's output, and keeps it online when a later build fails", async () => {
    assert.ok(server);
    await admin.createPage({
      name: "built",
      source: { type: "git", url: server.url("built.git") },
      build: { image: TEST_IMAGE, command: "sh build.sh", output: "out" },
    });
    const page = await settled("built");
    assert.equal(page.state, "online", page.error ?? "");
    await serves("built.home", "built one\n");

    await commitFiles(builtRepo, { "build.sh": "echo the generator broke >&2\nexit 3\n" }, "break");
    await admin.rebuildPage("built");
    const failed = await settled("built");
    assert.equal(failed.state, "failed");
    assert.match(failed.error ?? "", /code 3/);
    assert.equal(failed.current?.id, page.current?.id);
    const log = await admin.pageLog("built");
    assert.ok(
      log.items.some((line) => line.text.includes("the generator broke")),
      JSON.stringify(log.items),
    );
    await serves("built.home", "built one\n");
  });

  it("keeps serving across a daemon restart, and removes a build container a crash left", async () => {
    assert.ok(daemon);
    const box = daemon.boot.services?.pages.box ?? "";
    const leftover = `town-page-build-built-${randomBytes(3).toString("hex")}`;
    await podman.createContainer(
      containerSpec({
        kind: "container",
        name: leftover,
        hostname: leftover,
        image: TEST_IMAGE,
        command: ["true"],
        env: {},
        labels: { [PAGE_LABEL]: "built", [LABEL_BOX]: box },
        mounts: [],
        ports: [],
        network: null,
        restart: "no",
      }),
    );
    const before = await admin.page("blog");
    await daemon.stop();
    daemon = await startPodmanDaemon(scratch, podman, { network });
    admin = new TownClient({ baseUrl: daemon.url });
    admin.token = (await admin.login({ username: "admin", password: ADMIN_PASSWORD })).token;
    await eventually("the leftover build container to be removed", async () => {
      assert.equal(await podman.inspectContainer(leftover), undefined);
    });
    assert.deepEqual((await admin.page("blog")).current, before.current);
    await serves("blog.home", "blog one\n");
  });

  it("stops serving a deleted page", async () => {
    await admin.deletePage("blog");
    await eventually("blog.home to be gone", async () => {
      const answer = await visit("blog.home").catch(() => ({ status: 0, body: "" }));
      assert.notEqual(answer.status, 200);
    });
    await assert.rejects(
      () => admin.page("blog"),
      (error: ApiError) => error.problem.code === "not_found",
    );
  });
});
