/**
 * Root's console password with Debian's real chpasswd on a scratch root's
 * /etc/shadow: what is stored on the pool, what lands in shadow (checked
 * with the system's crypt), tampered pool files, and the daemon's API, boot
 * and `town console-password` around it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ApiError, TownClient } from "@townos/client";
import { TownError } from "@townos/format";
import { runTownCaptured } from "../../../cli/test/run-town.js";
import { startDaemon, type RunningDaemon } from "../daemon.js";
import { setupAdmin, signedInAccount, testDaemonConfig } from "../../test/daemon.js";
import { findProgram } from "../storage/exec.js";
import { CONSOLE_DIR, ConsolePassword, ROOT_PASSWORD_FILE } from "./console-password.js";

const run = promisify(execFile);
const chpasswd = await findProgram("chpasswd");
const perl = await findProgram("perl");
const missing = !chpasswd
  ? "chpasswd is not installed (apt: passwd)"
  : !perl
    ? "perl is not installed (it checks the hash with the system's crypt)"
    : process.getuid?.() !== 0
      ? "chpasswd -R needs root"
      : false;
if (missing) console.log(`# skipping the console password tests: ${missing}`);

const PASSWD = "root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/sh\n";
const LOCKED_ROOT = "root:*:19000:0:99999:7:::";
const BOB =
  "bob:$y$j9T$abcdefghijklmnop$ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq:19000:0:99999:7:::";

/** A root directory with the image's passwd and shadow: root locked, another user beside. */
async function makeLoginRoot(dir: string): Promise<string> {
  await mkdir(join(dir, "etc"), { recursive: true });
  await writeFile(join(dir, "etc", "passwd"), PASSWD);
  await writeFile(join(dir, "etc", "shadow"), `${LOCKED_ROOT}\n${BOB}\n`, { mode: 0o600 });
  return dir;
}

async function shadowLines(root: string): Promise<string[]> {
  return (await readFile(join(root, "etc", "shadow"), "utf8")).split("\n").filter(Boolean);
}

/** Whether `password` opens `hash`, by the system's own crypt(3). */
async function verifies(password: string, hash: string): Promise<boolean> {
  const script = 'print crypt($ARGV[0], $ARGV[1]) eq $ARGV[1] ? "ok" : "no"';
  return (await run(perl ?? "perl", ["-e", script, password, hash])).stdout === "ok";
}

describe("root's console password in /etc/shadow", { skip: missing, timeout: 60_000 }, () => {
  let scratch: string;
  let root: string;
  let store: ConsolePassword;

  beforeEach(async () => {
    await rm(scratch, { recursive: true, force: true });
    root = await makeLoginRoot(join(scratch, "root"));
    store = new ConsolePassword(join(scratch, "data"), root);
  });
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-console-password-"));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it("stores a yescrypt hash only, puts it in root's line and touches nothing else", async () => {
    const password = "a:b c\u00e9-rescue";
    assert.equal(await store.isSet(), false);
    await store.set(password);
    assert.equal(await store.isSet(), true);
    const stored = await readFile(store.path, "utf8");
    assert.match(stored, /^\$y\$[^:\n]+\n$/);
    assert.ok(!stored.includes(password));
    const [rootLine, bobLine, ...rest] = await shadowLines(root);
    const fields = rootLine?.split(":") ?? [];
    assert.equal(fields[1], stored.trim());
    assert.equal(fields.length, 9);
    assert.ok(await verifies(password, stored.trim()));
    assert.equal(await verifies("a:b c\u00e9-rescuE", stored.trim()), false);
    assert.equal(bobLine, BOB);
    assert.deepEqual(rest, []);
  });

  it("keeps the file private: 0600 in a 0700 directory", async () => {
    await store.set("private-rescue");
    assert.equal((await stat(store.path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(scratch, "data", CONSOLE_DIR))).mode & 0o777, 0o700);
  });

  it("locks root again when cleared, and clearing twice is fine", async () => {
    await store.set("temporary-rescue");
    await store.clear();
    await store.clear();
    assert.equal(await store.isSet(), false);
    assert.deepEqual(
      (await shadowLines(root)).map((line) => line.split(":")[1]),
      ["*", BOB.split(":")[1]],
    );
  });

  it("applies the stored hash again (the image's boot) and locks root when there is none", async () => {
    await store.set("boot-time-rescue");
    const stored = (await readFile(store.path, "utf8")).trim();
    await makeLoginRoot(root);
    await store.apply();
    assert.equal((await shadowLines(root))[0]?.split(":")[1], stored);
    await rm(store.path);
    await store.apply();
    assert.equal((await shadowLines(root))[0]?.split(":")[1], "*");
  });

  it("refuses a tampered file on the pool and applies nothing", async () => {
    await store.set("tampered-rescue");
    const stored = (await readFile(store.path, "utf8")).trim();
    const tampered = [
      `${stored}:0:0:99999:7:::\nroot2::0:0:99999:7:::\n`,
      `${stored}\nroot2::0:0:99999:7:::\n`,
      "\n",
      `${stored}${"x".repeat(300)}\n`,
    ];
    for (const text of tampered) {
      await makeLoginRoot(root);
      await writeFile(store.path, text);
      await assert.rejects(
        store.apply(),
        (error) => error instanceof TownError && error.code === "io",
        JSON.stringify(text),
      );
      assert.deepEqual(await shadowLines(root), [LOCKED_ROOT, BOB]);
    }
    const elsewhere = join(scratch, "elsewhere");
    await writeFile(elsewhere, `${stored}\n`);
    await rm(store.path);
    await symlink(elsewhere, store.path);
    await assert.rejects(store.apply(), /is a link, not a file or too big: refused/);
    await assert.rejects(store.isSet(), /refused/);
    assert.deepEqual(await shadowLines(root), [LOCKED_ROOT, BOB]);
    // Setting a password anew replaces the link itself, not its target.
    await store.set("after-the-link");
    assert.equal(await readFile(elsewhere, "utf8"), `${stored}\n`);
  });

  it("refuses a bad password before any file is touched", async () => {
    await assert.rejects(
      store.set("password\nroot2:x"),
      (error) => error instanceof TownError && error.code === "invalid_argument",
    );
    assert.equal(await store.isSet(), false);
    assert.deepEqual(await shadowLines(root), [LOCKED_ROOT, BOB]);
  });
});

