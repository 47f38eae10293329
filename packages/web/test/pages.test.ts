import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PageInfo } from "@townos/client";
import { formatTime } from "../src/messages.js";
import {
  createPageBody,
  EMPTY_PAGE_FORM,
  pageFactRows,
  pageSourceText,
  pageStatus,
} from "../src/pages.js";

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);

const BLOG: PageInfo = {
  name: "blog",
  source: {
    type: "git",
    url: "https://git.example/me/blog.git",
    branch: "main",
    dir: "site",
    image: null,
    path: null,
  },
  build: { image: "localhost/hugo:1", command: "hugo --minify", output: "public" },
  state: "online",
  step: null,
  error: null,
  urls: ["https://blog.town.home/"],
  domains: [],
  current: { id: "v2", createdAt: T0 + 60_000, files: 12, bytes: 4096, commit: "1a2b3c" },
  previous: { id: "v1", createdAt: T0, files: 1, bytes: 10, commit: null },
  createdAt: T0,
  updatedAt: T0 + 60_000,
  skipped: ["link-to-etc"],
};

describe("a page's status on its card", () => {
  it("is a badge and a word, with the step under way or the failure's reason", () => {
    assert.deepEqual(pageStatus(BLOG), { badge: "running", label: "online", detail: null });
    assert.deepEqual(pageStatus({ ...BLOG, state: "deploying", step: "building" }), {
      badge: "starting",
      label: "deploying",
      detail: "Now: building…",
    });
    assert.deepEqual(pageStatus({ ...BLOG, state: "failed", error: "build: exit status 1" }), {
      badge: "failed",
      label: "failed",
      detail: "build: exit status 1",
    });
  });

  it("says an empty archive page waits for its upload", () => {
    const archive = {
      ...BLOG.source,
      type: "archive" as const,
      url: null,
      branch: null,
      dir: null,
    };
    assert.deepEqual(pageStatus({ ...BLOG, state: "empty", source: archive }), {
      badge: "empty",
      label: "empty",
      detail: "Nothing is published yet: upload an archive.",
    });
    assert.equal(pageStatus({ ...BLOG, state: "empty" }).detail, null);
  });
});

describe("a page's facts", () => {
  it("sum up each kind of source", () => {
    assert.equal(
      pageSourceText(BLOG.source),
      "Git: https://git.example/me/blog.git (branch main, folder site)",
    );
    assert.equal(
      pageSourceText({ ...BLOG.source, type: "archive", url: null, branch: null, dir: null }),
      "Archive upload",
    );
    assert.equal(
      pageSourceText({
        ...BLOG.source,
        type: "image",
        url: null,
        branch: null,
        dir: null,
        image: "localhost/s:1",
        path: "/srv/www",
      }),
      "Image localhost/s:1, folder /srv/www",
    );
  });

  it("list source, build, versions and what was left out", () => {
    assert.deepEqual(pageFactRows(BLOG), [
      ["Source", "Git: https://git.example/me/blog.git (branch main, folder site)"],
      ["Build", "hugo --minify in localhost/hugo:1, serving public"],
      ["Online version", `12 files, 4 KB, commit 1a2b3c, ${formatTime(T0 + 60_000)}`],
      ["Previous version", `1 file, 10 B, ${formatTime(T0)}`],
      ["Left out (links and special files)", "link-to-etc"],
    ]);
    assert.deepEqual(
      pageFactRows({ ...BLOG, build: null, current: null, previous: null, skipped: [] }),
      [
        ["Source", "Git: https://git.example/me/blog.git (branch main, folder site)"],
        ["Online version", "none yet"],
      ],
    );
  });
});

describe("the create dialog's form as the API's body", () => {
  it("keeps only the chosen source's fields, trimmed, blanks left out", () => {
    const form = {
      ...EMPTY_PAGE_FORM,
      name: " site ",
      url: "https://h/r.git",
      branch: " ",
      dir: "public",
      image: "left over",
      path: "/left/over",
      domains: "www.example.org, example.org",
    };
    assert.deepEqual(createPageBody(form), {
      body: {
        name: "site",
        source: { type: "archive", dir: "public" },
        domains: ["www.example.org", "example.org"],
      },
    });
    assert.deepEqual(createPageBody({ ...form, type: "git", domains: "" }), {
      body: { name: "site", source: { type: "git", url: "https://h/r.git", dir: "public" } },
    });
    assert.deepEqual(createPageBody({ ...form, type: "image", domains: "" }), {
      body: { name: "site", source: { type: "image", image: "left over", path: "/left/over" } },
    });
  });

  it("adds the build only when asked, and then all three of its fields", () => {
    const form = { ...EMPTY_PAGE_FORM, name: "site", buildImage: "b", buildCommand: "make" };
    assert.deepEqual(createPageBody(form), { body: { name: "site", source: { type: "archive" } } });
    assert.deepEqual(createPageBody({ ...form, build: true }), { missing: "pages.missing.build" });
    assert.deepEqual(createPageBody({ ...form, build: true, output: "out" }), {
      body: {
        name: "site",
        source: { type: "archive" },
        build: { image: "b", command: "make", output: "out" },
      },
    });
  });

  it("names the first thing missing", () => {
    assert.deepEqual(createPageBody(EMPTY_PAGE_FORM), { missing: "pages.missing.name" });
    const named = { ...EMPTY_PAGE_FORM, name: "site" };
    assert.deepEqual(createPageBody({ ...named, type: "git" }), { missing: "pages.missing.url" });
    assert.deepEqual(createPageBody({ ...named, type: "image", path: "/www" }), {
      missing: "pages.missing.image",
    });
    assert.deepEqual(createPageBody({ ...named, type: "image", image: "i" }), {
      missing: "pages.missing.path",
    });
  });
});
