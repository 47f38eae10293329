import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { describe, it } from "node:test";
import { compilePackage } from "./compile.js";
import { planSecrets } from "./plan.js";
import type { CompileOptions, CompiledPackage, PackageSource } from "./types.js";
import { parseDefinition } from "../definition/parse.js";
import { TownError } from "../errors.js";
import { prefillAnswers } from "../questions.js";
import { loadRepository, PackageIndex } from "../repository.js";
import {
  readTree,
  repoRoot,
  seededRandom,
  testSystem,
  upstreamFixtures,
  upstreamMissing,
} from "../../test/support.js";

function source(yaml: string, name = "app", version = "1.0", repo = "default"): PackageSource {
  const { definition, errors } = parseDefinition(yaml);
  assert.deepEqual(errors, []);
  assert.ok(definition);
  return { repo, name, version, definition };
}

function options(extra: Partial<CompileOptions> = {}): CompileOptions {
  return { tld: "home", system: testSystem, random: seededRandom(), ...extra };
}

function compileError(run: () => unknown): TownError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof TownError, String(error));
    return error;
  }
  assert.fail("expected the compile to fail");
}

async function indexOf(dir: string, name = "default"): Promise<PackageIndex> {
  return new PackageIndex([{ name, repository: loadRepository(await readTree(dir)) }]);
}

/** Compiles as the install form would: defaults prefilled, then the given answers. */
function compileWithDefaults(
  index: PackageIndex,
  name: string,
  version: string,
  answers: Record<string, string> = {},
): CompiledPackage {
  const pkg = index.find({ repo: "default", name, version });
  assert.ok(pkg, `${name}@${version} is in the repository`);
  return compilePackage(
    pkg,
    { ...prefillAnswers(pkg.definition.questions), ...answers },
    options({
      resolveDependency: (request) => index.find(request),
    }),
  );
}

