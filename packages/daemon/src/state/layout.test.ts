/**
 * Reading a state repository's checkout: the layout, the files' schemas,
 * and hostile input (oversized files, alias bombs, odd paths and names,
 * wrong types, duplicate keys, tags).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  StateAppFileSchema,
  StatePageFileSchema,
  StateRepositoriesFileSchema,
  StateSettingsFileSchema,
  StateVolumeFileSchema,
  type StateFile,
} from "@townos/api";
import { Kind } from "@sinclair/typebox";
import { MAX_STATE_FILE_BYTES, MAX_STATE_FILES, parseCheckout } from "./layout.js";
import { unsupportedKeywords } from "./schema-check.js";

function file(path: string, text: string): StateFile {
  return { path, text };
}

/** The problems of a checkout as `path: message` lines. */
function problemsOf(files: StateFile[]): string[] {
  return parseCheckout(files).problems.map(({ path, message }) => `${path}: ${message}`);
}

/** The one problem of a single-file checkout. */
function onlyProblem(path: string, text: string): string {
  const problems = parseCheckout([file(path, text)]).problems;
  assert.equal(problems.length, 1, JSON.stringify(problems));
  const [only] = problems;
  assert.ok(only);
  assert.equal(only.path, path);
  return only.message;
}

describe("parseCheckout: the layout", () => {
  it("reads every kind of file into the desired state", () => {
    const { desired, problems } = parseCheckout([
      file(
        "repositories.yaml",
        "- name: main\n  url: https://example.org/main\n- name: extra\n  url: https://example.org/extra\n",
      ),
      file(
        "settings.yaml",
        "dns.tld: lan\nupnp.forward_https: true\nstorage.default_quota: 20gb\n",
      ),
      file(
        "apps/main/wiki.yaml",
        [
          'version: "1.2"',
          "answers:",
          "  title: My wiki",
          "  admin_password: { secretRef: wiki-admin }",
          "exposure:",
          '  "8080": lan',
          "purge: true",
          "",
        ].join("\n"),
      ),
      file("apps/extra/chat.yaml", ""),
      file("volumes/photos.yaml", "quota: 10gb\n"),
      file("volumes/music.yaml", "quota: 1073741824\n"),
      file("volumes/scratch.yaml", "quota: null\n"),
      file("pages/blog.yaml", "source:\n  type: git\n  url: https://example.org/blog.git\n"),
    ]);
    assert.deepEqual(problems, []);
    assert.deepEqual(desired.repositories, [
      { name: "main", url: "https://example.org/main" },
      { name: "extra", url: "https://example.org/extra" },
    ]);
    assert.deepEqual(desired.settings, {
      "dns.tld": "lan",
      "upnp.forward_https": true,
      "storage.default_quota": "20gb",
    });
    assert.deepEqual(desired.apps.get("main/wiki"), {
      repo: "main",
      name: "wiki",
      version: "1.2",
      answers: { title: "My wiki", admin_password: { secretRef: "wiki-admin" } },
      exposure: { "8080": "lan" },
      purge: true,
    });
    assert.deepEqual(desired.apps.get("extra/chat"), { repo: "extra", name: "chat" });
    assert.deepEqual(
      [...desired.volumes],
      [
        ["music", { quota: 1073741824 }],
        ["photos", { quota: "10gb" }],
        ["scratch", { quota: null }],
      ],
    );
    assert.deepEqual(desired.pages.get("blog"), {
      source: { type: "git", url: "https://example.org/blog.git" },
    });
  });

  it("leaves repositories and settings unmanaged (null) when their files are absent", () => {
    const { desired, problems } = parseCheckout([file("README.md", "# my box\n")]);
    assert.deepEqual(problems, []);
    assert.equal(desired.repositories, null);
    assert.equal(desired.settings, null);
    assert.equal(desired.apps.size + desired.volumes.size + desired.pages.size, 0);
  });

  it("reads an empty repositories.yaml as an empty list and an empty settings.yaml as none", () => {
    const { desired, problems } = parseCheckout([
      file("repositories.yaml", "# none\n"),
      file("settings.yaml", ""),
    ]);
    assert.deepEqual(problems, []);
    assert.deepEqual(desired.repositories, []);
    assert.deepEqual(desired.settings, {});
  });

  it("ignores files outside the layout", () => {
    const { desired, problems } = parseCheckout([
      file("README.md", "hello"),
      file(".gitignore", "*.swp"),
      file("docs/apps/main/wiki.yaml", "not: [read"),
      file("apps/README.md", "apps here"),
      file("apps/main/.wiki.yaml.swp", "\0\0"),
      file("volumes/notes.txt", "x"),
      file("other.yaml", "{{{"),
      file("Apps/main/wiki.yaml", "{{{"),
    ]);
    assert.deepEqual(problems, []);
    assert.equal(desired.apps.size, 0);
  });

  it("refuses YAML files in the wrong place or with the wrong extension", () => {
    assert.deepEqual(
      problemsOf([
        file("apps/wiki.yaml", ""),
        file("apps/main/sub/wiki.yaml", ""),
        file("apps/main/wiki.yml", ""),
        file("volumes/a/b.yaml", ""),
        file("pages/blog.YAML", ""),
        file("settings.yml", ""),
        file("repositories.yml", ""),
      ]),
      [
        "apps/main/sub/wiki.yaml: files here are apps/<repo>/<name>.yaml",
        "apps/main/wiki.yml: files here are apps/<repo>/<name>.yaml",
        "apps/wiki.yaml: files here are apps/<repo>/<name>.yaml",
        "pages/blog.YAML: files here are pages/<name>.yaml",
        "repositories.yml: this file is read only as repositories.yaml",
        "settings.yml: this file is read only as settings.yaml",
        "volumes/a/b.yaml: files here are volumes/<name>.yaml",
      ],
    );
  });

  it("refuses paths that climb out or are not plain", () => {
    for (const path of [
      "../apps/main/wiki.yaml",
      "apps/../settings.yaml",
      "apps/main/../../x.yaml",
      "/settings.yaml",
      "./settings.yaml",
      "apps//wiki.yaml",
      "apps\\main\\wiki.yaml",
      "apps/main/wi\0ki.yaml",
      "../README.md",
    ]) {
      assert.equal(onlyProblem(path, ""), "not a plain relative path", path);
    }
  });

  it("refuses invalid names", () => {
    assert.match(onlyProblem("apps/main/-wiki.yaml", ""), /"-wiki" is not a valid name/);
    assert.match(onlyProblem("apps/ma in/wiki.yaml", ""), /"ma in" is not a valid name/);
    assert.match(onlyProblem(`apps/main/${"a".repeat(65)}.yaml`, ""), /longer than 64/);
    assert.match(onlyProblem("apps/main/.yaml", ""), /"" is not a valid name/);
    assert.match(onlyProblem("volumes/pkg.main.yaml", ""), /reserved/);
    assert.match(onlyProblem("volumes/_x.yaml", ""), /volume name "_x"/);
    assert.match(onlyProblem(`volumes/${"v".repeat(65)}.yaml`, ""), /longer than 64/);
    // Pages are DNS labels (`<page>.<tld>`).
    assert.match(onlyProblem("pages/My_Blog.yaml", ""), /"My_Blog" is not a page name/);
    assert.match(onlyProblem(`pages/${"p".repeat(64)}.yaml`, ""), /is not a page name/);
    assert.match(onlyProblem("pages/town.yaml", ""), /a name of the box itself/);
  });

  it("reports a path given twice", () => {
    assert.deepEqual(problemsOf([file("volumes/a.yaml", ""), file("volumes/a.yaml", "quota: 1")]), [
      "volumes/a.yaml: the checkout lists this file twice",
    ]);
  });

  it("gives the same result whatever the order of the files", () => {
    const files = [
      file("volumes/b.yaml", "quota: x"),
      file("volumes/a.yaml", "quota: y"),
      file("apps/main/wiki.yaml", "version: 1"),
    ];
    const forward = parseCheckout(files);
    const backward = parseCheckout([...files].reverse());
    assert.deepEqual(backward.problems, forward.problems);
    assert.deepEqual([...backward.desired.volumes], [...forward.desired.volumes]);
  });
});

