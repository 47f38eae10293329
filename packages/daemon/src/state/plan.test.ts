/**
 * Planning: each kind of object added, changed, left alone and removed;
 * what refuses a commit; the order of the steps; and how steps are shown.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StatePageFile } from "@townos/api";
import { noLookups } from "../../test/state.js";
import { parseCheckout } from "./layout.js";
import { planChanges, stepText, type PlanOptions } from "./plan.js";
import type { CurrentState, StateStep } from "./types.js";

const GIT_PAGE: StatePageFile = { source: { type: "git", url: "https://example.org/blog.git" } };

function box(state: Partial<CurrentState> = {}): CurrentState {
  return {
    repositories: [{ name: "main", url: "https://example.org/main" }],
    apps: [],
    volumes: [],
    pages: [],
    settings: {
      "dns.tld": { value: "home", default: "home" },
      "upnp.forward_https": { value: false, default: false },
      "storage.default_quota": { value: 10 * 1024 ** 3, default: 10 * 1024 ** 3 },
      "pages.refresh_interval": { value: 300, default: 300 },
    },
    managed: [],
    purgeOnRemoval: new Set(),
    ...state,
  };
}

function wiki(state: Partial<CurrentState["apps"][number]> = {}): CurrentState["apps"][number] {
  return {
    repo: "main",
    name: "wiki",
    version: "1.2",
    answers: { title: "Wiki", password: "hunter2" },
    exposures: { "8080": "lan", "2222": "local" },
    ...state,
  };
}

/** The plan from a checkout given as `path → YAML` to a box. */
function plan(files: Record<string, string>, current: CurrentState, options = noLookups) {
  const parsed = parseCheckout(Object.entries(files).map(([path, text]) => ({ path, text })));
  assert.deepEqual(parsed.problems, []);
  return planChanges(parsed.desired, current, options);
}

function stepsOf(files: Record<string, string>, current: CurrentState, options = noLookups) {
  const result = plan(files, current, options);
  assert.deepEqual(result.problems, []);
  return result.steps;
}

function problemsOf(files: Record<string, string>, current: CurrentState, options = noLookups) {
  return plan(files, current, options).problems.map((p) => `${p.path}: ${p.message}`);
}

describe("planChanges: repositories", () => {
  it("adds repositories declared and absent, in the file's order", () => {
    const files = {
      "repositories.yaml":
        "- {name: main, url: https://example.org/main}\n- {name: b, url: https://b}\n- {name: a, url: https://a}\n",
    };
    assert.deepEqual(stepsOf(files, box()), [
      { kind: "repository.add", name: "b", url: "https://b" },
      { kind: "repository.add", name: "a", url: "https://a" },
    ]);
  });

  it("refuses a repository whose URL differs from the one of that name", () => {
    const files = { "repositories.yaml": "- {name: main, url: https://other.org/main}\n" };
    assert.deepEqual(problemsOf(files, box()), [
      "repositories.yaml: repository main is https://example.org/main on the box, not https://other.org/main: remove it by hand first, or give this one another name",
    ]);
  });

  it("removes, last of all, repositories it managed and no longer declares", () => {
    const current = box({
      repositories: [
        { name: "main", url: "https://example.org/main" },
        { name: "old", url: "https://old" },
        { name: "manual", url: "https://manual" },
      ],
      apps: [wiki()],
      managed: [
        { kind: "repository", name: "old" },
        { kind: "app", name: "main/wiki" },
      ],
    });
    const steps = stepsOf(
      { "repositories.yaml": "- {name: main, url: https://example.org/main}\n" },
      current,
    );
    assert.deepEqual(steps, [
      { kind: "app.uninstall", repo: "main", name: "wiki", purge: false },
      { kind: "repository.remove", name: "old" },
    ]);
  });

  it("leaves repositories alone when repositories.yaml is absent", () => {
    const current = box({
      repositories: [{ name: "old", url: "https://old" }],
      managed: [{ kind: "repository", name: "old" }],
    });
    assert.deepEqual(stepsOf({}, current), []);
  });
});