describe("compile: the upstream Town OS packages", { skip: upstreamMissing }, async () => {
  const index = upstreamMissing ? undefined : await indexOf(upstreamFixtures);
  const repository = upstreamMissing ? undefined : loadRepository(await readTree(upstreamFixtures));
  /**
   * Questions with no default and not optional must be answered by a person
   * (the spec: every question ends up non-empty); these are the answers a
   * person would type. Everything else comes from the package's defaults.
   */
  const typed: Record<string, Record<string, string>> = {
    postgres: { user: "postgres", database: "app" },
    "immich-postgres": { user: "immich", database: "immich" },
    immich: { photosize: "100gb" },
  };

  for (const [name, versions] of repository?.packages ?? []) {
    for (const version of versions.keys()) {
      it(`${name}@${version} compiles with default answers`, () => {
        assert.ok(index);
        const plan = compileWithDefaults(index, name, version, typed[name] ?? {});
        assert.equal(plan.name, name);
        assert.match(plan.hash, /^[0-9a-f]{64}$/);
      });
    }
  }

  it("gitea 2.0: the SSH note, the ingress and the marker port key", () => {
    assert.ok(index);
    const plan = compileWithDefaults(index, "gitea", "2.0");
    assert.deepEqual(plan.notes, [
      { label: "URL", value: "https://gitea.default.home/", type: "url" },
      { label: "SSH", value: "ssh://git@gitea.default.home:2222", type: "url" },
    ]);
    assert.deepEqual(plan.ingress, { host: "gitea.default.home", port: 3000 });
    assert.deepEqual(plan.ports, [
      { name: "http", host: null, container: 3000, exposure: "internal" },
      { name: null, host: 2222, container: 22, exposure: "internal" },
    ]);
    assert.equal(plan.environment["GITEA__server__ROOT_URL"], "https://gitea.default.home/");
    assert.equal(plan.environment["GITEA__server__SSH_PORT"], "2222");
    assert.equal(plan.image, "docker.io/gitea/gitea:latest");
    assert.deepEqual(plan.postUpdate, ["gitea doctor check --fix"]);
    assert.deepEqual(
      plan.volumes.map((v) => [v.name, v.mountpoint]),
      [
        ["data", "/data"],
        ["log", "/data/gitea/log"],
      ],
    );
  });

  it("gitea 1.0: the web port comes from its answer", () => {
    assert.ok(index);
    const plan = compileWithDefaults(index, "gitea", "1.0");
    assert.equal(plan.environment["GITEA__server__ROOT_URL"], "https://gitea.default.home:3000/");
    assert.deepEqual(plan.ingress, { host: "gitea.default.home", port: 3000 });
  });

  it("immich 2.0: dependencies, their answers and stage-2 values", () => {
    assert.ok(index);
    const plan = compileWithDefaults(index, "immich", "2.0", {
      photosize: "100gb",
      dbpass: "pw@home",
    });
    assert.deepEqual(
      plan.dependencies.map((d) => [d.key, d.name, d.instance, d.hostname]),
      [
        ["db", "immich-postgres", "immich--db", "town-default--immich--db"],
        ["redis", "redis", "immich--redis", "town-default--immich--redis"],
        ["ml", "immich-machine-learning", "immich--ml", "town-default--immich--ml"],
      ],
    );
    const db = plan.dependencies[0];
    assert.equal(db?.answers["password"], "pw@home");
    assert.equal(db.answers["user"], "immich");
    assert.equal(db.environment["POSTGRES_PASSWORD"], "pw@home");
    assert.equal(
      db.notes[0]?.value,
      "postgresql://immich:pw@home@immich--db.default.home:5432/immich",
    );
    assert.equal(plan.environment["DB_PORT"], "5432");
    assert.equal(plan.environment["REDIS_PORT"], "6379");
    assert.equal(plan.environment["IMMICH_MACHINE_LEARNING_URL"], "http://ml:3003");
    assert.equal(plan.environment["TOWNOS_DEP_DB_HOST"], "town-default--immich--db");
    assert.equal(plan.environment["TOWNOS_DEP_DB_PORT_SQL"], "5432");
    assert.equal(plan.environment["TOWNOS_DEP_DB_PORT_5432"], "5432");
    assert.equal(plan.environment["TOWNOS_DEP_ML_PORT_HTTP"], "3003");
    assert.equal(plan.volumes[0]?.quota, 100 * 1024 ** 3);
    assert.deepEqual(db.ports, [
      { name: "sql", host: 5432, container: 5432, exposure: "internal" },
    ]);
  });

  it("immich 1.0: an unanswered port question gets a free port from 10000-60000", () => {
    assert.ok(index);
    const plan = compileWithDefaults(index, "immich", "1.0", { photosize: "1tb" });
    const external = plan.ports.find((p) => p.exposure === "external");
    assert.ok(external?.host !== undefined && external.host !== null);
    assert.ok(external.host >= 10000 && external.host <= 60000);
    assert.equal(external.container, 2283);
    assert.equal(plan.notes[0]?.value, `https://immich.default.home:${external.host}`);
  });

  it("irc: template content with shell syntax passes through untouched", () => {
    assert.ok(index);
    const plan = compileWithDefaults(index, "irc", "1.0");
    const file = plan.files[0];
    assert.equal(file?.path, "bootstrap.sh");
    assert.equal(file.volume, "data");
    assert.match(
      file.content,
      /HASH=\$\(printf '%s' "\$OPER_PASSWORD" \| \/ircd-bin\/ergo genpasswd\)/,
    );
    assert.match(file.content, /^exec \/ircd-bin\/ergo run$/m);
    assert.deepEqual(plan.entrypoint, ["sh"]);
    assert.deepEqual(plan.command, ["/ircd/bootstrap.sh"]);
    assert.equal(plan.notes.find((n) => n.label === "Server")?.value, testSystem.externalIP);
    assert.match(plan.answers["oper_password"] ?? "", /^[0-9a-f]{64}$/);
  });

  it("vaultwarden 1.1: booleans normalize to true/false", () => {
    assert.ok(index);
    assert.equal(
      compileWithDefaults(index, "vaultwarden", "1.1").environment["SIGNUPS_ALLOWED"],
      "true",
    );
    assert.equal(
      compileWithDefaults(index, "vaultwarden", "1.1", { signups: "F" }).environment[
        "SIGNUPS_ALLOWED"
      ],
      "false",
    );
  });

  it("redis: markers in command", () => {
    assert.ok(index);
    assert.deepEqual(compileWithDefaults(index, "redis", "1.0", { port: "6380" }).command, [
      "redis-server",
      "--port",
      "6380",
    ]);
  });

  it("postgres: required questions without defaults are named in the errors", () => {
    assert.ok(index);
    const error = compileError(() => compileWithDefaults(index, "postgres", "1.0"));
    assert.equal(error.code, "invalid_answers");
    assert.deepEqual(
      error.issues.map((i) => [i.question, i.message]),
      [
        ["user", "an answer is required"],
        ["database", "an answer is required"],
      ],
    );
  });

  it("postgres: the generated password is a secret, and the connection note holds it", () => {
    assert.ok(index);
    const plan = compileWithDefaults(index, "postgres", "1.0", { user: "u", database: "d" });
    assert.deepEqual(plan.secrets, ["password"]);
    const password = plan.answers.password ?? "";
    assert.match(password, /^[0-9a-f]{64}$/);
    assert.deepEqual(planSecrets(plan), [password]);
    assert.ok(plan.notes.some((note) => note.value.includes(password)));
  });
});