describe("parseCheckout: the files' contents", () => {
  it("names the file and the field of a wrong type", () => {
    assert.equal(onlyProblem("apps/main/wiki.yaml", "version: [1]\n"), "version: expected string");
    assert.equal(
      onlyProblem("apps/main/wiki.yaml", "answers:\n  port: 8080\n"),
      "answers.port: expected a string or {secretRef} or {age} (put it in quotes)",
    );
    assert.equal(
      onlyProblem("apps/main/wiki.yaml", "exposure:\n  '80': world\n"),
      "exposure.80: expected one of local, lan, internet",
    );
    assert.equal(onlyProblem("apps/main/wiki.yaml", "purge: yes\n"), "purge: expected boolean");
    assert.equal(
      onlyProblem("apps/main/wiki.yaml", "versoin: '1'\n"),
      "versoin: unexpected property",
    );
    assert.equal(
      onlyProblem("volumes/v.yaml", "quota: [1]\n"),
      "quota: expected an integer or a string or null (at most 32 characters)",
    );
    assert.equal(
      onlyProblem("volumes/v.yaml", "quota: 1.5\n"),
      "quota: expected an integer or a string or null (at most 32 characters)",
    );
    assert.equal(
      onlyProblem("pages/blog.yaml", "source: {type: ftp}\n"),
      "source.type: expected one of archive, git, image",
    );
    assert.equal(onlyProblem("pages/blog.yaml", "{}\n"), "source: expected required property");
    assert.equal(onlyProblem("settings.yaml", "- a\n"), "expected object");
    assert.equal(onlyProblem("repositories.yaml", "main: https://example.org\n"), "expected array");
    assert.equal(
      onlyProblem("repositories.yaml", "- {name: main}\n"),
      "0.url: expected required property",
    );
  });

  it("refuses a secretRef that is not a name, an empty {age}, and either with more", () => {
    for (const answer of [
      "{ secretRef: 'a b' }",
      "{ secretRef: x, other: y }",
      "{ secret: x }",
      "{ age: '' }",
      "{ age: x, secretRef: y }",
    ]) {
      assert.equal(
        onlyProblem("apps/main/wiki.yaml", `answers:\n  pw: ${answer}\n`),
        "answers.pw: expected a string or {secretRef} or {age}",
        answer,
      );
    }
  });

  it("refuses exposure keys that are not ports", () => {
    assert.deepEqual(
      problemsOf([
        file("apps/main/wiki.yaml", "exposure:\n  http: lan\n  '0': lan\n  '70000': lan\n"),
      ]),
      [
        "apps/main/wiki.yaml: exposure.0: not a port number (1-65535)",
        "apps/main/wiki.yaml: exposure.70000: not a port number (1-65535)",
        "apps/main/wiki.yaml: exposure.http: not a port number (1-65535)",
      ],
    );
  });

  it("refuses a quota that is not a size", () => {
    assert.equal(
      onlyProblem("volumes/v.yaml", "quota: 10 gigs\n"),
      'quota: "10 gigs" is not a size such as 10gb',
    );
    assert.equal(
      onlyProblem("volumes/v.yaml", "quota: -1\n"),
      "quota: -1 is not a size such as 10gb",
    );
  });

  it("refuses a repository named twice", () => {
    assert.equal(
      onlyProblem(
        "repositories.yaml",
        "- {name: main, url: https://a}\n- {name: extra, url: https://b}\n- {name: main, url: https://c}\n",
      ),
      "repository main is listed twice",
    );
  });

  it("refuses values YAML reads as not-a-number or infinite", () => {
    assert.match(onlyProblem("settings.yaml", "a: .nan\n"), /^a: expected/);
    assert.match(onlyProblem("settings.yaml", "a: 1e400\n"), /^a: expected/);
  });
});