describe("planChanges: settings", () => {
  it("sets settings whose value differs, and only those", () => {
    const files = { "settings.yaml": "dns.tld: lan\nupnp.forward_https: false\n" };
    assert.deepEqual(stepsOf(files, box()), [
      { kind: "setting.set", key: "dns.tld", value: "lan" },
    ]);
  });

  it("compares sizes and durations by what they stand for", () => {
    const same = { "settings.yaml": "storage.default_quota: 10gb\npages.refresh_interval: 5m\n" };
    assert.deepEqual(stepsOf(same, box()), []);
    const other = { "settings.yaml": "storage.default_quota: 20gb\npages.refresh_interval: 300\n" };
    assert.deepEqual(stepsOf(other, box()), [
      { kind: "setting.set", key: "storage.default_quota", value: "20gb" },
    ]);
  });

  it("refuses unknown settings and values of the wrong type", () => {
    const files = {
      "settings.yaml":
        "dns.tdl: lan\nupnp.forward_https: 'yes'\ndns.tld: 5\npages.refresh_interval: true\n",
    };
    assert.deepEqual(problemsOf(files, box()), [
      "settings.yaml: there is no setting dns.tdl",
      "settings.yaml: upnp.forward_https: expected true or false",
      "settings.yaml: dns.tld: expected a string",
      "settings.yaml: pages.refresh_interval: expected a number",
    ]);
  });

  it("does not take settings for inherited object properties", () => {
    assert.deepEqual(problemsOf({ "settings.yaml": "constructor: x\ntoString: y\n" }, box()), [
      "settings.yaml: there is no setting constructor",
      "settings.yaml: there is no setting toString",
    ]);
  });
});

describe("planChanges: volumes", () => {
  const current = box({
    volumes: [
      { name: "photos", quota: 10 * 1024 ** 3 },
      { name: "music", quota: null },
    ],
  });

  it("creates volumes declared and absent, with their quota as given", () => {
    const files = { "volumes/new.yaml": "quota: 5gb\n", "volumes/plain.yaml": "" };
    assert.deepEqual(stepsOf(files, current), [
      { kind: "volume.create", name: "new", quota: "5gb" },
      { kind: "volume.create", name: "plain", quota: undefined },
    ]);
  });

  it("changes a quota that differs in bytes, not in spelling", () => {
    assert.deepEqual(stepsOf({ "volumes/photos.yaml": "quota: 10GB\n" }, current), []);
    assert.deepEqual(stepsOf({ "volumes/photos.yaml": `quota: ${10 * 1024 ** 3}\n` }, current), []);
    assert.deepEqual(stepsOf({ "volumes/photos.yaml": "quota: 20gb\n" }, current), [
      { kind: "volume.quota", name: "photos", quota: "20gb" },
    ]);
    assert.deepEqual(stepsOf({ "volumes/photos.yaml": "quota: null\n" }, current), [
      { kind: "volume.quota", name: "photos", quota: null },
    ]);
    assert.deepEqual(stepsOf({ "volumes/music.yaml": "quota: 1mb\n" }, current), [
      { kind: "volume.quota", name: "music", quota: "1mb" },
    ]);
  });

  it("keeps the quota of a volume whose file names none", () => {
    assert.deepEqual(stepsOf({ "volumes/photos.yaml": "" }, current), []);
  });

  it("never deletes a volume because its file went away", () => {
    const managed = box({ ...current, managed: [{ kind: "volume", name: "photos" }] });
    assert.deepEqual(stepsOf({}, managed), []);
  });

  it("refuses a quota that is not a size (a desired state made by hand)", () => {
    const { desired } = parseCheckout([]);
    desired.volumes.set("photos", { quota: "lots" });
    assert.deepEqual(planChanges(desired, current, noLookups).problems, [
      { path: "volumes/photos.yaml", message: "quota lots is not a size such as 10gb" },
    ]);
  });
});

