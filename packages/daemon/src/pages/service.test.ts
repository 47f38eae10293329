import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { isTownError, TownError } from "@townos/format";
import { collect } from "../../test/async.js";
import { openDatabase } from "../store/database.js";
import { DeployLogBook } from "./deploy-log.js";
import { Pages, type SiteContent } from "./service.js";
import { PageStore } from "./store.js";
import type { DeployInput, DeployOptions, PreparedVersion } from "./types.js";

/**
 * Versions kept in memory: what the service asks of the content store, with
 * a deploy that fails or waits when a test says so. (The real store and the
 * real ingress are in pages.integration.test.ts.)
 */
class MemoryContent implements SiteContent {
  readonly disk = new Map<string, string[]>();
  readonly deployed: DeployInput[] = [];
  failWith: TownError | undefined;
  gate: Promise<void> | undefined;
  private count = 0;

  open(): Promise<void> {
    return Promise.resolve();
  }

  async deploy(page: string, input: DeployInput, options: DeployOptions): Promise<PreparedVersion> {
    this.deployed.push(input);
    options.log.step("building");
    options.log.line("stdout", `building ${page}`);
    await this.gate;
    if (this.failWith !== undefined) throw this.failWith;
    this.count += 1;
    const id = `20261203T1200000${String(this.count).padStart(2, "0")}Z-abcd`;
    this.disk.set(page, [...(this.disk.get(page) ?? []), id]);
    return {
      id,
      createdAt: Date.UTC(2026, 11, 3, 12, 0, 0, this.count),
      files: 1,
      bytes: 10,
      commit: input.type === "git" ? `c${this.count}` : null,
      skipped: [],
    };
  }

  versions(page: string): Promise<string[]> {
    return Promise.resolve(this.disk.get(page) ?? []);
  }

  prune(page: string, keep: readonly string[]): Promise<void> {
    this.disk.set(
      page,
      (this.disk.get(page) ?? []).filter((id) => keep.includes(id)),
    );
    return Promise.resolve();
  }

  remove(page: string): Promise<void> {
    this.disk.delete(page);
    return Promise.resolve();
  }
}

/** A head that makes the git host unreachable. */
const DOWN = "down";