describe("parseCheckout: hostile YAML", () => {
  it("refuses duplicate keys", () => {
    assert.match(
      onlyProblem("settings.yaml", "dns.tld: lan\ndns.tld: home\n"),
      /^Map keys must be unique at line 2/,
    );
    assert.match(
      onlyProblem("apps/main/wiki.yaml", "answers:\n  a: x\n  a: y\n"),
      /^Map keys must be unique/,
    );
  });

  it("refuses an alias bomb without expanding it", () => {
    const bomb = [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
      "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]",
      "",
    ].join("\n");
    const started = Date.now();
    assert.match(onlyProblem("settings.yaml", bomb), /cannot be read: Excessive alias count/);
    assert.ok(Date.now() - started < 1000);
  });

  it("accepts a few aliases (a shared block of answers)", () => {
    const { problems, desired } = parseCheckout([
      file("settings.yaml", "dns.tld: &tld lan\nregistries.insecure: *tld\n"),
    ]);
    assert.deepEqual(problems, []);
    assert.deepEqual(desired.settings, { "dns.tld": "lan", "registries.insecure": "lan" });
  });

  it("refuses tags, merge keys and collections as keys", () => {
    assert.match(onlyProblem("settings.yaml", "a: !!binary aGk=\n"), /^tags such as .*binary/);
    assert.match(onlyProblem("settings.yaml", "a: !!str 1\n"), /^tags such as/);
    assert.match(onlyProblem("settings.yaml", "a: !custom x\n"), /^Unresolved tag: !custom/);
    assert.match(onlyProblem("settings.yaml", "a: !!set {x}\n"), /tag/);
    assert.equal(onlyProblem("settings.yaml", "[a, b]: 1\n"), "keys must be plain text");
    // `<<` is a key like any other: no merging.
    assert.deepEqual(problemsOf([file("volumes/v.yaml", "base: &b {quota: 1}\n<<: *b\n")]), [
      "volumes/v.yaml: base: unexpected property",
      "volumes/v.yaml: <<: unexpected property",
    ]);
  });

  it("refuses several documents in one file", () => {
    assert.equal(
      onlyProblem("settings.yaml", "dns.tld: lan\n---\ndns.tld: home\n"),
      "one YAML document per file",
    );
  });

  it("refuses a file that does not parse", () => {
    assert.match(onlyProblem("apps/main/wiki.yaml", "answers: [1,\n"), /line 2/);
  });

  it("refuses a file over the size limit without parsing it", () => {
    const text = `title: "${"x".repeat(MAX_STATE_FILE_BYTES)}"\n`;
    assert.match(onlyProblem("settings.yaml", text), /bytes: a file here may have at most 65536/);
    // Bytes, not characters: 22k three-byte characters are over 64 KiB.
    assert.match(onlyProblem("settings.yaml", `a: ${"€".repeat(22_000)}\n`), /at most 65536/);
  });

  it("refuses nesting too deep for the parser without crashing", () => {
    const deep = `a: ${"[".repeat(30_000)}${"]".repeat(30_000)}`.slice(0, MAX_STATE_FILE_BYTES);
    const problems = parseCheckout([file("settings.yaml", deep)]).problems;
    assert.ok(problems.length >= 1 && problems.length <= 3, JSON.stringify(problems));
    assert.ok(problems.every((problem) => problem.path === "settings.yaml"));
  });

  it("keeps __proto__ a plain key", () => {
    const { desired, problems } = parseCheckout([
      file("apps/main/wiki.yaml", "answers:\n  __proto__: polluted\n"),
    ]);
    assert.deepEqual(problems, []);
    const answers = desired.apps.get("main/wiki")?.answers ?? {};
    assert.ok(Object.hasOwn(answers, "__proto__"));
    assert.equal(Object.getPrototypeOf(answers), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it("refuses too many declaration files, but not many ignored ones", () => {
    const volumes = Array.from({ length: MAX_STATE_FILES + 1 }, (_, i) =>
      file(`volumes/v${i}.yaml`, ""),
    );
    assert.deepEqual(problemsOf(volumes), [
      `.: ${MAX_STATE_FILES + 1} declaration files: at most ${MAX_STATE_FILES} are read`,
    ]);
    const docs = Array.from({ length: MAX_STATE_FILES + 1 }, (_, i) => file(`docs/${i}.md`, ""));
    assert.deepEqual(problemsOf([...docs, ...volumes.slice(0, MAX_STATE_FILES)]), []);
  });

  it("reports at most a few errors of one file", () => {
    const answers = Array.from({ length: 50 }, (_, i) => `  q${i}: ${i}`).join("\n");
    const problems = parseCheckout([
      file("apps/main/wiki.yaml", `answers:\n${answers}\n`),
    ]).problems;
    assert.equal(problems.length, 10);
  });
});

describe("the state files' schemas", () => {
  it("use only the plain JSON Schema keywords the checker knows", () => {
    const schemas = [
      StateRepositoriesFileSchema,
      StateAppFileSchema,
      StateVolumeFileSchema,
      StatePageFileSchema,
      StateSettingsFileSchema,
    ];
    const plain = schemas.flatMap(plainNodes);
    assert.ok(plain.length > 0, "the schemas use Type.Unsafe: this test walks them");
    for (const node of plain) assert.deepEqual(unsupportedKeywords(node), [], JSON.stringify(node));
  });
});

/** Every `Type.Unsafe` node under a schema. */
function plainNodes(schema: unknown): object[] {
  if (typeof schema !== "object" || schema === null) return [];
  const own = (schema as Record<PropertyKey, unknown>)[Kind] === "Unsafe" ? [schema] : [];
  return [...own, ...Object.values(schema).flatMap(plainNodes)];
}