describe("compile: the bundled examples", async () => {
  const index = await indexOf(join(repoRoot, "examples/repository"));

  it("guestbook: every question type normalized", () => {
    const plan = compileWithDefaults(index, "guestbook", "1.0", { feedport: "", motto: "" });
    assert.match(plan.answers["host"] ?? "", /^guestbook-[0-9a-f]{4}$/);
    assert.match(plan.answers["kvpass"] ?? "", /^[0-9a-f]{64}$/);
    assert.equal(plan.answers["quota"], String(1024 ** 3));
    assert.equal(plan.answers["retention"], String(30 * 86400));
    assert.equal(plan.answers["moderated"], "true");
    assert.equal(plan.answers["theme"], "default-theme");
    assert.equal(plan.answers["welcome"], "welcome.tar.gz");
    assert.equal(plan.answers["motto"], "");
    assert.equal(plan.answers["signin"], "");
    const feed = Number(plan.answers["feedport"]);
    assert.ok(feed >= 10000 && feed <= 60000);
    assert.deepEqual(plan.volumes, [
      {
        name: "www",
        mountpoint: "/srv/www",
        quota: 1024 ** 3,
        uid: null,
        gid: null,
        archive: null,
        git: null,
      },
      {
        name: "www-uploads",
        mountpoint: "/srv/www/uploads",
        quota: null,
        uid: 1000,
        gid: 1000,
        archive: null,
        git: null,
      },
    ]);
    assert.deepEqual(
      plan.notes.find((n) => n.label === "Owner"),
      {
        label: "Owner",
        value: "guestbook@guestbook.default.home",
        type: "email",
      },
    );
    assert.deepEqual(plan.command, ["httpd", "-f", "-p", "8080", "-h", "/srv/www"]);
    assert.equal(
      plan.files[0]?.content,
      [
        "<!doctype html>",
        "<title>Our guestbook</title>",
        "<h1>Our guestbook</h1>",
        "<p>Entries are kept 2592000 seconds and moderated.</p>",
        "<p>Store: town-default--guestbook--store:7379</p>",
        "",
      ].join("\n"),
    );
  });

  it("hello 1.1: show_if hides a question until its box is ticked", () => {
    const hidden = compileWithDefaults(index, "hello", "1.1", { contact: "ignored@example.org" });
    assert.equal(hidden.answers["contact"], "");
    assert.doesNotMatch(hidden.files[0]?.content ?? "", /Contact/);
    const shown = compileWithDefaults(index, "hello", "1.1", {
      show_contact: "t",
      contact: "me@example.org",
    });
    assert.equal(shown.answers["contact"], "me@example.org");
    assert.match(shown.files[0]?.content ?? "", /Contact: <a href="mailto:me@example.org">/);
    const missing = compileError(() =>
      compileWithDefaults(index, "hello", "1.1", { show_contact: "1" }),
    );
    assert.deepEqual(
      missing.issues.map((i) => i.question),
      ["contact"],
    );
  });

  it("is deterministic for the same answers and randomness, and the hash follows changes", () => {
    const a = compileWithDefaults(index, "guestbook", "1.0", { feedport: "20000" });
    const b = compileWithDefaults(index, "guestbook", "1.0", { feedport: "20000" });
    assert.deepEqual(a, b);
    const c = compileWithDefaults(index, "guestbook", "1.0", { feedport: "20001" });
    assert.notEqual(a.hash, c.hash);
  });
});

