import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { PageInfo } from "@townos/client";
import { answerJson, fakeDaemon } from "../test/run-town.js";
import { createRequest, hasCredentials, type CreateFlags } from "./page-commands.js";
import { pageLines, pageTable, sourceText, stateText } from "./page-views.js";

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);

const ONLINE: PageInfo = {
  name: "blog",
  source: {
    type: "git",
    url: "https://git.example/me/blog.git",
    branch: "main",
    dir: "site",
    image: null,
    path: null,
  },
  build: { image: "localhost/hugo:1", command: "hugo", output: "public" },
  state: "online",
  step: null,
  error: null,
  urls: ["https://blog.town.home/", "https://blog.example.org/"],
  domains: ["blog.example.org"],
  current: { id: "v2", createdAt: T0 + 60_000, files: 12, bytes: 4096, commit: "1a2b3c" },
  previous: { id: "v1", createdAt: T0, files: 1, bytes: 10, commit: "0f0f0f" },
  createdAt: T0,
  updatedAt: T0 + 60_000,
  skipped: ["link-to-etc", "fifo"],
};

const ARCHIVE_EMPTY: PageInfo = {
  ...ONLINE,
  name: "docs",
  source: { type: "archive", url: null, branch: null, dir: null, image: null, path: null },
  build: null,
  state: "empty",
  urls: ["https://docs.town.home/"],
  domains: [],
  current: null,
  previous: null,
  updatedAt: null,
  skipped: [],
};

function flags(extra: Partial<CreateFlags>): CreateFlags {
  return { domain: [], ...extra };
}