describe("planChanges: apps", () => {
  const secrets: PlanOptions = {
    secret: (name) => ({ "wiki-password": "s3cret" })[name],
    latest: () => undefined,
  };

  it("installs apps declared and absent, with secrets resolved", () => {
    const files = {
      "apps/main/wiki.yaml":
        "version: '1.2'\nanswers:\n  title: Wiki\n  password: {secretRef: wiki-password}\n",
      "apps/main/chat.yaml": "",
    };
    assert.deepEqual(stepsOf(files, box(), secrets), [
      { kind: "app.install", repo: "main", name: "chat", version: undefined, answers: {} },
      {
        kind: "app.install",
        repo: "main",
        name: "wiki",
        version: "1.2",
        answers: { title: "Wiki", password: "s3cret" },
      },
    ]);
  });

  it("refuses a secret that is not set, naming the file and the question", () => {
    const files = { "apps/main/wiki.yaml": "answers:\n  password: {secretRef: nope}\n" };
    assert.deepEqual(problemsOf(files, box(), secrets), [
      "apps/main/wiki.yaml: answer password: secret nope is not set on the box (town state secret set nope)",
    ]);
  });

  it("leaves an app as it is when its file matches", () => {
    const current = box({ apps: [wiki()] });
    const files = {
      "apps/main/wiki.yaml":
        "version: '1.2'\nanswers:\n  password: {secretRef: wiki-password}\nexposure:\n  '8080': lan\n",
    };
    assert.deepEqual(stepsOf({ ...files, "apps/main/wiki.yaml": "" }, current), []);
    assert.deepEqual(
      stepsOf(files, box({ apps: [wiki({ answers: { password: "s3cret" } })] }), secrets),
      [],
    );
  });

  it("upgrades to a declared version, keeping the answers", () => {
    const current = box({ apps: [wiki()] });
    assert.deepEqual(stepsOf({ "apps/main/wiki.yaml": "version: '1.3'\n" }, current), [
      {
        kind: "app.upgrade",
        repo: "main",
        name: "wiki",
        version: "1.3",
        answers: { title: "Wiki", password: "hunter2" },
      },
    ]);
  });

  it("does not count a version spelled differently as another one", () => {
    const current = box({ apps: [wiki({ version: "1.2" })] });
    assert.deepEqual(stepsOf({ "apps/main/wiki.yaml": "version: '1.02'\n" }, current), []);
  });

  it("follows the newest version when none is declared, never stepping back", () => {
    const current = box({ apps: [wiki()] });
    const newest = (latest: string): PlanOptions => ({ ...noLookups, latest: () => latest });
    assert.deepEqual(stepsOf({ "apps/main/wiki.yaml": "" }, current, newest("1.10")), [
      {
        kind: "app.upgrade",
        repo: "main",
        name: "wiki",
        version: "1.10",
        answers: { title: "Wiki", password: "hunter2" },
      },
    ]);
    assert.deepEqual(stepsOf({ "apps/main/wiki.yaml": "" }, current, newest("1.1")), []);
    // A changed answer with an older newest: reconfigured at the installed version.
    assert.deepEqual(
      stepsOf({ "apps/main/wiki.yaml": "answers: {title: New}\n" }, current, newest("1.1")),
      [
        {
          kind: "app.upgrade",
          repo: "main",
          name: "wiki",
          version: "1.2",
          answers: { title: "New", password: "hunter2" },
        },
      ],
    );
  });

  it("reconfigures an app whose declared answer differs, or is new", () => {
    const current = box({ apps: [wiki()] });
    const step = (answers: Record<string, string>): StateStep => ({
      kind: "app.upgrade",
      repo: "main",
      name: "wiki",
      version: "1.2",
      answers,
    });
    assert.deepEqual(
      stepsOf(
        { "apps/main/wiki.yaml": "answers: {password: {secretRef: wiki-password}}\n" },
        current,
        secrets,
      ),
      [step({ title: "Wiki", password: "s3cret" })],
    );
    assert.deepEqual(stepsOf({ "apps/main/wiki.yaml": "answers: {theme: dark}\n" }, current), [
      step({ title: "Wiki", password: "hunter2", theme: "dark" }),
    ]);
    // A question named like an object's property is still a question.
    assert.deepEqual(stepsOf({ "apps/main/wiki.yaml": "answers: {constructor: x}\n" }, current), [
      step({ title: "Wiki", password: "hunter2", constructor: "x" }),
    ]);
  });

  it("changes exposures that differ, and refuses ports the app does not publish", () => {
    const current = box({ apps: [wiki()] });
    const files = { "apps/main/wiki.yaml": "exposure:\n  '8080': internet\n  '2222': local\n" };
    assert.deepEqual(stepsOf(files, current), [
      { kind: "app.expose", repo: "main", name: "wiki", port: 8080, level: "internet" },
    ]);
    assert.deepEqual(problemsOf({ "apps/main/wiki.yaml": "exposure: {'9999': lan}\n" }, current), [
      "apps/main/wiki.yaml: exposure 9999: main/wiki publishes no port 9999",
    ]);
  });

  it("exposes a new app's ports after installing it", () => {
    const files = { "apps/main/wiki.yaml": "exposure: {'8080': lan}\n" };
    assert.deepEqual(
      stepsOf(files, box()).map((step) => step.kind),
      ["app.install", "app.expose"],
    );
  });

  it("uninstalls apps it managed and no longer declares, purging only when asked", () => {
    const chat = wiki({ name: "chat" });
    const manual = wiki({ name: "manual" });
    const current = box({
      apps: [wiki(), chat, manual],
      managed: [
        { kind: "app", name: "main/wiki" },
        { kind: "app", name: "main/chat" },
        { kind: "app", name: "main/gone" },
      ],
      purgeOnRemoval: new Set(["main/chat"]),
    });
    assert.deepEqual(stepsOf({}, current), [
      { kind: "app.uninstall", repo: "main", name: "wiki", purge: false },
      { kind: "app.uninstall", repo: "main", name: "chat", purge: true },
    ]);
  });

  it("tells apps of the same name in two repositories apart", () => {
    const current = box({ apps: [wiki({ repo: "other" })] });
    assert.deepEqual(
      stepsOf({ "apps/main/wiki.yaml": "" }, current).map((step) => step.kind),
      ["app.install"],
    );
  });
});

