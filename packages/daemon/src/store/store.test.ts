import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { Accounts } from "../auth/accounts.js";
import { Sessions, SESSION_IDLE_MS } from "../auth/sessions.js";
import { redact } from "../redact.js";
import { AuditLog } from "./audit.js";
import { openDatabase } from "./database.js";
import { Repositories } from "./repositories.js";
import { Settings, SETTINGS } from "./settings.js";

function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  return { clock: () => now, advance: (ms: number) => (now += ms) };
}

function code(error: unknown): string {
  assert.ok(error instanceof TownError);
  return error.code;
}

describe("accounts and sessions", () => {
  it("makes the first account an admin, once, and fails closed afterwards", async () => {
    const db = openDatabase(":memory:");
    const { clock, advance } = fakeClock();
    const accounts = new Accounts(db, clock);
    assert.equal(accounts.setupNeeded, true);
    const alice = await accounts.setup({ username: "alice", password: "correct horse" });
    assert.equal(alice.role, "admin");
    await assert.rejects(
      () => accounts.setup({ username: "eve", password: "12345678" }),
      (e) => code(e) === "already_set_up",
    );
    await assert.rejects(
      () => accounts.create({ username: "bob", password: "short", role: "user" }),
      (e) => code(e) === "invalid_argument",
    );
    await assert.rejects(
      () => accounts.create({ username: "ALICE", password: "12345678", role: "user" }),
      (e) => code(e) === "conflict",
    );
    assert.equal(await accounts.authenticate("alice", "wrong password"), undefined);
    assert.equal(await accounts.authenticate("nobody", "correct horse"), undefined);
    assert.equal((await accounts.authenticate("Alice", "correct horse"))?.username, "alice");

    const sessions = new Sessions(db, accounts, clock);
    const { token } = sessions.issue(alice, "127.0.0.1", "test");
    assert.equal(sessions.verify(token).account.username, "alice");
    assert.throws(
      () => sessions.verify(`${token}x`),
      (e) => code(e) === "unauthenticated",
    );
    assert.throws(
      () => sessions.verify("garbage"),
      (e) => code(e) === "unauthenticated",
    );
    advance(SESSION_IDLE_MS - 1000);
    assert.equal(sessions.verify(token).account.username, "alice");
    advance(SESSION_IDLE_MS + 1);
    assert.throws(
      () => sessions.verify(token),
      (e) => code(e) === "unauthenticated",
    );

    // A new start has a new key: old tokens die.
    const fresh = sessions.issue(alice, "127.0.0.1", "test").token;
    const restarted = new Sessions(db, accounts, clock);
    assert.throws(
      () => restarted.verify(fresh),
      (e) => code(e) === "unauthenticated",
    );
  });

  it("keeps at least one active administrator", async () => {
    const db = openDatabase(":memory:");
    const accounts = new Accounts(db, fakeClock().clock);
    await accounts.setup({ username: "alice", password: "12345678" });
    assert.throws(
      () => accounts.update("alice", { disabled: true }),
      (e) => code(e) === "conflict",
    );
    assert.throws(
      () => accounts.update("alice", { role: "user" }),
      (e) => code(e) === "conflict",
    );
    await accounts.create({ username: "bob", password: "12345678", role: "admin" });
    assert.equal(accounts.update("alice", { role: "user" }).role, "user");
  });
});

describe("settings", () => {
  it("types values, accepts units and refuses unknown keys", () => {
    const settings = new Settings(openDatabase(":memory:"));
    assert.equal(settings.get("dns.tld"), "home");
    assert.equal(settings.set("storage.default_quota", "2gb").value, 2 * 1024 ** 3);
    assert.equal(settings.set("repositories.refresh_interval", "30m").value, 1800);
    assert.equal(settings.set("repositories.refresh_interval", 0).value, 0);
    assert.throws(
      () => settings.set("dns.tld", "Home!"),
      (e) => code(e) === "invalid_argument",
    );
    assert.throws(
      () => settings.set("uploads.max_size", "1kb"),
      (e) => code(e) === "invalid_argument",
    );
    assert.throws(
      () => settings.set("nope", 1),
      (e) => code(e) === "not_found",
    );
    // Every defined setting is listed, each once.
    assert.deepEqual(
      settings
        .list()
        .map((setting) => setting.key)
        .sort(),
      Object.keys(SETTINGS).sort(),
    );
    assert.equal(
      settings.set("registries.insecure", "Registry.lan:5000, 192.168.1.2:5000 registry.lan:5000")
        .value,
      "registry.lan:5000,192.168.1.2:5000",
    );
    assert.throws(
      () => settings.set("registries.insecure", "https://registry.lan"),
      (error: TownError) => error.code === "invalid_argument",
    );
  });
});

describe("repositories", () => {
  it("keeps an ordered list and validates names and URLs", () => {
    const repos = new Repositories(openDatabase(":memory:"), fakeClock().clock);
    repos.add({ name: "a", url: "https://example.org/a.git" });
    repos.add({ name: "b", url: "https://example.org/b.git", username: "u", password: "p" });
    repos.add({ name: "c", url: "http://127.0.0.1/c.git" });
    assert.deepEqual(
      repos.move("c", 0).map((r) => r.name),
      ["c", "a", "b"],
    );
    repos.remove("a");
    assert.deepEqual(
      repos.list().map((r) => [r.name, r.position]),
      [
        ["c", 0],
        ["b", 1],
      ],
    );
    assert.throws(
      () => repos.add({ name: "b", url: "https://example.org/b.git" }),
      (e) => code(e) === "conflict",
    );
    for (const bad of [
      { name: "Bad_Name", url: "https://example.org/x.git" },
      { name: "x", url: "file:///etc" },
      { name: "x", url: "https://user:pw@example.org/x.git" },
      { name: "x", url: "not a url" },
    ]) {
      assert.throws(
        () => repos.add(bad),
        (e) => code(e) === "invalid_argument",
        JSON.stringify(bad),
      );
    }
  });
});

describe("audit", () => {
  it("redacts secrets at any depth and searches", () => {
    assert.deepEqual(
      redact({
        body: { username: "a", password: "p", nested: [{ apiToken: "t" }] },
        secretless: "",
      }),
      {
        body: { username: "a", password: "[redacted]", nested: [{ apiToken: "[redacted]" }] },
        secretless: "",
      },
    );
    const log = new AuditLog(openDatabase(":memory:"), fakeClock().clock);
    for (const action of ["setup", "auth.login", "repository.add"]) {
      log.record({
        accountId: null,
        username: "alice",
        action,
        target: "x",
        detail: { password: "p" },
        outcome: "success",
        error: null,
        source: "127.0.0.1",
      });
    }
    log.record({
      accountId: null,
      username: null,
      action: "auth.login",
      target: "bob",
      detail: {},
      outcome: "unauthenticated",
      error: "wrong username or password",
      source: "127.0.0.1",
    });
    const failures = log.search({ offset: 0, limit: 10, outcome: "failure", order: "desc" });
    assert.deepEqual(
      failures.items.map((e) => e.target),
      ["bob"],
    );
    assert.equal(
      log.search({ offset: 0, limit: 10, search: "repository", order: "desc" }).total,
      1,
    );
    assert.equal(log.search({ offset: 0, limit: 10, search: "100%", order: "desc" }).total, 0);
    assert.equal(log.search({ offset: 1, limit: 2, order: "asc" }).items[0]?.action, "auth.login");
    assert.equal(
      JSON.stringify(log.search({ offset: 0, limit: 10, order: "asc" })).includes('"p"'),
      false,
    );
  });
});
