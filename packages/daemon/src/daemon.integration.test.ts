import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { ApiError, TownClient } from "@townos/client";
import { runTownCaptured, type TownRun } from "../../cli/test/run-town.js";
import { startDaemon, type RunningDaemon } from "./daemon.js";
import { commitFiles, createRepo, startGitServer, type GitServer } from "../test/git-server.js";

const root = join(import.meta.dirname, "../../..");
const REPO_PASSWORD = "repo-secret-8c1f0e";
const ADMIN_PASSWORD = "admin-secret-5d2b71";
const USER_PASSWORD = "user-secret-90aa3e";

/** The bundled example repository, as files for a git repository. */
async function exampleFiles(): Promise<Record<string, string>> {
  const base = join(root, "examples/repository");
  const files: Record<string, string> = {
    "featured.json": await readFile(join(base, "featured.json"), "utf8"),
  };
  for (const name of await readdir(join(base, "packages"))) {
    for (const file of await readdir(join(base, "packages", name))) {
      files[`packages/${name}/${file}`] = await readFile(
        join(base, "packages", name, file),
        "utf8",
      );
    }
  }
  return files;
}

describe("the daemon with real git repositories", () => {
  let scratch: string;
  let server: GitServer;
  let familyRepo: string;
  let daemon: RunningDaemon;
  const logLines: string[] = [];
  /** alice, signed in by the CLI during the walk. */
  let admin: TownClient;
  const cliOutput: string[] = [];

  async function town(...argv: string[]): Promise<TownRun> {
    const run = await runTownCaptured(argv, {
      cwd: root,
      env: {
        TOWN_SERVER: daemon.url,
        XDG_CONFIG_HOME: join(scratch, "config"),
        // town setup reads the setup code from the data dir, as on the box.
        TOWN_DATA_DIR: join(scratch, "data"),
      },
    });
    cliOutput.push(run.stdout, run.stderr);
    return run;
  }

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-daemon-"));
    familyRepo = await createRepo(join(scratch, "git"), "family.git", await exampleFiles());
    await createRepo(join(scratch, "private-git"), "private.git", await exampleFiles());
    server = await startGitServer({ root: join(scratch, "git") });
    daemon = await startDaemon({
      dataDir: join(scratch, "data"),
      host: "127.0.0.1",
      port: 0,
      defaultRepositoryUrl: "",
      // Debug logs every request with its headers: the secrets test reads them all.
      logLevel: "debug",
      extraHosts: [],
      version: "test",
      checkResponses: true,
      // Apps run in apps/apps.integration.test.ts; here they are off, so no Podman service starts.
      apps: false,
      logStream: new Writable({
        write(chunk: Buffer, _encoding, callback) {
          logLines.push(chunk.toString());
          callback();
        },
      }),
    });
    await daemon.booted;
  });

  after(async () => {
    await daemon.stop();
    await server.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it("reports its state and that setup is needed", async () => {
    const status = await new TownClient({ baseUrl: daemon.url }).status();
    assert.equal(status.state, "ready");
    assert.equal(status.setupNeeded, true);
  });

  it("walks setup → login → add repo → refresh → search → show → new version → upgrade detected", async () => {
    const setup = await town(
      "setup",
      "--username",
      "alice",
      "--password",
      ADMIN_PASSWORD,
      "--email",
      "alice@example.org",
    );
    assert.equal(setup.code, 0, setup.stderr);
    assert.match(setup.stdout, /signed in as alice \(administrator\)/);

    const again = await town("setup", "--username", "mallory", "--password", "whatever-123");
    assert.equal(again.code, 1);
    assert.match(again.stderr, /Already set up/);

    assert.equal((await town("logout")).code, 0);
    const login = await town("login", "--username", "alice", "--password", ADMIN_PASSWORD);
    assert.equal(login.code, 0, login.stderr);

    const add = await town("repo", "add", "family", server.url("family.git"));
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /added family: 3 packages/);

    const refresh = await town("repo", "refresh", "family");
    assert.match(refresh.stdout, /^family: 3 packages$/m);

    const search = await town("app", "search", "guest", "--json");
    const found = JSON.parse(search.stdout) as {
      repo: string;
      name: string;
      latestVersion: string;
      featured: boolean;
    }[];
    assert.deepEqual(
      found.map((p) => [p.repo, p.name, p.latestVersion, p.featured]),
      [["family", "guestbook", "1.0", true]],
    );

    const show = await town("app", "show", "family/guestbook");
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /\? feedport \(port\): Port for the public feed/);
    assert.match(show.stdout, /volume www-uploads at \/srv\/www\/uploads/);
    assert.match(show.stdout, /https:\/\/guestbook\.family\.home\//);

    // Installing is the runtime's work; here the desired state is recorded directly.
    const services = daemon.boot.services;
    assert.ok(services);
    services.installs.put({
      repo: "family",
      name: "hello",
      version: "1.1",
      definitionHash: services.catalog.definitionHash("family", "hello", "1.1"),
      answers: {},
      enabled: true,
    });
    assert.match((await town("app", "upgrades")).stdout, /everything is up to date/);

    const hello11 = await readFile(join(familyRepo, "packages/hello/1.1.yaml"), "utf8");
    await commitFiles(
      familyRepo,
      { "packages/hello/1.2.yaml": hello11.replace("1.1 adds", "1.2 keeps") },
      "hello 1.2",
    );
    const refreshed = await town("repo", "refresh", "--json");
    const repos = JSON.parse(refreshed.stdout) as {
      name: string;
      status: { changedPackages: string[] };
    }[];
    assert.deepEqual(repos.find((r) => r.name === "family")?.status.changedPackages, ["hello"]);

    const upgrades = JSON.parse((await town("app", "upgrades", "--json")).stdout) as {
      name: string;
      offerVersion: string;
      reason: string;
    }[];
    assert.deepEqual(
      upgrades.map((u) => [u.name, u.offerVersion, u.reason]),
      [["hello", "1.2", "newer-version"]],
    );

    admin = new TownClient({
      baseUrl: daemon.url,
      token: (await readFile(join(scratch, "config/town/token"), "utf8")).trim(),
    });
    await admin.dismissUpgrade("family", "hello");
    assert.equal((await admin.upgrades()).total, 0);
    assert.equal((await admin.upgrades({ all: true })).items[0]?.dismissed, true);

    // Editing the offered file re-offers the upgrade.
    await commitFiles(
      familyRepo,
      { "packages/hello/1.2.yaml": hello11.replace("1.1 adds", "1.2 fixes") },
      "hello 1.2 fix",
    );
    await admin.refreshRepository("family");
    assert.equal((await admin.upgrades()).total, 1);
  });

  it("lists invalid packages with their errors instead of hiding them", async () => {
    await commitFiles(
      familyRepo,
      { "packages/broken/1.0.yaml": "image: 'bad;image'\n" },
      "a broken package",
    );
    const repo = await admin.refreshRepository("family");
    assert.equal(repo.status.invalidFiles, 1);
    const broken = await admin.package("family", "broken");
    assert.equal(broken.latestVersion, null);
    assert.match(broken.versions[0]?.errors[0]?.message ?? "", /not a valid image reference/);
    assert.equal((await admin.catalog({ q: "hello" })).items[0]?.name, "hello");
  });

  it("shows an unreachable or protected repository as its own error, never a crash", async () => {
    const missing = await admin.addRepository({ name: "gone", url: server.url("nowhere.git") });
    assert.match(missing.status.error ?? "", /git/);
    const privateServer = await startGitServer({
      root: join(scratch, "private-git"),
      auth: { username: "family", password: REPO_PASSWORD },
    });
    try {
      const wrong = await admin.addRepository({
        name: "private",
        url: privateServer.url("private.git"),
        username: "family",
        password: "wrong-password",
      });
      assert.ok(wrong.status.error);
      await admin.removeRepository("private");
      const right = await admin.addRepository({
        name: "private",
        url: privateServer.url("private.git"),
        username: "family",
        password: REPO_PASSWORD,
      });
      assert.equal(right.status.error, null);
      assert.equal(right.hasPassword, true);
      assert.equal(right.status.packages, 3);
    } finally {
      await privateServer.close();
    }
    const list = await admin.repositories();
    assert.deepEqual(
      list.items.map((r) => r.name),
      ["family", "gone", "private"],
    );
    const moved = await admin.moveRepository("private", 0);
    assert.deepEqual(
      moved.map((r) => r.name),
      ["private", "family", "gone"],
    );
    // Same package and version in two repositories: the first listed wins "latest".
    assert.equal((await admin.catalog({ q: "keyvalue" })).total, 2);
  });

  it("fails closed for anonymous and non-admin callers", async () => {
    const anonymous = new TownClient({ baseUrl: daemon.url });
    for (const call of [
      () => anonymous.accounts(),
      () => anonymous.audit(),
      () => anonymous.catalog(),
      () => anonymous.refreshRepositories(),
    ]) {
      await assert.rejects(
        call,
        (error: ApiError) =>
          error.problem.status === 401 && error.problem.code === "unauthenticated",
      );
    }
    await admin.createAccount({ username: "bob", password: USER_PASSWORD });
    const bob = await signIn("bob", USER_PASSWORD);
    assert.equal((await bob.catalog()).total > 0, true);
    for (const call of [
      () => bob.accounts(),
      () => bob.audit(),
      () => bob.createAccount({ username: "eve", password: "password-123" }),
      () => bob.addRepository({ name: "evil", url: "https://example.org/x.git" }),
      () => bob.setSetting("dns.tld", "evil"),
      () => bob.refreshRepositories(),
    ]) {
      await assert.rejects(
        call,
        (error: ApiError) => error.problem.status === 403 && error.problem.code === "forbidden",
      );
    }
  });

  it("kills revoked and disabled sessions at once", async () => {
    const carol = await signInAfterCreate(admin, "carol");
    const mine = await carol.sessions();
    assert.equal(mine.items.length, 1);
    assert.equal(mine.items[0]?.current, true);
    await carol.revokeSession(mine.items[0].id);
    await assert.rejects(
      () => carol.me(),
      (error: ApiError) => error.problem.code === "unauthenticated",
    );

    const dave = await signInAfterCreate(admin, "dave");
    assert.equal((await dave.me()).username, "dave");
    await admin.updateAccount("dave", { disabled: true });
    await assert.rejects(
      () => dave.me(),
      (error: ApiError) => error.problem.code === "unauthenticated",
    );
    await assert.rejects(
      () => signIn("dave", USER_PASSWORD),
      (error: ApiError) => error.problem.code === "unauthenticated",
    );
    await admin.updateAccount("dave", { disabled: false });
    const daveAgain = await signIn("dave", USER_PASSWORD);
    assert.equal((await daveAgain.me()).username, "dave");
    await admin.updateAccount("dave", { password: "dave-new-password" });
    await assert.rejects(
      () => daveAgain.me(),
      (error: ApiError) => error.problem.code === "unauthenticated",
    );
    assert.equal((await (await signIn("dave", "dave-new-password")).me()).username, "dave");

    const forged = new TownClient({
      baseUrl: daemon.url,
      token: `${mine.items[0].id}.forged-signature`,
    });
    await assert.rejects(
      () => forged.me(),
      (error: ApiError) => error.problem.code === "unauthenticated",
    );
  });

  it("refuses browser requests for foreign host names (DNS rebinding)", async () => {
    const asBrowser = (host: string) => ({
      host,
      origin: `http://${host}`,
      cookie: `town_session=${admin.token ?? ""}`,
    });
    const foreign = await rawGet("/api/v1/auth/me", asBrowser("evil.example:5309"));
    assert.equal(foreign.status, 403);
    assert.equal((JSON.parse(foreign.body) as { code: string }).code, "forbidden");
    const own = await rawGet("/api/v1/auth/me", asBrowser(new URL(daemon.url).host));
    assert.equal(own.status, 200);
    assert.equal((JSON.parse(own.body) as { username: string }).username, "alice");
  });

  it("answers problems with stable codes and every invalid field", async () => {
    await assert.rejects(
      () => admin.setSetting("dns.tld", "Not A Label"),
      (error: ApiError) =>
        error.problem.code === "invalid_argument" && error.problem.issues?.[0]?.field === "dns.tld",
    );
    await assert.rejects(
      () => admin.setSetting("no.such", 1),
      (error: ApiError) => error.problem.code === "not_found",
    );
    assert.equal((await admin.setSetting("storage.default_quota", "20gb")).value, 20 * 1024 ** 3);
    await assert.rejects(
      () => admin.createAccount({ username: "x y", password: "short" }),
      (error: ApiError) => error.problem.code === "invalid_argument",
    );
    const response = await fetch(`${daemon.url}/api/v1/nothing-here`);
    assert.equal(response.status, 404);
    assert.equal(((await response.json()) as { code: string }).code, "not_found");
    const openapi = (await (await fetch(`${daemon.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    assert.ok(openapi.paths["/api/v1/catalog/{repo}/{name}/{version}"]);
    await assert.rejects(
      () => admin.apps(),
      (error: ApiError) =>
        error.problem.code === "unavailable" && /turned off/.test(error.problem.detail),
    );
  });

  it("throttles failed sign-ins per source without saying whether the user exists", async () => {
    const anonymous = new TownClient({ baseUrl: daemon.url });
    const failures: string[] = [];
    for (const username of ["alice", "nobody-here", "alice", "nobody-here", "alice"]) {
      await assert.rejects(
        () => anonymous.login({ username, password: "wrong-password" }),
        (error: ApiError) => {
          failures.push(`${error.problem.status} ${error.problem.detail}`);
          return true;
        },
      );
    }
    assert.deepEqual(new Set(failures), new Set(["401 wrong username or password"]));
    const response = await fetch(`${daemon.url}/api/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "alice", password: ADMIN_PASSWORD }),
    });
    assert.equal(response.status, 429);
    assert.match(response.headers.get("content-type") ?? "", /application\/problem\+json/);
    assert.ok(Number(response.headers.get("retry-after")) > 0);
  });

  it("records state changes in the audit log, with real outcomes and no secrets", async () => {
    const page = await admin.audit({ limit: 500 });
    const actions = new Set(page.items.map((e) => `${e.action}:${e.outcome}`));
    for (const expected of [
      "setup:success",
      "setup:already_set_up",
      "auth.login:unauthenticated",
      "auth.login:rate_limited",
      "repository.add:success",
      "account.update:success",
      "session.revoke:success",
    ]) {
      assert.ok(actions.has(expected), `audit has ${expected}: ${[...actions].join(", ")}`);
    }
    const repoAdd = page.items.find(
      (e) => e.action === "repository.add" && e.target === "private" && e.outcome === "success",
    );
    assert.deepEqual(
      (repoAdd?.detail["body"] as Record<string, unknown>)["password"],
      "[redacted]",
    );
    const searched = await admin.audit({ q: "repository.remove" });
    assert.ok(searched.items.every((e) => e.action === "repository.remove"));
  });

  it("serves Prometheus metrics to loopback, at /metrics as scrapers expect and in the API", async () => {
    const text = await (await fetch(`${daemon.url}/metrics`)).text();
    const alias = await fetch(`${daemon.url}/api/v1/metrics`);
    assert.equal(alias.status, 200);
    assert.match(await alias.text(), /^town_process_resident_memory_bytes \d+/m);
    assert.match(
      text,
      /^town_http_requests_total\{method="POST",route="\/api\/v1\/auth\/login",status="401"\} \d+$/m,
    );
    assert.match(text, /^town_process_resident_memory_bytes \d+/m);
  });

  it("never shows a secret in a response or a log line", async () => {
    const responses = JSON.stringify([
      await admin.repositories(),
      await admin.audit({ limit: 500 }),
      await admin.accounts(),
      await admin.sessions(),
    ]);
    for (const secret of [REPO_PASSWORD, ADMIN_PASSWORD, USER_PASSWORD]) {
      assert.equal(responses.includes(secret), false, "a response holds a secret");
      assert.equal(logLines.join("").includes(secret), false, "a log line holds a secret");
      assert.equal(cliOutput.join("").includes(secret), false, "the CLI printed a secret");
    }
    assert.ok(logLines.length > 10, "logs were captured");
    assert.equal(
      logLines.join("").includes(admin.token ?? "unset"),
      false,
      "a log line holds a session token",
    );
  });

  /** fetch() will not send a foreign Host header; a plain HTTP request does, as a rebound page's would. */
  function rawGet(
    path: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const request = httpRequest(`${daemon.url}${path}`, { headers }, (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk.toString()));
        response.on("end", () => {
          resolve({ status: response.statusCode ?? 0, body: text });
        });
      });
      request.on("error", reject);
      request.end();
    });
  }

  async function signIn(username: string, password: string): Promise<TownClient> {
    const client = new TownClient({ baseUrl: daemon.url });
    client.token = (await client.login({ username, password })).token;
    return client;
  }

  async function signInAfterCreate(admin: TownClient, username: string): Promise<TownClient> {
    await admin.createAccount({ username, password: USER_PASSWORD });
    return signIn(username, USER_PASSWORD);
  }
});