describe("planChanges: pages", () => {
  it("creates pages declared and absent", () => {
    assert.deepEqual(
      stepsOf(
        { "pages/blog.yaml": "source: {type: git, url: https://example.org/blog.git}\n" },
        box(),
      ),
      [{ kind: "page.create", name: "blog", file: GIT_PAGE }],
    );
  });

  it("leaves a page whose file is the same (whatever the key order)", () => {
    const current = box({
      pages: [
        { name: "blog", file: { source: { url: "https://example.org/blog.git", type: "git" } } },
      ],
    });
    assert.deepEqual(
      stepsOf(
        { "pages/blog.yaml": "source: {type: git, url: https://example.org/blog.git}\n" },
        current,
      ),
      [],
    );
  });

  it("makes a changed page anew: removed, then created", () => {
    const current = box({ pages: [{ name: "blog", file: GIT_PAGE }] });
    const files = {
      "pages/blog.yaml": "source: {type: git, url: https://example.org/blog.git, branch: dev}\n",
    };
    assert.deepEqual(stepsOf(files, current), [
      { kind: "page.remove", name: "blog" },
      {
        kind: "page.create",
        name: "blog",
        file: { source: { type: "git", url: "https://example.org/blog.git", branch: "dev" } },
      },
    ]);
  });

  it("removes pages it managed and no longer declares, not others", () => {
    const current = box({
      pages: [
        { name: "blog", file: GIT_PAGE },
        { name: "manual", file: GIT_PAGE },
      ],
      managed: [{ kind: "page", name: "blog" }],
    });
    assert.deepEqual(stepsOf({}, current), [{ kind: "page.remove", name: "blog" }]);
  });
});

