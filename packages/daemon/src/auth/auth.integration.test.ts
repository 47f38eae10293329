/**
 * The front door against a LAN attacker, over HTTP on a real daemon: the
 * first-run setup code, password work that cannot be forced, and an audit
 * log that anonymous callers cannot fill.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ApiError, TownClient, type AuditEntry } from "@townos/client";
import { runTownCaptured } from "../../../cli/test/run-town.js";
import { startDaemon, type RunningDaemon } from "../daemon.js";
import { ANONYMOUS_ROWS_PER_MINUTE } from "../store/audit.js";
import { testDaemonConfig } from "../../test/daemon.js";
import { SETUP_CODE_FILE } from "./setup-code.js";

const PASSWORD = "admin-secret-7e21c9";

interface Answer {
  status: number;
  body: { code?: string };
}

/** A POST from a chosen loopback address: each test is its own attacker. */
function post(url: string, path: string, body: unknown, from: string): Promise<Answer> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      `${url}/api/v1${path}`,
      {
        method: "POST",
        localAddress: from,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
        },
      },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (text += chunk));
        response.on("end", () => {
          resolve({
            status: response.statusCode ?? 0,
            body: JSON.parse(text) as { code?: string },
          });
        });
      },
    );
    request.on("error", reject);
    request.end(payload);
  });
}

