import assert from "node:assert/strict";
import { mkdir, readFile, readdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import type { StateApplyView, StateStatus } from "@townos/client";
import { parseCheckout } from "@townos/daemon";
// To check what the box would decrypt (the daemon's dependency; the CLI encrypts through the daemon's package).
import { armor, Decrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { answerJson, fakeDaemon } from "../test/run-town.js";
import { localTime } from "./backup-views.js";
import {
  encryptedAnswerYaml,
  exportPathProblem,
  intervalText,
  readCheckout,
  readSecretText,
  referencedSecrets,
  statusText,
  syncText,
} from "./state-commands.js";

const NOW = Date.UTC(2026, 11, 4, 12, 0, 0);
const HOUR = 3_600_000;
const OLD = "0123456789abcdef0123456789abcdef01234567";
const NEW = "fedcba9876543210fedcba9876543210fedcba98";

function entry(extra: Partial<StateApplyView>): StateApplyView {
  return {
    commit: NEW,
    author: "Ann <ann@example.org>",
    message: "add the wiki",
    result: "applied",
    error: null,
    changes: ["install main/wiki 1.2.0", "expose main/wiki 8080 lan"],
    at: NOW - HOUR,
    ...extra,
  };
}

const STATUS: StateStatus = {
  configured: true,
  url: "https://git.example.org/box.git",
  branch: "main",
  intervalSeconds: 300,
  commit: NEW,
  appliedAt: NOW - HOUR,
  step: null,
  error: null,
  lastSyncAt: NOW - 60_000,
  managed: [
    { kind: "app", name: "main/wiki" },
    { kind: "page", name: "blog" },
    { kind: "app", name: "main/chat" },
    { kind: "setting", name: "net.hostname" },
  ],
  history: [
    entry({}),
    entry({
      commit: "badbadbadbadbadbadbadbadbadbadbadbadbadb",
      result: "refused",
      error: "apps/main/x.yaml: answers.port:\nnot a number",
      changes: [],
      at: NOW - 2 * HOUR,
    }),
    ...[3, 4, 5, 6].map((hours) =>
      entry({ commit: `${hours}`.repeat(40), changes: [], at: NOW - hours * HOUR }),
    ),
  ],
};

describe("town state as it prints", () => {
  it("shows the setting, the commit, what git manages by kind, and the last five commits", () => {
    const text = statusText(STATUS, NOW);
    assert.match(
      text,
      /^repository: https:\/\/git\.example\.org\/box\.git \(branch main\), checked every 5 min$/m,
    );
    assert.match(
      text,
      new RegExp(`^commit: fedcba9, applied ${localTime(NOW - HOUR)} \\(1 h ago\\)$`, "m"),
    );
    assert.match(text, /^last sync: .*\(1 min ago\), ok$/m);
    assert.match(
      text,
      /^managed from git:\n {2}settings: net\.hostname\n {2}apps: main\/chat, main\/wiki\n {2}pages: blog$/m,
    );
    assert.match(text, /^COMMIT +AUTHOR +WHEN +RESULT +WHAT$/m);
    assert.match(
      text,
      /^fedcba9 +Ann <ann@example\.org> +.*\(1 h ago\) +applied +install main\/wiki 1\.2\.0; expose main\/wiki 8080 lan$/m,
    );
    assert.match(text, /^badbadb .* refused +apps\/main\/x\.yaml: answers\.port: not a number$/m);
    assert.match(text, /^5555555 .* no changes$/m);
    assert.doesNotMatch(text, /6666666/);
  });

  it("says when nothing is set, a sync failed or one is running", () => {
    assert.match(
      statusText({ ...STATUS, configured: false, url: null }, NOW),
      /^no state repository is set: everything on this box is managed by hand/,
    );
    const text = statusText(
      {
        ...STATUS,
        branch: null,
        intervalSeconds: 45,
        commit: null,
        appliedAt: null,
        step: "installing main/wiki",
        error: "could not fetch: 401",
        managed: [],
        history: [],
      },
      NOW,
    );
    assert.match(text, /\(the remote's default branch\), checked every 45 s$/m);
    assert.match(text, /^commit: none applied yet$/m);
    assert.match(text, /^last sync: .*, failed: could not fetch: 401$/m);
    assert.match(text, /^syncing now: installing main\/wiki$/m);
    assert.match(text, /^managed from git: nothing yet$/m);
    assert.doesNotMatch(text, /HISTORY/);
    assert.equal(intervalText(7200), "2 h");
  });

  it("says what a sync applied, that the box was already there, or why it refused", () => {
    const before = { ...STATUS, commit: OLD };
    assert.deepEqual(syncText(before, STATUS), {
      failed: false,
      text: "applied fedcba9 by Ann <ann@example.org>: add the wiki\n  install main/wiki 1.2.0\n  expose main/wiki 8080 lan",
    });
    assert.deepEqual(syncText(STATUS, STATUS), { failed: false, text: "already on fedcba9" });
    assert.deepEqual(syncText(STATUS, { ...STATUS, error: "commit badbadb refused:\nbad yaml" }), {
      failed: true,
      text: "commit badbadb refused: bad yaml; the box stays on fedcba9",
    });
  });

  it("refuses exported paths that would land outside the directory or in .git", () => {
    assert.equal(exportPathProblem("apps/main/wiki.yaml"), null);
    assert.equal(exportPathProblem("../x"), "has an empty, . or .. part");
    assert.equal(exportPathProblem("apps/../../x"), "has an empty, . or .. part");
    assert.equal(exportPathProblem("apps//x"), "has an empty, . or .. part");
    assert.equal(exportPathProblem("/etc/passwd"), "is absolute");
    assert.equal(exportPathProblem("a\nb"), "holds control characters");
    assert.equal(exportPathProblem("a\\..\\b"), "holds a backslash");
    assert.equal(exportPathProblem(".git/hooks/post-checkout"), "is inside .git");
  });

  it("finds the secrets an export's answers name", () => {
    assert.deepEqual(
      referencedSecrets([
        { path: "apps/main/wiki.yaml", text: "answers:\n  db: { secretRef: wiki-db }\n" },
        { path: "apps/main/chat.yaml", text: 'answers:\n  key:\n    "secretRef": "chat.key"\n' },
        { path: "settings.yaml", text: "net.hostname: box\n" },
      ]),
      ["chat.key", "wiki-db"],
    );
  });

  it("writes an encrypted answer as a YAML block under age", () => {
    assert.equal(
      encryptedAnswerYaml(
        "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n",
      ),
      "age: |\n  -----BEGIN AGE ENCRYPTED FILE-----\n  YWdl\n  -----END AGE ENCRYPTED FILE-----",
    );
  });

  it("reads a secret from a pipe without its newline, refusing an empty or huge one", async () => {
    assert.equal(await readSecretText(Readable.from(["s3cr", "et\n"]), "Password"), "s3cret");
    await assert.rejects(
      readSecretText(Readable.from(["\n"]), "Password"),
      /Password on stdin is empty/,
    );
    await assert.rejects(
      readSecretText(Readable.from([Buffer.alloc(70_000, 97)]), "Password"),
      /larger than 65536 bytes/,
    );
  });
});

describe("town state against a daemon", () => {
  let requests: string[] = [];
  let answers: Record<string, unknown[]> = {};
  const daemon = fakeDaemon("town-state-cli-", ({ key, body }, response) => {
    requests.push(`${key} ${body}`.trim());
    const queue = answers[key] ?? [];
    const next = queue.length > 1 ? queue.shift() : queue[0];
    if (next === undefined) {
      response.writeHead(204);
      response.end();
      return;
    }
    answerJson(response, next);
  });
  const { town } = daemon;

  it("sets the repository with the password from a file, or from the command line with a warning", async () => {
    await writeFile(join(daemon.dir, "token"), "ghp_s3cret\n", { mode: 0o600 });
    requests = [];
    answers = { "PUT /api/v1/state": [STATUS] };
    const set = await town(
      "state",
      "set",
      "https://git.example.org/box.git",
      "--branch",
      "main",
      "--username",
      "ann",
      "--password-file",
      "token",
      "--interval",
      "5m",
    );
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(requests, [
      'PUT /api/v1/state {"url":"https://git.example.org/box.git","branch":"main","username":"ann","password":"ghp_s3cret","interval":"5m"}',
    ]);
    assert.match(set.stdout, /^repository: https:\/\/git\.example\.org\/box\.git \(branch main\)/);

    requests = [];
    answers = { "PUT /api/v1/state": [STATUS] };
    const inline = await town(
      "state",
      "set",
      "https://git.example.org/box.git",
      "--username",
      "ann",
      "--password",
      "x",
    );
    assert.equal(inline.code, 0, inline.stderr);
    assert.match(inline.stderr, /warning: a password on the command line is seen by other users/);
    assert.deepEqual(requests, [
      'PUT /api/v1/state {"url":"https://git.example.org/box.git","username":"ann","password":"x"}',
    ]);
    requests = [];
    const inUrl = await town("state", "set", "https://ann:x@git.example.org/box.git");
    assert.equal(inUrl.code, 2);
    assert.match(inUrl.stderr, /the URL holds a password: give it with --password-file/);
    const both = await town("state", "set", "u", "--password-file", "token", "--password-stdin");
    assert.equal(both.code, 2);
    assert.deepEqual(requests, []);
  });

  it("prints the status, or it as JSON", async () => {
    answers = { "GET /api/v1/state": [STATUS] };
    const shown = await town("state", "status");
    assert.equal(shown.code, 0);
    assert.match(shown.stdout, /^ {2}apps: main\/chat, main\/wiki$/m);
    const raw = await town("state", "status", "--json");
    assert.deepEqual(JSON.parse(raw.stdout), STATUS);
  });

  it("syncs, printing what was applied, and exits 1 when the commit was refused", async () => {
    answers = {
      "GET /api/v1/state": [{ ...STATUS, commit: OLD }],
      "POST /api/v1/state/sync": [STATUS],
    };
    const applied = await town("state", "sync");
    assert.equal(applied.code, 0);
    assert.match(
      applied.stdout,
      /^applied fedcba9 by Ann <ann@example\.org>: add the wiki\n {2}install main\/wiki 1\.2\.0\n/,
    );

    answers = {
      "GET /api/v1/state": [STATUS],
      "POST /api/v1/state/sync": [
        { ...STATUS, error: "commit badbadb refused: apps/main/x.yaml: bad" },
      ],
    };
    const refused = await town("state", "sync");
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, "");
    assert.match(
      refused.stderr,
      /^town: commit badbadb refused: apps\/main\/x\.yaml: bad; the box stays on fedcba9$/m,
    );
  });

  it("asks before unsetting, and says what stays", async () => {
    requests = [];
    answers = { "GET /api/v1/state": [STATUS] };
    const refused = await town("state", "unset");
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /Stop following https:\/\/git\.example\.org\/box\.git .*: confirm with --yes/,
    );
    assert.ok(!requests.some((line) => line.startsWith("DELETE")));
    const done = await town("state", "unset", "--yes");
    assert.equal(done.code, 0);
    assert.ok(requests.includes("DELETE /api/v1/state"));
    assert.match(done.stdout, /what it made stays and is managed by hand from now on/);
  });

  it("exports into a new directory, naming the secrets stored on the box", async () => {
    answers = {
      "GET /api/v1/state/export": [
        {
          files: [
            { path: "repositories.yaml", text: "- name: main\n  url: https://x\n" },
            { path: "apps/main/wiki.yaml", text: "answers:\n  db:\n    secretRef: wiki-db\n" },
          ],
        },
      ],
    };
    const exported = await town("state", "export", "box");
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(
      await readFile(join(daemon.dir, "box", "apps", "main", "wiki.yaml"), "utf8"),
      "answers:\n  db:\n    secretRef: wiki-db\n",
    );
    assert.match(
      exported.stdout,
      /^wrote 2 file\(s\) to .*box:\n {2}repositories\.yaml\n {2}apps\/main\/wiki\.yaml\n/,
    );
    assert.match(
      exported.stdout,
      /secrets \(wiki-db\): their values are stored on this box already/,
    );

    const again = await town("state", "export", "box");
    assert.equal(again.code, 2);
    assert.match(again.stderr, /box is not empty/);
  });

  it("refuses an export with a path leaving the directory, writing nothing", async () => {
    answers = {
      "GET /api/v1/state/export": [
        {
          files: [
            { path: "settings.yaml", text: "a: 1\n" },
            { path: "../x", text: "escaped\n" },
          ],
        },
      ],
    };
    const refused = await town("state", "export", "evil");
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /names "\.\.\/x", which has an empty, \. or \.\. part: nothing was written/,
    );
    await assert.rejects(readdir(join(daemon.dir, "evil")), /ENOENT/);
    await assert.rejects(readFile(join(daemon.dir, "x")), /ENOENT/);
  });

  it("prints the hook and manages secrets from a file", async () => {
    await mkdir(join(daemon.dir, "s"), { recursive: true });
    await writeFile(join(daemon.dir, "s", "db"), "hunter2\n", { mode: 0o600 });
    requests = [];
    answers = {
      "GET /api/v1/state/hook": [{ url: "https://box.example.org/api/v1/state/hook/tok" }],
      "GET /api/v1/state/secrets": [{ names: ["wiki-db"] }],
    };
    assert.equal(
      (await town("state", "hook")).stdout,
      "https://box.example.org/api/v1/state/hook/tok\n",
    );
    const set = await town("state", "secret", "set", "wiki-db", "--value-file", "s/db");
    assert.equal(set.code, 0, set.stderr);
    assert.ok(requests.includes('PUT /api/v1/state/secrets/wiki-db {"value":"hunter2"}'));
    assert.equal((await town("state", "secret", "ls")).stdout, "wiki-db\n");
    await town("state", "secret", "rm", "wiki-db");
    assert.ok(requests.includes("DELETE /api/v1/state/secrets/wiki-db"));
  });

  it("prints the box's key, and encrypts an answer to it here as YAML the box decrypts", async () => {
    const identity = await generateX25519Identity();
    const publicKey = await identityToRecipient(identity);
    await mkdir(join(daemon.dir, "s"), { recursive: true });
    await writeFile(join(daemon.dir, "s", "wiki-pw"), "hunter2\n", { mode: 0o600 });
    requests = [];
    answers = { "GET /api/v1/state/key": [{ publicKey }] };
    assert.equal((await town("state", "key")).stdout, `${publicKey}\n`);
    const encrypted = await town("state", "encrypt", "--value-file", "s/wiki-pw");
    assert.equal(encrypted.code, 0, encrypted.stderr);
    assert.deepEqual(requests, ["GET /api/v1/state/key", "GET /api/v1/state/key"]);
    assert.doesNotMatch(encrypted.stdout + encrypted.stderr, /hunter2/);
    // Pasted under a question, indented, it is the answer the box decrypts.
    const indented = encrypted.stdout
      .trimEnd()
      .split("\n")
      .map((line) => `    ${line}`)
      .join("\n");
    const { desired, problems } = parseCheckout([
      { path: "apps/main/wiki.yaml", text: `answers:\n  password:\n${indented}\n` },
    ]);
    assert.deepEqual(problems, []);
    const answer = desired.apps.get("main/wiki")?.answers?.password;
    assert.ok(typeof answer === "object" && "age" in answer, JSON.stringify(answer));
    const decrypter = new Decrypter();
    decrypter.addIdentity(identity);
    assert.equal(await decrypter.decrypt(armor.decode(answer.age), "text"), "hunter2");

    requests = [];
    const offline = await town("state", "encrypt", "--key", publicKey, "--value-file", "s/wiki-pw");
    assert.equal(offline.code, 0, offline.stderr);
    assert.deepEqual(requests, []);
    const wrong = await town(
      "state",
      "encrypt",
      "--key",
      "ssh-ed25519 AAAA",
      "--value-file",
      "s/wiki-pw",
    );
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /ssh-ed25519 AAAA is not an age public key/);
  });

  it("lints a checkout as the box reads it: .git left out, links and big files refused", async () => {
    const checkout = join(daemon.dir, "checkout");
    await mkdir(join(checkout, "apps", "main"), { recursive: true });
    await mkdir(join(checkout, ".git"), { recursive: true });
    await writeFile(join(checkout, "repositories.yaml"), "- name: main\n  url: https://x\n");
    await writeFile(join(checkout, "apps", "main", "wiki.yaml"), 'version: "1.2.0"\n');
    await writeFile(join(checkout, ".git", "config.yaml"), "not: [valid\n");
    await writeFile(join(checkout, "README.md"), "# my box\n");
    const good = await town("state", "lint", "checkout");
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(
      good.stdout,
      /checkout is a valid state repository: 1 repositories, 0 volumes, 1 apps, 0 pages$/m,
    );

    await writeFile(join(checkout, "apps", "main", "chat.yaml"), "colour: red\n");
    await writeFile(join(checkout, "apps", "main", "big.yaml"), `# ${"x".repeat(70_000)}\n`);
    await symlink("/etc/hostname", join(checkout, "settings.yaml"));
    const read = await readCheckout(checkout);
    assert.deepEqual(
      read.files.map((file) => file.path),
      ["apps/main/chat.yaml", "apps/main/wiki.yaml", "repositories.yaml"],
    );
    const bad = await town("state", "lint", "checkout");
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^apps\/main\/big\.yaml: larger than 65536 bytes/m);
    assert.match(bad.stdout, /^apps\/main\/chat\.yaml: .*colour/m);
    assert.match(
      bad.stdout,
      /^settings\.yaml: must be a regular file \(links are not followed\)$/m,
    );
    assert.doesNotMatch(bad.stdout, /\.git/);
    assert.match(bad.stderr, /town: 3 problem\(s\): the box would refuse this commit whole/);
  });
});