describe("the pages service", () => {
  let dir: string;
  let content: MemoryContent;
  let pages: Pages;
  let head: string;
  let published: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "town-pages-service-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  // Background deploys write their logs into `dir`: they end before it goes.
  afterEach(() => pages.stop());
  beforeEach(async () => {
    const clock = () => Date.UTC(2026, 11, 3, 12);
    content = new MemoryContent();
    head = "c1";
    pages = new Pages({
      store: new PageStore(openDatabase(":memory:"), clock),
      logs: new DeployLogBook(dir, clock),
      tld: () => "home",
      takenNames: () => new Set(["gitea", "default"]),
      appDomains: () => new Map([["git.example.org", "default/gitea"]]),
      remoteHead: () =>
        head === DOWN
          ? Promise.reject(new TownError("io", "git host down"))
          : Promise.resolve(head),
      box: "box1",
      log: () => undefined,
    });
    pages.onNetworkChange(() => {
      published += 1;
      return Promise.resolve();
    });
    await pages.attach(content);
    // Attaching published the pages once; the tests count what follows.
    published = 0;
  });

  const settled = async (name: string) => {
    for (let i = 0; i < 100 && pages.view(name).state === "deploying"; i++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    return pages.view(name);
  };
  const code = (expected: string) => (error: unknown) =>
    isTownError(error) && error.code === expected;

  it("refuses system names, app and repository names, taken and local domains", () => {
    for (const name of ["town", "gitea", "default", "a--b", "Upper", "-x", "x".repeat(64)]) {
      assert.throws(() => pages.create({ name, source: { type: "archive" } }), TownError, name);
    }
    assert.throws(
      () =>
        pages.create({ name: "site", source: { type: "archive" }, domains: ["git.example.org"] }),
      code("conflict"),
    );
    assert.throws(
      () => pages.create({ name: "site", source: { type: "archive" }, domains: ["site.home"] }),
      code("invalid_argument"),
    );
    assert.throws(
      () => pages.create({ name: "site", source: { type: "git", url: "ftp://example.org/x" } }),
      code("invalid_argument"),
    );
    assert.throws(
      () => pages.create({ name: "site", source: { type: "archive", url: "https://x.org/r" } }),
      code("invalid_argument"),
    );
  });

  it("publishes an upload, keeps the version it replaced for rollback, and prunes older ones", async () => {
    pages.create({ name: "blog", source: { type: "archive", dir: "public" } });
    assert.equal(pages.view("blog").state, "empty");
    const first = await pages.upload("blog", Readable.from(["a"]));
    assert.equal(first.state, "online");
    assert.deepEqual(first.urls, ["https://blog.home/"]);
    const second = await pages.upload("blog", Readable.from(["b"]));
    const third = await pages.upload("blog", Readable.from(["c"]));
    assert.equal(third.previous?.id, second.current?.id);
    assert.deepEqual(content.disk.get("blog"), [second.current?.id, third.current?.id]);
    assert.deepEqual(pages.networkPages(), [
      { name: "blog", host: "blog.home", domains: [], root: `blog/${third.current?.id}` },
    ]);
    const back = await pages.rollback("blog");
    assert.equal(back.current?.id, second.current?.id);
    assert.equal(back.previous?.id, third.current?.id);
    assert.equal(published, 4);
  });

  it("keeps the current version online when a deploy fails, and says why", async () => {
    pages.create({ name: "blog", source: { type: "archive" } });
    const online = await pages.upload("blog", Readable.from(["a"]));
    content.failWith = new TownError("invalid_argument", "the build exited with code 3");
    await assert.rejects(
      () => pages.upload("blog", Readable.from(["b"])),
      code("invalid_argument"),
    );
    const failed = pages.view("blog");
    assert.equal(failed.state, "failed");
    assert.equal(failed.error, "the build exited with code 3");
    assert.equal(failed.current?.id, online.current?.id);
    const log = await pages.log("blog");
    assert.deepEqual(
      log.items.map((line) => line.text),
      ["deploying an uploaded archive", "building blog", "failed: the build exited with code 3"],
    );
  });

  it("deploys a git page on its webhook only when the branch moved", async () => {
    pages.create({
      name: "docs",
      source: { type: "git", url: "https://user:secret@git.example.org/docs.git" },
    });
    const online = await settled("docs");
    assert.equal(online.state, "online");
    assert.equal(online.source.url, "https://git.example.org/docs.git");
    assert.equal(content.deployed.length, 1);
    const token = pages.hookToken("docs");
    assert.throws(() => {
      pages.hook("docs", "0".repeat(64));
    }, code("not_found"));
    assert.throws(() => {
      pages.hook("nothing", token);
    }, code("not_found"));
    pages.hook("docs", token);
    await settled("docs");
    assert.equal(content.deployed.length, 1, "an unchanged commit deploys nothing");
    head = "c2";
    pages.hook("docs", token);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal((await settled("docs")).current?.commit, "c2");
    assert.equal(content.deployed.length, 2);
  });

  it("does not retry a failed commit on every refresh, and clears a failed look once the branch answers", async () => {
    pages.create({
      name: "docs",
      source: { type: "git", url: "https://git.example.org/docs.git" },
    });
    await settled("docs");
    head = "c2";
    content.failWith = new TownError("io", "the build exited with code 1");
    pages.refresh("docs");
    await pages.idle();
    assert.equal(content.deployed.length, 2);
    pages.refreshAll();
    await pages.idle();
    assert.equal(content.deployed.length, 2, "the failed commit is not deployed again");
    content.failWith = undefined;
    head = "c3";
    pages.refreshAll();
    await pages.idle();
    assert.equal(pages.view("docs").state, "online");
    assert.equal(content.deployed.length, 3);

    head = DOWN;
    pages.refresh("docs");
    await pages.idle();
    assert.match(pages.view("docs").error ?? "", /^looking for changes: git host down/);
    assert.equal(pages.view("docs").state, "failed");
    head = "c3";
    pages.refresh("docs");
    await pages.idle();
    assert.equal(pages.view("docs").state, "online");
  });

  it("streams a deploy's log to a follower until it ends", async () => {
    let open: () => void = () => undefined;
    content.gate = new Promise((resolve) => (open = resolve));
    pages.create({ name: "img", source: { type: "image", image: "site:1", path: "/srv" } });
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(pages.view("img").step, "building");
    const following = collect(pages.follow("img", new AbortController().signal));
    open();
    const events = await following;
    assert.deepEqual(
      events.map((event) => (event.type === "line" ? event.text : `end ${event.state}`)),
      [
        "deploying /srv of site:1",
        "building img",
        `online: version ${pages.view("img").current?.id}`,
        "end online",
      ],
    );
  });
});