describe("the console password through a real daemon", { skip: missing, timeout: 60_000 }, () => {
  let scratch: string;
  let root: string;
  let daemon: RunningDaemon;
  let admin: TownClient;
  let env: NodeJS.ProcessEnv;
  const start = async () => {
    const release = join(scratch, "town-os-release");
    await writeFile(release, "TOWN_OS_VERSION=test\n");
    daemon = await startDaemon(
      testDaemonConfig(scratch, {
        apps: false,
        network: false,
        monitoring: false,
        osFiles: { release, data: join(scratch, "no-data-file") },
        consoleLoginRoot: root,
      }),
    );
    await daemon.booted;
  };

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-console-daemon-"));
    root = await makeLoginRoot(join(scratch, "root"));
    await start();
    admin = await setupAdmin(daemon);
    env = { TOWN_SERVER: daemon.url, TOWN_TOKEN: admin.token };
  });
  after(async () => {
    await daemon.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  const town = (...argv: string[]) => runTownCaptured(argv, { cwd: scratch, env });

  it("sets, shows and clears it; the audit log never holds the password", async () => {
    assert.deepEqual(await admin.consolePassword(), { set: false, served: true });
    assert.match((await town("console-password")).stdout, /No console password/);
    const password = "correct horse battery";
    assert.deepEqual(await admin.setConsolePassword(password), { set: true, served: true });
    const hash = (await shadowLines(root))[0]?.split(":")[1] ?? "";
    assert.ok(await verifies(password, hash));
    assert.match((await town("console-password")).stdout, /Alt\+F2/);

    const refused = await admin
      .setConsolePassword("password\nroot2:x")
      .catch((error: unknown) => error);
    assert.ok(refused instanceof ApiError);
    assert.equal(refused.problem.code, "invalid_argument");
    assert.equal(refused.problem.issues?.[0]?.field, "password");

    const cleared = await town("console-password", "clear");
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.match(cleared.stdout, /No console password/);
    assert.equal((await shadowLines(root))[0]?.split(":")[1], "*");

    const entries = (await admin.audit({ limit: 50 })).items.filter(
      (entry) => entry.action === "system.console-password",
    );
    assert.deepEqual(entries.map((entry) => entry.outcome).sort(), [
      "invalid_argument",
      "success",
      "success",
    ]);
    const recorded = JSON.stringify(entries);
    assert.ok(!recorded.includes(password) && !recorded.includes("root2"), recorded);
  });

  it("reads the password from stdin in `town console-password set`", async () => {
    const main = fileURLToPath(new URL("../../../cli/src/main.ts", import.meta.url));
    const child = execFile(
      process.execPath,
      ["--conditions=source", "--import", "tsx", main, "console-password", "set"],
      { env: { ...process.env, ...env } },
    );
    child.stdin?.end("from stdin, typed once\n");
    const output = await new Promise<string>((resolve, reject) => {
      let stdout = "";
      child.stdout?.on("data", (chunk: string) => (stdout += chunk));
      child.on("error", reject);
      child.on("exit", (code) => {
        if (code === 0) resolve(stdout);
        else reject(new Error(`town exited with ${code}`));
      });
    });
    assert.match(output, /Root has a console password/);
    const hash = (await shadowLines(root))[0]?.split(":")[1] ?? "";
    assert.ok(await verifies("from stdin, typed once", hash));
  });

  it("is for administrators only", async () => {
    const user = await signedInAccount(daemon, admin, "bob", "bob-password-7d2e");
    for (const call of [
      () => user.consolePassword(),
      () => user.setConsolePassword("bob-wants-root"),
      () => user.clearConsolePassword(),
    ]) {
      await assert.rejects(
        call(),
        (error) => error instanceof ApiError && error.problem.code === "forbidden",
      );
    }
  });

  it("applies the stored password when it boots (the image's shadow starts locked)", async () => {
    await admin.setConsolePassword("survives-a-reboot");
    const stored = (
      await readFile(join(scratch, "data", CONSOLE_DIR, ROOT_PASSWORD_FILE), "utf8")
    ).trim();
    await daemon.stop();
    await makeLoginRoot(root);
    await start();
    assert.equal((await shadowLines(root))[0]?.split(":")[1], stored);
  });
});
