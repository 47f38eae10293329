import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StateApplyView, StateStatus } from "@townos/client";
import {
  applyResult,
  intervalText,
  isManaged,
  managedGroups,
  shortCommit,
  stateBody,
  stateForm,
} from "../src/state.js";

const STATUS: StateStatus = {
  configured: true,
  url: "https://git.example.com/me/state.git",
  branch: null,
  intervalSeconds: 300,
  commit: "0123456789abcdef0123456789abcdef01234567",
  appliedAt: 0,
  step: null,
  error: null,
  lastSyncAt: 0,
  managed: [
    { kind: "page", name: "blog" },
    { kind: "app", name: "main/wiki" },
    { kind: "app", name: "main/chat" },
    { kind: "repository", name: "main" },
  ],
  history: [],
};

function apply(result: StateApplyView["result"], changes: string[], error: string | null) {
  return { commit: "c", author: null, message: null, result, error, changes, at: 0 };
}

describe("what the state repository manages", () => {
  it("knows an app by repo/name and kind, and nothing without a status (a non-administrator)", () => {
    assert.equal(isManaged(STATUS, "app", "main/wiki"), true);
    assert.equal(isManaged(STATUS, "app", "main/blog"), false);
    assert.equal(isManaged(STATUS, "volume", "main/wiki"), false);
    assert.equal(isManaged(undefined, "app", "main/wiki"), false);
  });

  it("groups objects by kind in the order a sync applies them, names sorted", () => {
    assert.deepEqual(
      managedGroups(STATUS.managed).map((group) => [group.kind, group.title, group.names]),
      [
        ["repository", "Repositories", ["main"]],
        ["app", "Apps", ["main/chat", "main/wiki"]],
        ["page", "Pages", ["blog"]],
      ],
    );
    assert.deepEqual(managedGroups([]), []);
  });
});

describe("the commits seen", () => {
  it("shows a commit short, as git does", () => {
    assert.equal(shortCommit(STATUS.commit ?? ""), "0123456");
  });

  it("shows what an applied commit changed, and why another was refused or failed", () => {
    assert.deepEqual(applyResult(apply("applied", ["install main/wiki 1.2", "page blog"], null)), {
      badge: "running",
      label: "applied",
      detail: "install main/wiki 1.2; page blog",
    });
    assert.equal(applyResult(apply("applied", [], null)).detail, "no changes");
    assert.deepEqual(applyResult(apply("refused", [], "apps/main/wiki.yaml: bad answer")), {
      badge: "failed",
      label: "refused",
      detail: "apps/main/wiki.yaml: bad answer",
    });
    assert.equal(applyResult(apply("failed", ["volume photos"], "disk full")).label, "failed");
  });
});

describe("the set-repository form", () => {
  it("writes the interval in the largest unit that divides it", () => {
    assert.equal(intervalText(300), "5m");
    assert.equal(intervalText(90), "90s");
    assert.equal(intervalText(7200), "2h");
    assert.equal(intervalText(86_400), "1d");
  });

  it("starts from the repository followed, credentials empty", () => {
    assert.deepEqual(stateForm(STATUS), {
      url: "https://git.example.com/me/state.git",
      branch: "",
      username: "",
      password: "",
      interval: "5m",
    });
    assert.equal(stateForm(undefined).url, "");
  });

  it("sends only what was filled in, trimmed", () => {
    const empty = stateForm(undefined);
    assert.deepEqual(stateBody({ ...empty, url: " https://h/r.git " }), { url: "https://h/r.git" });
    assert.deepEqual(
      stateBody({
        url: "https://h/r.git",
        branch: "prod",
        username: "me",
        password: " secret ",
        interval: "10m",
      }),
      {
        url: "https://h/r.git",
        branch: "prod",
        username: "me",
        password: " secret ",
        interval: "10m",
      },
    );
  });

  it("asks for a URL, and for a username with a password", () => {
    const empty = stateForm(undefined);
    assert.deepEqual(stateBody(empty), { missing: "state.missing.url" });
    assert.deepEqual(stateBody({ ...empty, url: "https://h/r.git", password: "p" }), {
      missing: "state.missing.username",
    });
  });
});
