/**
 * Export: the box as a state repository's files, secrets as secretRefs,
 * and the round trip — the files read back and planned against the same
 * box change nothing.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NameParam } from "@townos/api";
import { parse } from "yaml";
import { emptyBox, noLookups } from "../../test/state.js";
import { exportState } from "./export.js";
import { parseCheckout } from "./layout.js";
import { planChanges } from "./plan.js";
import type { CurrentState } from "./types.js";

const NAME = new RegExp(NameParam.pattern ?? "");

function box(): CurrentState {
  return {
    repositories: [
      { name: "main", url: "https://example.org/main" },
      { name: "extra", url: "https://example.org/extra" },
    ],
    apps: [
      {
        repo: "main",
        name: "wiki",
        version: "1.2",
        answers: {
          title: "My wiki",
          "admin password": "hunter2",
          port: "8080",
          enabled: "true",
          empty: "",
          notes: "line one\nline two: with a colon\n  - and a dash",
          ["__proto__"]: "not a prototype",
        },
        exposures: { "8080": "lan", "2222": "local" },
      },
      {
        repo: "extra",
        name: "chat",
        version: "0.9.1",
        answers: {},
        exposures: {},
      },
    ],
    volumes: [
      { name: "photos", quota: 10 * 1024 ** 3 },
      { name: "odd", quota: 1000 },
      { name: "music", quota: null },
    ],
    pages: [
      {
        name: "blog",
        file: {
          source: { type: "git", url: "https://example.org/blog.git", branch: "main" },
          build: { image: "node:20", command: "npm ci && npm run build", output: "dist" },
          domains: ["blog.example.org"],
        },
      },
    ],
    settings: {
      "dns.tld": { value: "lan", default: "home" },
      "upnp.forward_https": { value: false, default: false },
      "storage.default_quota": { value: 20 * 1024 ** 3, default: 10 * 1024 ** 3 },
      "registries.insecure": { value: "", default: "" },
    },
    managed: [],
    purgeOnRemoval: new Set(),
  };
}

const secretQuestions = (repo: string, name: string) =>
  repo === "main" && name === "wiki" ? ["admin password"] : [];

function fileText(files: { path: string; text: string }[], path: string): unknown {
  const file = files.find((each) => each.path === path);
  assert.ok(file, `${path} is written`);
  return parse(file.text);
}

describe("exportState", () => {
  const current = box();
  const { files, secrets } = exportState(current, { secretQuestions });

  it("writes the layout, with a README", () => {
    assert.deepEqual(files.map((file) => file.path).sort(), [
      "README.md",
      "apps/extra/chat.yaml",
      "apps/main/wiki.yaml",
      "pages/blog.yaml",
      "repositories.yaml",
      "settings.yaml",
      "volumes/music.yaml",
      "volumes/odd.yaml",
      "volumes/photos.yaml",
    ]);
    assert.match(files.find((file) => file.path === "README.md")?.text ?? "", /state repository/);
  });

  it("writes repositories in order and only settings that differ from their default", () => {
    assert.deepEqual(fileText(files, "repositories.yaml"), [
      { name: "main", url: "https://example.org/main" },
      { name: "extra", url: "https://example.org/extra" },
    ]);
    assert.deepEqual(fileText(files, "settings.yaml"), {
      "dns.tld": "lan",
      "storage.default_quota": 20 * 1024 ** 3,
    });
  });

  it("writes apps' versions, answers and exposures, secrets as secretRefs", () => {
    const wiki = fileText(files, "apps/main/wiki.yaml") as {
      version: string;
      answers: Record<string, unknown>;
      exposure: Record<string, string>;
    };
    assert.equal(wiki.version, "1.2");
    assert.deepEqual(wiki.answers["admin password"], { secretRef: "main-wiki-admin-password" });
    assert.equal(wiki.answers.port, "8080");
    assert.equal(wiki.answers.notes, current.apps[0]?.answers.notes);
    assert.ok(Object.hasOwn(wiki.answers, "__proto__"));
    assert.deepEqual(wiki.exposure, { "8080": "lan", "2222": "local" });
    assert.deepEqual(fileText(files, "apps/extra/chat.yaml"), { version: "0.9.1" });
    assert.deepEqual(secrets, [
      { name: "main-wiki-admin-password", app: "main/wiki", question: "admin password" },
    ]);
    assert.ok(files.every((file) => !file.text.includes("hunter2")));
  });

  it("writes quotas as sizes when they are whole units", () => {
    assert.deepEqual(fileText(files, "volumes/photos.yaml"), { quota: "10gb" });
    assert.deepEqual(fileText(files, "volumes/odd.yaml"), { quota: 1000 });
    assert.deepEqual(fileText(files, "volumes/music.yaml"), { quota: null });
  });

  it("writes pages as they are", () => {
    assert.deepEqual(fileText(files, "pages/blog.yaml"), current.pages[0]?.file);
  });

  it("makes valid, unique secret names from any question", () => {
    const long = "q".repeat(100);
    const state: CurrentState = {
      ...box(),
      apps: [
        {
          repo: "main",
          name: "wiki",
          version: "1",
          answers: { "a b": "1", "a/b": "2", "a-b": "3", [long]: "4", [`${long}x`]: "5" },
          exposures: {},
        },
      ],
    };
    const names = exportState(state, {
      secretQuestions: () => Object.keys(state.apps[0]?.answers ?? {}),
    }).secrets.map((secret) => secret.name);
    assert.equal(new Set(names).size, 5, names.join(" "));
    for (const name of names) {
      assert.ok(NAME.test(name) && name.length <= 64, name);
    }
    assert.deepEqual(names.slice(0, 3), ["main-wiki-a-b", "main-wiki-a-b-2", "main-wiki-a-b-3"]);
  });
});

describe("exportState → parseCheckout → planChanges", () => {
  it("changes nothing on the box it came from", () => {
    const current = box();
    const { files, secrets } = exportState(current, { secretQuestions });
    const parsed = parseCheckout(files);
    assert.deepEqual(parsed.problems, []);
    const stored = new Map(
      secrets.map((secret) => {
        const app = current.apps.find((each) => `${each.repo}/${each.name}` === secret.app);
        return [secret.name, app?.answers[secret.question]];
      }),
    );
    const plan = planChanges(parsed.desired, current, {
      secret: (name) => stored.get(name),
      // A newer version on offer: the export pins the installed one.
      latest: () => "99",
    });
    assert.deepEqual(plan.problems, []);
    assert.deepEqual(plan.steps, []);
    assert.deepEqual(plan.managed.map((object) => `${object.kind} ${object.name}`).sort(), [
      "app extra/chat",
      "app main/wiki",
      "page blog",
      "repository extra",
      "repository main",
      "setting dns.tld",
      "setting storage.default_quota",
      "volume music",
      "volume odd",
      "volume photos",
    ]);
  });

  it("changes nothing on an empty box either", () => {
    const current = emptyBox();
    const parsed = parseCheckout(exportState(current, { secretQuestions }).files);
    assert.deepEqual(parsed.problems, []);
    const plan = planChanges(parsed.desired, current, noLookups);
    assert.deepEqual(plan, { steps: [], managed: [], problems: [] });
  });
});