describe("planChanges: the whole", () => {
  it("orders steps: repositories added, settings, volumes, uninstalls, installs, exposures, pages, repositories removed", () => {
    const current = box({
      repositories: [
        { name: "main", url: "https://example.org/main" },
        { name: "old", url: "https://old" },
      ],
      apps: [wiki({ repo: "old", name: "legacy" }), wiki()],
      pages: [{ name: "gone", file: GIT_PAGE }],
      managed: [
        { kind: "repository", name: "old" },
        { kind: "app", name: "old/legacy" },
        { kind: "page", name: "gone" },
      ],
    });
    const files = {
      "repositories.yaml":
        "- {name: main, url: https://example.org/main}\n- {name: new, url: https://new}\n",
      "settings.yaml": "dns.tld: lan\n",
      "volumes/photos.yaml": "",
      "apps/new/chat.yaml": "",
      "apps/main/wiki.yaml": "version: '2.0'\nexposure: {'8080': internet}\n",
      "pages/blog.yaml": "source: {type: git, url: https://example.org/blog.git}\n",
    };
    assert.deepEqual(stepsOf(files, current).map(stepText), [
      "add repository new (https://new)",
      "set dns.tld = lan",
      "create volume photos",
      "uninstall old/legacy",
      "update main/wiki to 2.0",
      "install new/chat",
      "expose main/wiki port 8080 to internet",
      "remove page gone",
      "create page blog",
      "remove repository old",
    ]);
  });

  it("lists every object the checkout declares as managed", () => {
    const result = plan(
      {
        "repositories.yaml": "- {name: main, url: https://example.org/main}\n",
        "settings.yaml": "dns.tld: home\n",
        "volumes/photos.yaml": "",
        "apps/main/wiki.yaml": "",
        "pages/blog.yaml": "source: {type: git, url: https://example.org/blog.git}\n",
      },
      box({ apps: [wiki()], volumes: [{ name: "photos", quota: null }] }),
    );
    assert.deepEqual(
      result.steps.map((step) => step.kind),
      ["page.create"],
    );
    assert.deepEqual(result.managed, [
      { kind: "repository", name: "main" },
      { kind: "setting", name: "dns.tld" },
      { kind: "volume", name: "photos" },
      { kind: "app", name: "main/wiki" },
      { kind: "page", name: "blog" },
    ]);
  });

  it("gathers every problem, from every kind of file", () => {
    const files = {
      "repositories.yaml": "- {name: main, url: https://x}\n",
      "settings.yaml": "nope: 1\n",
      "apps/main/wiki.yaml": "answers: {a: {secretRef: missing}}\n",
    };
    assert.equal(problemsOf(files, box()).length, 3);
  });
});

describe("stepText", () => {
  it("shows each step without answers' values", () => {
    const secret = "hunter2-secret";
    const texts = [
      stepText({ kind: "repository.add", name: "x", url: "https://user:pw@example.org/x?token=t" }),
      stepText({ kind: "repository.remove", name: "x" }),
      stepText({ kind: "setting.set", key: "dns.tld", value: "lan" }),
      stepText({ kind: "volume.create", name: "photos", quota: "10gb" }),
      stepText({ kind: "volume.create", name: "photos", quota: null }),
      stepText({ kind: "volume.quota", name: "photos", quota: 1024 }),
      stepText({ kind: "volume.quota", name: "photos", quota: null }),
      stepText({ kind: "app.uninstall", repo: "main", name: "wiki", purge: false }),
      stepText({ kind: "app.uninstall", repo: "main", name: "wiki", purge: true }),
      stepText({
        kind: "app.install",
        repo: "main",
        name: "wiki",
        version: "1.2",
        answers: { pw: secret },
      }),
      stepText({
        kind: "app.install",
        repo: "main",
        name: "wiki",
        version: undefined,
        answers: {},
      }),
      stepText({
        kind: "app.upgrade",
        repo: "main",
        name: "wiki",
        version: "1.3",
        answers: { pw: secret },
      }),
      stepText({ kind: "app.expose", repo: "main", name: "wiki", port: 8080, level: "lan" }),
      stepText({ kind: "page.create", name: "blog", file: GIT_PAGE }),
      stepText({ kind: "page.remove", name: "blog" }),
    ];
    assert.deepEqual(texts, [
      "add repository x (https://[redacted]@example.org/x?[redacted])",
      "remove repository x",
      "set dns.tld = lan",
      "create volume photos with quota 10gb",
      "create volume photos with no quota",
      "set volume photos to quota 1024",
      "set volume photos to no quota",
      "uninstall main/wiki",
      "uninstall main/wiki and delete its data",
      "install main/wiki 1.2",
      "install main/wiki",
      "update main/wiki to 1.3",
      "expose main/wiki port 8080 to lan",
      "create page blog",
      "remove page blog",
    ]);
    assert.ok(texts.every((text) => !text.includes(secret)));
  });
});