describe("town page create's flags", () => {
  const refused = (extra: Partial<CreateFlags>, message: RegExp): void => {
    assert.throws(() => createRequest("site", flags(extra)), message);
  };

  it("need exactly one source", () => {
    refused({}, /give the page's source: --archive FILE, --git URL or --image IMAGE --path DIR/);
    refused(
      { archive: "a.tar", git: "https://h/r.git" },
      /give one source, not --archive and --git/,
    );
    refused({ git: "https://h/r.git", image: "x", path: "/www" }, /not --git and --image/);
  });

  it("keep each flag to the source it belongs to", () => {
    refused({ archive: "a.tar", branch: "main" }, /--branch is for --git pages/);
    refused({ image: "x", path: "/www", dir: "d" }, /--dir is for --archive and --git pages/);
    refused({ git: "https://h/r.git", path: "/www" }, /--path is for --image pages/);
    refused({ image: "x" }, /--image needs --path DIR/);
  });

  it("take the build's three flags together or none, naming what is missing", () => {
    refused(
      { archive: "a.tar", buildImage: "b", output: "public" },
      /--build-image, --build-command and --output go together \(or none of them\): missing --build-command$/,
    );
    refused(
      { git: "https://h/r.git", output: "out" },
      /missing --build-image and --build-command$/,
    );
  });

  it("make the API's body for each source", () => {
    assert.deepEqual(createRequest("site", flags({ archive: "a.zip", dir: "public" })), {
      body: { name: "site", source: { type: "archive", dir: "public" } },
      archive: "a.zip",
    });
    assert.deepEqual(
      createRequest(
        "site",
        flags({
          git: "https://h/r.git",
          branch: "pages",
          buildImage: "localhost/node:20",
          buildCommand: "npm run build",
          output: "dist",
          domain: ["www.example.org"],
        }),
      ).body,
      {
        name: "site",
        source: { type: "git", url: "https://h/r.git", branch: "pages" },
        build: { image: "localhost/node:20", command: "npm run build", output: "dist" },
        domains: ["www.example.org"],
      },
    );
    assert.deepEqual(createRequest("site", flags({ image: "localhost/s:1", path: "/srv" })), {
      body: { name: "site", source: { type: "image", image: "localhost/s:1", path: "/srv" } },
      archive: undefined,
    });
  });

  it("notice credentials in a git URL (to warn about the process list)", () => {
    assert.equal(hasCredentials("https://me:secret@git.example/r.git"), true);
    assert.equal(hasCredentials("https://token@git.example/r.git"), true);
    assert.equal(hasCredentials("https://git.example/r.git"), false);
    assert.equal(hasCredentials("not a url"), false);
  });
});

describe("pages as town page prints them", () => {
  it("says what state a page is in, with the step or the reason", () => {
    assert.equal(stateText(ONLINE), "online");
    assert.equal(
      stateText({ ...ONLINE, state: "deploying", step: "building" }),
      "deploying (building)",
    );
    assert.equal(
      stateText({ ...ONLINE, state: "failed", error: "build: exit status 1\n  npm ERR!" }),
      "failed: build: exit status 1 npm ERR!",
    );
    assert.equal(stateText(ARCHIVE_EMPTY), "empty (waiting for an upload)");
  });

  it("sums up each kind of source", () => {
    assert.equal(
      sourceText(ONLINE.source),
      "git https://git.example/me/blog.git (branch main, dir site)",
    );
    assert.equal(sourceText(ARCHIVE_EMPTY.source), "archive");
    assert.equal(
      sourceText({
        ...ARCHIVE_EMPTY.source,
        type: "image",
        image: "localhost/s:1",
        path: "/srv/www",
      }),
      "image localhost/s:1 path /srv/www",
    );
  });

  it("lists pages in a table, a failure's reason left to show", () => {
    assert.equal(
      pageTable([ONLINE, { ...ARCHIVE_EMPTY, state: "failed", error: "not a tar archive" }]),
      [
        "NAME  STATE   UPDATED               URL                      SOURCE",
        "blog  online  2026-01-02T03:05:05Z  https://blog.town.home/  git https://git.example/me/blog.git (branch main, dir site)",
        "docs  failed  -                     https://docs.town.home/  archive",
      ].join("\n"),
    );
    assert.equal(pageTable([]), "there are no pages");
  });

  it("shows every fact of a page", () => {
    assert.deepEqual(pageLines(ONLINE), [
      "blog: online",
      "  url https://blog.town.home/",
      "  url https://blog.example.org/",
      "  domains: blog.example.org",
      "  source: git https://git.example/me/blog.git (branch main, dir site)",
      "  build: hugo (image localhost/hugo:1), serving public",
      "  current: v2, 12 files, 4.0 KiB, commit 1a2b3c, 2026-01-02T03:05:05Z",
      "  previous (rollback): v1, 1 file, 10 B, commit 0f0f0f, 2026-01-02T03:04:05Z",
      "  created 2026-01-02T03:04:05Z",
      "  left out (links and special files): 2",
      "    link-to-etc",
      "    fifo",
    ]);
    assert.deepEqual(pageLines(ARCHIVE_EMPTY), [
      "docs: empty (waiting for an upload)",
      "  url https://docs.town.home/",
      "  source: archive",
      "  current: none",
      "  created 2026-01-02T03:04:05Z",
    ]);
  });
});

/**
 * The command's side of a deploy, against a stand-in daemon on loopback that
 * answers with scripted page states: what it sends, how it waits, its exit code.
 */
describe("town page against a daemon", () => {
  let requests: string[] = [];
  let script: unknown[] = [];
  let events: unknown[] = [];
  const daemon = fakeDaemon("town-page-cli-", ({ key, body }, response) => {
    requests.push(`${key} ${body}`.trim());
    if (key.endsWith("/logs/stream")) {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.end(events.map((event) => `data: ${JSON.stringify(event)}\n\n`).join(""));
      return;
    }
    answerJson(response, script.length > 1 ? script.shift() : script[0]);
  });
  const { town } = daemon;

  it("creates an archive page, then streams the file, and prints it online", async () => {
    await writeFile(join(daemon.dir, "site.tar"), "archive bytes");
    requests = [];
    script = [ARCHIVE_EMPTY, { ...ARCHIVE_EMPTY, state: "online" }];
    const run = await town("page", "create", "docs", "--archive", "site.tar");
    assert.deepEqual(requests, [
      'POST /api/v1/pages {"name":"docs","source":{"type":"archive"}}',
      "PUT /api/v1/pages/docs/content archive bytes",
    ]);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^docs: online\n {2}url https:\/\/docs.town.home\//);
  });

  it("waits out a git page's deploy, showing its steps, and fails with the reason", async () => {
    requests = [];
    script = [
      { ...ONLINE, state: "deploying", step: "cloning", current: null, previous: null },
      { ...ONLINE, state: "deploying", step: "building", current: null, previous: null },
      { ...ONLINE, state: "failed", error: "build: exit status 2", current: null, previous: null },
    ];
    const run = await town("page", "create", "blog", "--git", "https://git.example/me/blog.git");
    assert.equal(requests.length, 3);
    assert.match(requests[1] ?? "", /^GET \/api\/v1\/pages\/blog$/);
    assert.equal(run.stderr.split("\n").filter((l) => l.startsWith("blog: deploying")).length, 2);
    assert.match(run.stderr, /^town: deploying blog failed: build: exit status 2$/m);
    assert.equal(run.code, 1);
  });

  it("refuses a missing archive before creating anything", async () => {
    requests = [];
    const run = await town("page", "create", "docs", "--archive", "nowhere.tar");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^town: cannot read .*nowhere\.tar: ENOENT/);
    assert.deepEqual(requests, []);
  });

  it("refuses a bad flag combination and a bad domain action with exit code 2", async () => {
    requests = [];
    const both = await town("page", "create", "x", "--archive", "a.tar", "--image", "i");
    assert.equal(both.code, 2);
    assert.match(both.stderr, /town: give one source, not --archive and --image/);
    const action = await town("page", "domain", "x", "list", "example.org");
    assert.equal(action.code, 2);
    assert.match(action.stderr, /town: the action is add or rm, not "list"/);
    assert.deepEqual(requests, []);
  });

  it("follows the build log to its end and exits 1 when the deploy failed", async () => {
    events = [
      { type: "line", time: T0, stream: "town", text: "building in localhost/hugo:1" },
      { type: "line", time: T0 + 1000, stream: "stdout", text: "Start building sites" },
      { type: "line", time: T0 + 2000, stream: "stderr", text: "Error: no config" },
      { type: "end", state: "failed", error: "build: exit status 255" },
    ];
    const failed = await town("page", "logs", "blog", "-f");
    assert.equal(
      failed.stdout,
      "2026-01-02T03:04:05Z -- building in localhost/hugo:1\n2026-01-02T03:04:06Z Start building sites\n",
    );
    assert.equal(
      failed.stderr,
      "2026-01-02T03:04:07Z Error: no config\ntown: deploying blog failed: build: exit status 255\n",
    );
    assert.equal(failed.code, 1);
    events = [{ type: "end", state: "online", error: null }];
    const online = await town("page", "logs", "blog", "--follow");
    assert.equal(online.code, 0);
    assert.equal(online.stderr, "-- blog: online\n");
  });

  it("rolls back without blaming itself for an earlier deploy's failure", async () => {
    requests = [];
    script = [{ ...ONLINE, state: "failed", error: "an earlier upload: not an archive" }];
    const run = await town("page", "rollback", "blog");
    assert.deepEqual(requests, ["POST /api/v1/pages/blog/rollback"]);
    assert.match(run.stdout, /^blog: failed: an earlier upload: not an archive$/m);
    assert.equal(run.stderr, "");
    assert.equal(run.code, 0);
  });

  it("prints only the webhook URL", async () => {
    script = [{ url: "https://town.home/api/v1/pages/blog/hook/s3cret" }];
    const run = await town("page", "hook", "blog");
    assert.equal(run.stdout, "https://town.home/api/v1/pages/blog/hook/s3cret\n");
  });
});