describe("compile: rules checked after substitution", () => {
  it("rejects control characters in answers, naming each question", () => {
    const pkg = source(
      "image: app\nenvironment:\n  A: '@a@'\ncommand: ['@b@']\nquestions:\n  a:\n    query: x\n  b:\n    query: y\n",
    );
    const error = compileError(() => compilePackage(pkg, { a: "x\ny", b: "\u001b[2J" }, options()));
    assert.deepEqual(
      error.issues.map((i) => [i.question, i.message]),
      [
        ["a", "contains a control character (U+000A)"],
        ["b", "contains a control character (U+001B)"],
      ],
    );
  });

  it("rejects an answer that turns a template path into an escape", () => {
    const pkg = source(
      "image: app\nvolumes:\n  v:\n    mountpoint: /v\ntemplates:\n  t:\n    volume: v\n    path: '@dir@/conf'\n    content: x\nquestions:\n  dir:\n    query: where\n",
    );
    const error = compileError(() => compilePackage(pkg, { dir: ".." }, options()));
    assert.equal(error.code, "invalid_package");
    assert.equal(error.issues[0]?.field, "templates.t.path");
    assert.match(error.issues[0].message, /must not contain '\.\.'/);
  });

  it("rejects an answer that puts shell syntax into the image", () => {
    const pkg = source("image: 'app:@tag@'\nquestions:\n  tag:\n    query: tag\n");
    const error = compileError(() => compilePackage(pkg, { tag: "1;reboot" }, options()));
    assert.deepEqual(
      error.issues.map((i) => [i.field, i.message]),
      [["image", '"app:1;reboot" is not a valid image reference']],
    );
  });

  it("checks port ranges after substitution", () => {
    const pkg = source(
      "image: app\nnetwork:\n  external:\n    '@p@': '70000'\nquestions:\n  p:\n    type: port\n",
    );
    const error = compileError(() => compilePackage(pkg, { p: "8080" }, options()));
    assert.deepEqual(
      error.issues.map((i) => i.message),
      ['"70000" is not a port number (1-65535)'],
    );
  });

  it("refuses a taken port and avoids it when choosing one", () => {
    const pkg = source(
      "image: app\nnetwork:\n  external:\n    '@p@': '80'\nquestions:\n  p:\n    type: port\n",
    );
    const taken = compileError(() =>
      compilePackage(pkg, { p: "8080" }, options({ takenPorts: [8080] })),
    );
    assert.deepEqual(
      taken.issues.map((i) => [i.question, i.message]),
      [["p", "port 8080 is already in use"]],
    );
    const all = Array.from({ length: 50001 }, (_, i) => 10000 + i).filter((port) => port !== 43210);
    const plan = compilePackage(pkg, { p: "auto" }, options({ takenPorts: all }));
    assert.equal(plan.ports[0]?.host, 43210);
  });

  it("refuses a literal host port already in use and one published twice", () => {
    const pkg = source(
      "image: app\nnetwork:\n  external:\n    '8080': '80'\n  internal:\n    web: '8080'\n",
    );
    const error = compileError(() => compilePackage(pkg, {}, options({ takenPorts: [8080] })));
    assert.deepEqual(
      error.issues.map((i) => i.message),
      ["host port 8080 is already in use", "host port 8080 is published twice"],
    );
  });

  it("lists every answer problem at once, including unknown questions", () => {
    const pkg = source(
      [
        "image: app",
        "questions:",
        "  p: {type: port}",
        "  h: {type: hostname}",
        "  b: {type: bytes}",
        "  d: {type: duration}",
        "  t: {type: boolean}",
        "  v: {type: volume}",
        "  a: {type: archive}",
        "  plain: {query: x}",
      ].join("\n"),
    );
    const error = compileError(() =>
      compilePackage(
        pkg,
        {
          p: "0",
          h: "1host",
          b: "lots",
          d: "10",
          t: "maybe",
          v: "../x",
          a: "",
          plain: "",
          extra: "1",
        },
        options(),
      ),
    );
    assert.deepEqual(
      error.issues.map((i) => [i.question, i.message]),
      [
        ["extra", 'there is no question "extra"'],
        ["t", '"maybe" is not true or false'],
        ["p", "port 0 is outside 1-65535"],
        ["h", '"1host" is not a host name (a letter, then letters, digits or -)'],
        ["b", '"lots" is not a size (a number with mb, gb or tb)'],
        ["d", '"10" is not a duration (a number with s, m, h or d)'],
        ["v", '"../x" is not a volume name (letters, digits, _ and -)'],
        ["a", "an answer is required"],
        ["plain", "an answer is required"],
      ],
    );
  });

  it("normalizes hostnames to lower case and bytes to counts", () => {
    const pkg = source("image: app\nquestions:\n  h: {type: hostname}\n  b: {type: bytes}\n");
    const plan = compilePackage(pkg, { h: "MyBox", b: "2GB" }, options());
    assert.deepEqual(plan.answers, { b: String(2 * 1024 ** 3), h: "mybox" });
  });

  it("checks note types", () => {
    const pkg = source(
      "image: app\nnotes:\n  Site: {value: '@u@', type: url}\n  Call: {value: '@p@', type: phone}\n  Mail: {value: '@m@', type: email}\nquestions:\n  u: {query: u}\n  p: {query: p}\n  m: {query: m}\n",
    );
    const error = compileError(() =>
      compilePackage(pkg, { u: "not a url", p: "call me", m: "nobody" }, options()),
    );
    assert.deepEqual(
      error.issues.map((i) => i.field),
      ["notes.Site", "notes.Call", "notes.Mail"],
    );
    const plan = compilePackage(
      pkg,
      { u: "https://x.example", p: "+1 (555) 010-9999", m: "me@x.example" },
      options(),
    );
    assert.equal(plan.notes.length, 3);
  });

  it("turns @@ into @ in command and entrypoint but substitutes answers first", () => {
    const pkg = source(
      "image: app\nentrypoint: ['@@x']\ncommand: ['--user=@u@@@host']\nquestions:\n  u: {query: u}\n",
    );
    const plan = compilePackage(pkg, { u: "me" }, options());
    assert.deepEqual(plan.entrypoint, ["@x"]);
    assert.deepEqual(plan.command, ["--user=me@host"]);
  });

  it("compiles a virtual machine", () => {
    const pkg = source(
      "vm:\n  image: https://images.example.org/debian.qcow2\n  memory: '@mem@'\n  cpus: 2\nquestions:\n  mem: {type: bytes, default: 2gb}\n",
    );
    const plan = compilePackage(pkg, { mem: "" }, options());
    assert.equal(plan.runtime, "vm");
    assert.equal(plan.image, null);
    assert.deepEqual(plan.vm, {
      image: "https://images.example.org/debian.qcow2",
      memory: 2 * 1024 ** 3,
      cpus: 2,
      sha256: null,
    });
    // The VM's own disk gets a volume, so uninstall and reinstall keep it like any data.
    assert.deepEqual(
      plan.volumes.map((volume) => [volume.name, volume.mountpoint, volume.quota]),
      [["vm-disk", "/", null]],
    );
  });

  it("keeps a VM image's checksum (the sha256 extension), in lower case", () => {
    const sum = "AB".repeat(32);
    const pkg = source(`vm:\n  image: debian.qcow2\n  sha256: ${sum}\n`);
    const plan = compilePackage(pkg, {}, options());
    assert.equal(plan.vm?.sha256, sum.toLowerCase());
  });

  it("refuses container-only fields and a volume named vm-disk in a VM package", () => {
    const pkg = source(
      "vm:\n  image: debian.qcow2\ncommand: [run]\npost_update: [x]\nvolumes:\n  vm-disk: {mountpoint: /data}\n",
    );
    const error = compileError(() => compilePackage(pkg, {}, options()));
    assert.deepEqual(
      error.issues.map((issue) => issue.field),
      ["volumes.vm-disk", "command", "post_update"],
    );
    assert.match(error.issues[0]?.message ?? "", /the VM's own disk/);
    assert.match(error.issues[1]?.message ?? "", /no meaning for a virtual machine/);
  });

  it("rejects proton packages clearly", () => {
    const pkg = source("proton:\n  exe: game.exe\n");
    const error = compileError(() => compilePackage(pkg, {}, options()));
    assert.match(error.message, /proton.*not supported/);
  });
});

describe("compile: the metrics extension", () => {
  it("gives the container port and path, null without the field, on dependencies too", () => {
    const index = new PackageIndex([
      {
        name: "default",
        repository: loadRepository([
          {
            path: "packages/db/1.0.yaml",
            text: "image: db\nmetrics: {port: '@mport@'}\nquestions:\n  mport: {default: '9187'}\n",
          },
          {
            path: "packages/app/1.0.yaml",
            text: "image: app\nmetrics: {port: 8080, path: /-/metrics}\ndependencies:\n  db: {package: db}\n",
          },
          { path: "packages/plain/1.0.yaml", text: "image: plain\n" },
        ]),
      },
    ]);
    const plan = compileWithDefaults(index, "app", "1.0");
    assert.deepEqual(plan.metrics, { port: 8080, path: "/-/metrics" });
    assert.deepEqual(plan.dependencies[0]?.metrics, { port: 9187, path: "/metrics" });
    assert.equal(compileWithDefaults(index, "plain", "1.0").metrics, null);
  });

  it("changes the plan's hash only when given", () => {
    const plain = compilePackage(source("image: app\n"), {}, options());
    const withMetrics = compilePackage(source("image: app\nmetrics: {port: 80}\n"), {}, options());
    assert.notEqual(plain.hash, withMetrics.hash);
    // What the plan hashed to before the field (and `backup`, added later) existed.
    const { metrics, backup, hash, ...before } = plain;
    assert.equal(metrics, null);
    assert.equal(backup, null);
    assert.equal(hash, createHash("sha256").update(JSON.stringify(before)).digest("hex"));
  });

  it("checks substituted values", () => {
    const pkg = source(
      "image: app\nmetrics: {port: '@p@', path: '@path@'}\nquestions:\n  p: {}\n  path: {}\n",
    );
    const error = compileError(() => compilePackage(pkg, { p: "70000", path: "/a b" }, options()));
    assert.deepEqual(
      error.issues.map((issue) => [issue.field, issue.message]),
      [
        ["metrics.port", '"70000" is not a port number (1-65535)'],
        [
          "metrics.path",
          '"/a b" may hold only URL path characters (no spaces, control characters, ? or #)',
        ],
      ],
    );
  });
});

describe("compile: the backup extension", () => {
  it("gives how each node is quiesced, markers substituted, null without the field", () => {
    const index = new PackageIndex([
      {
        name: "default",
        repository: loadRepository([
          {
            path: "packages/db/1.0.yaml",
            text: [
              "image: db",
              "backup:",
              "  quiesce: command",
              "  command: [psql, -U, '@user@', -c, 'CHECKPOINT', 'mail@@@PACKAGE_DNS@']",
              "  timeout: '@wait@'",
              "questions:",
              "  user: {default: postgres}",
              "  wait: {default: '300'}",
              "",
            ].join("\n"),
          },
          {
            path: "packages/app/1.0.yaml",
            text: "image: app\nbackup: {quiesce: stop}\ndependencies:\n  db: {package: db}\n",
          },
          { path: "packages/plain/1.0.yaml", text: "image: plain\n" },
          {
            path: "packages/guest/1.0.yaml",
            text: "vm: {image: disk.qcow2}\nbackup: {quiesce: stop, timeout: 120}\n",
          },
        ]),
      },
    ]);
    const plan = compileWithDefaults(index, "app", "1.0");
    assert.deepEqual(plan.backup, { quiesce: "stop", command: [], timeoutSeconds: 60 });
    assert.deepEqual(plan.dependencies[0]?.backup, {
      quiesce: "command",
      command: ["psql", "-U", "postgres", "-c", "CHECKPOINT", "mail@app--db.default.home"],
      timeoutSeconds: 300,
    });
    assert.equal(compileWithDefaults(index, "plain", "1.0").backup, null);
    assert.deepEqual(compileWithDefaults(index, "guest", "1.0").backup, {
      quiesce: "stop",
      command: [],
      timeoutSeconds: 120,
    });
  });

  it("changes the plan's hash only when given", () => {
    const plain = compilePackage(source("image: app\n"), {}, options());
    const withBackup = compilePackage(
      source("image: app\nbackup: {quiesce: stop}\n"),
      {},
      options(),
    );
    assert.notEqual(plain.hash, withBackup.hash);
    // A plan without backup keeps the hash it had before the field existed (see also metrics'
    // test, which checks a plan with neither); here one that uses another extension.
    const withMetrics = compilePackage(source("image: app\nmetrics: {port: 80}\n"), {}, options());
    const { backup: none, hash: metricsHash, ...metricsBefore } = withMetrics;
    assert.equal(none, null);
    assert.equal(
      metricsHash,
      createHash("sha256").update(JSON.stringify(metricsBefore)).digest("hex"),
    );
  });

  it("checks substituted values", () => {
    const pkg = source(
      [
        "image: app",
        "backup:",
        "  quiesce: command",
        "  command: ['@prog@', '@arg@']",
        "  timeout: '@t@'",
        "questions:",
        "  prog: {optional: true}",
        "  arg: {}",
        "  t: {}",
        "",
      ].join("\n"),
    );
    const error = compileError(() =>
      compilePackage(pkg, { prog: "", arg: "x".repeat(4097), t: "0" }, options()),
    );
    assert.deepEqual(
      error.issues.map((issue) => [issue.field, issue.message]),
      [
        ["backup.command.1", "is longer than 4096 characters after substitution"],
        ["backup.command.0", "must not be empty after substitution"],
        ["backup.timeout", '"0" is not a number of seconds (1-3600)'],
      ],
    );
    // A timeout answer left blank means the default.
    const blank = compilePackage(
      source(
        "image: app\nbackup: {quiesce: stop, timeout: '@t@'}\nquestions:\n  t: {optional: true}\n",
      ),
      { t: "" },
      options(),
    );
    assert.equal(blank.backup?.timeoutSeconds, 60);
  });
});

describe("compile: dependencies", () => {
  const db =
    "image: db\nnetwork:\n  internal:\n    sql: '@port@'\nquestions:\n  port: {type: port, default: '5432'}\n  pw: {type: secret}\n";
  const app = [
    "image: app",
    "environment:",
    "  URL: 'db://@dep_main_host@:@dep_main_port_sql@'",
    "dependencies:",
    "  main: {package: db, responses: {pw: '@secret@'}}",
    "  spare: {package: db, responses: {pw: '@dep_main_host@'}}",
    "questions:",
    "  secret: {type: secret}",
  ].join("\n");
  const repository = loadRepository([
    { path: "packages/loop-a/1.0.yaml", text: "image: a\ndependencies:\n  b: {package: loop-b}\n" },
    { path: "packages/loop-b/1.0.yaml", text: "image: b\ndependencies:\n  a: {package: loop-a}\n" },
    { path: "packages/db/1.0.yaml", text: db },
    { path: "packages/app/1.0.yaml", text: app },
    {
      path: "packages/lost/1.0.yaml",
      text: "image: lost\ndependencies:\n  gone: {package: missing}\n",
    },
  ]);
  const index = new PackageIndex([{ name: "default", repository }]);
  const compileNamed = (name: string, answers: Record<string, string> = {}) => {
    const pkg = index.find({ repo: "default", name });
    assert.ok(pkg);
    return compilePackage(
      pkg,
      answers,
      options({ resolveDependency: (request) => index.find(request) }),
    );
  };

  it("lists the secret answers of the whole tree; a plan without the list counts every answer", () => {
    const plan = compileNamed("app", { secret: "top-secret" });
    assert.deepEqual(plan.secrets, ["secret"]);
    assert.deepEqual(
      plan.dependencies.map((dependency) => dependency.secrets),
      [["pw"], ["pw"]],
    );
    const spareHost = plan.dependencies[1]?.answers.pw ?? "";
    assert.deepEqual(
      planSecrets(plan),
      [spareHost, "top-secret"].sort((a, b) => b.length - a.length || (a < b ? -1 : 1)),
    );
    // As stored before plans listed their secrets.
    const stored: Partial<CompiledPackage> = { ...plan, dependencies: [] };
    delete stored.secrets;
    assert.ok(planSecrets(stored as CompiledPackage).includes("top-secret"));
  });

  it("detects cycles", () => {
    const error = compileError(() => compileNamed("loop-a"));
    assert.equal(error.code, "dependency_cycle");
    assert.match(error.message, /default\/loop-a → default\/loop-b → default\/loop-a/);
  });

  it("reports a missing dependency", () => {
    const error = compileError(() => compileNamed("lost"));
    assert.equal(error.code, "not_found");
    assert.deepEqual(
      error.issues.map((i) => [i.field, i.message]),
      [["dependencies.gone", "package default/missing was not found"]],
    );
  });

  it("feeds earlier dependencies into later responses; a second copy gets a free port", () => {
    const plan = compileNamed("app", { secret: "s" });
    assert.equal(plan.environment["URL"], "db://town-default--app--main:5432");
    const [main, spare] = plan.dependencies;
    assert.equal(main?.answers["pw"], "s");
    assert.equal(spare?.answers["pw"], "town-default--app--main");
    assert.equal(main.ports[0]?.host, 5432);
    const sparePort = spare.ports[0]?.host ?? 0;
    assert.ok(sparePort >= 10000 && sparePort <= 60000, `spare got ${sparePort}`);
  });
});