describe("setup, sign-in and the audit log against a LAN attacker", () => {
  let scratch: string;
  let daemon: RunningDaemon;
  let admin: TownClient;
  let now = Date.now();
  const config = () => testDaemonConfig(scratch, { apps: false, clock: () => now });
  const hashes = (): number => daemon.boot.services?.accounts.passwords.started ?? NaN;
  const auditFrom = async (source: string): Promise<AuditEntry[]> =>
    (await admin.audit({ limit: 500 })).items.filter((entry) => entry.source === source);

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-auth-"));
    daemon = await startDaemon(config());
    await daemon.booted;
  });

  after(async () => {
    await daemon.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it("refuses setup without the setup code or with a wrong one, before any password work", async () => {
    const code = daemon.setupCode;
    assert.ok(code);
    const file = join(scratch, "data", SETUP_CODE_FILE);
    assert.equal((await readFile(file, "utf8")).trim(), code);
    assert.equal((await stat(file)).mode & 0o777, 0o600);

    const before = hashes();
    const credentials = { username: "mallory", password: "mallory-password" };
    const without = await post(daemon.url, "/setup", credentials, "127.0.0.1");
    assert.deepEqual([without.status, without.body.code], [403, "forbidden"]);
    const wrong = await post(
      daemon.url,
      "/setup",
      { ...credentials, setupCode: "AAAA-BBBB-CCCC" },
      "127.0.0.1",
    );
    assert.deepEqual([wrong.status, wrong.body.code], [403, "forbidden"]);
    assert.equal(hashes(), before);
    assert.equal((await new TownClient({ baseUrl: daemon.url }).status()).setupNeeded, true);
  });

  it("throttles wrong setup codes like sign-ins", async () => {
    const answers = [];
    for (let i = 0; i < 6; i++) {
      answers.push(
        await post(
          daemon.url,
          "/setup",
          { username: "mallory", password: "mallory-password", setupCode: `WRONG-${i}` },
          "127.0.0.4",
        ),
      );
    }
    assert.deepEqual(
      answers.map((answer) => answer.status),
      [403, 403, 403, 403, 403, 429],
    );
  });

  it("sets up with the right code (any case, dashes or not), which then is gone", async () => {
    const code = daemon.setupCode ?? "";
    const client = new TownClient({ baseUrl: daemon.url });
    const signedIn = await client.setup({
      username: "alice",
      password: PASSWORD,
      setupCode: code.toLowerCase().replace(/-/g, ""),
    });
    admin = new TownClient({ baseUrl: daemon.url, token: signedIn.token });
    assert.equal(signedIn.account.role, "admin");
    assert.equal(daemon.setupCode, undefined);
    await assert.rejects(stat(join(scratch, "data", SETUP_CODE_FILE)), { code: "ENOENT" });
  });

  it("refuses setup once an administrator exists without hashing the password", async () => {
    const before = hashes();
    const again = await post(
      daemon.url,
      "/setup",
      { username: "mallory", password: "mallory-password", setupCode: "whatever" },
      "127.0.0.5",
    );
    assert.deepEqual([again.status, again.body.code], [409, "already_set_up"]);
    assert.equal(hashes(), before);
  });

  it("lets at most the throttle's limit of 20 parallel wrong sign-ins reach argon2", async () => {
    const before = hashes();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        post(
          daemon.url,
          "/auth/login",
          { username: "alice", password: `wrong-guess-${i}` },
          "127.0.0.2",
        ),
      ),
    );
    const statuses = answers.map((answer) => answer.status);
    assert.equal(statuses.filter((status) => status === 401).length, 5, statuses.join(" "));
    assert.equal(statuses.filter((status) => status === 429).length, 15, statuses.join(" "));
    assert.equal(hashes() - before, 5);
    // Another address is not held back by that one.
    await new TownClient({ baseUrl: daemon.url }).login({ username: "alice", password: PASSWORD });
  });

  it("keeps the row of a 200 KB anonymous username small, without the body", async () => {
    const username = "u".repeat(200 * 1024);
    const answer = await post(
      daemon.url,
      "/auth/login",
      { username, password: "whatever-password" },
      "127.0.0.6",
    );
    assert.equal(answer.status, 400);
    const rows = await auditFrom("127.0.0.6");
    assert.equal(rows.length, 1);
    const row = JSON.stringify(rows[0]);
    assert.ok(row.length < 1024, `a row of ${row.length} characters`);
    assert.ok(!row.includes("u".repeat(300)));
    assert.ok(!row.includes("whatever-password"));
    assert.deepEqual(rows[0]?.detail, { invalid: ["body.username"] });
  });

  it("records a few anonymous failures a minute per source, then one summary", async () => {
    for (let i = 0; i < 60; i++) {
      await post(daemon.url, "/auth/login", { username: `x${i}`, password: "p" }, "127.0.0.7");
    }
    assert.equal((await auditFrom("127.0.0.7")).length, ANONYMOUS_ROWS_PER_MINUTE);
    now += 61_000;
    await post(daemon.url, "/auth/login", { username: "late", password: "p" }, "127.0.0.7");
    const rows = await auditFrom("127.0.0.7");
    const summary = rows.find((row) => row.action === "audit.suppressed");
    assert.equal(summary?.detail["count"], 60 - ANONYMOUS_ROWS_PER_MINUTE);
    assert.equal(rows.length, ANONYMOUS_ROWS_PER_MINUTE + 2);
  });

  it("warns when a password is given on the command line, not when it comes from TOWN_PASSWORD", async () => {
    const env = { TOWN_SERVER: daemon.url, XDG_CONFIG_HOME: join(scratch, "config") };
    const flag = await runTownCaptured(["login", "--username", "alice", "--password", PASSWORD], {
      cwd: scratch,
      env,
    });
    assert.equal(flag.code, 0, flag.stderr);
    assert.match(flag.stderr, /visible to other users in the process list/);
    const fromEnv = await runTownCaptured(["login", "--username", "alice"], {
      cwd: scratch,
      env: { ...env, TOWN_PASSWORD: PASSWORD },
    });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.equal(fromEnv.stderr, "");
  });

  it("drops audit rows older than the retention setting at start", async () => {
    await admin.setSetting("audit.retention", "2d");
    const before = (await admin.audit({ limit: 1 })).total;
    assert.ok(before > 20);
    await daemon.stop();
    now += 3 * 24 * 3600_000;
    daemon = await startDaemon(config());
    await daemon.booted;
    const signedIn = await new TownClient({ baseUrl: daemon.url }).login({
      username: "alice",
      password: PASSWORD,
    });
    admin = new TownClient({ baseUrl: daemon.url, token: signedIn.token });
    const left = await admin.audit({ limit: 500 });
    // Only what happened since the restart: this sign-in.
    assert.deepEqual(
      left.items.map((entry) => entry.action),
      ["auth.login"],
    );
    await assert.rejects(admin.setSetting("audit.retention", "1h"), (error: unknown) => {
      return error instanceof ApiError && error.problem.code === "invalid_argument";
    });
  });
});
