/**
 * Root's SSH keys through a real daemon: the `town ssh-key` commands, the
 * file the image's sshd reads, and who may change it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ApiError, TownClient } from "@townos/client";
import { runTownCaptured } from "../../../cli/test/run-town.js";
import { startDaemon, type RunningDaemon } from "../daemon.js";
import { setupAdmin, signedInAccount, testDaemonConfig } from "../../test/daemon.js";
import { findProgram } from "../storage/exec.js";
import { AUTHORIZED_KEYS_FILE, SSH_DIR } from "./ssh-keys.js";

const run = promisify(execFile);
const sshKeygen = await findProgram("ssh-keygen");

describe("root's SSH keys", { timeout: 60_000 }, () => {
  let scratch: string;
  let daemon: RunningDaemon;
  let env: NodeJS.ProcessEnv;
  let keyFile: string;
  let fingerprint: string;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-ssh-keys-"));
    const release = join(scratch, "town-os-release");
    await writeFile(release, "TOWN_OS_VERSION=test\n");
    daemon = await startDaemon(
      testDaemonConfig(scratch, { osFiles: { release, data: join(scratch, "no-data-file") } }),
    );
    await daemon.booted;
    const admin = await setupAdmin(daemon);
    env = { TOWN_SERVER: daemon.url, TOWN_TOKEN: admin.token };
    keyFile = join(scratch, "id_ed25519");
    if (sshKeygen) {
      await run(sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-C", "owner@laptop", "-f", keyFile]);
      fingerprint =
        (await run(sshKeygen, ["-l", "-f", `${keyFile}.pub`])).stdout.split(" ")[1] ?? "";
    }
  });
  after(async () => {
    await daemon.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  const town = (...argv: string[]) => runTownCaptured(argv, { cwd: scratch, env });

  it(
    "adds a key file, lists it as ssh-keygen names it, and removes it",
    { skip: sshKeygen ? false : "ssh-keygen is not installed (apt: openssh-client)" },
    async () => {
      assert.match((await town("ssh-key", "ls")).stdout, /No SSH keys/);
      const added = await town("ssh-key", "add", "--file", "id_ed25519.pub");
      assert.equal(added.code, 0, added.stderr);
      assert.match(
        added.stdout,
        new RegExp(`${fingerprint.replace(/[+/]/g, "\\$&")} +ssh-ed25519 +owner@laptop`),
      );
      // The image runs sshd: no note that the keys go unused.
      assert.doesNotMatch(added.stdout, /unused/);
      const file = join(scratch, "data", SSH_DIR, AUTHORIZED_KEYS_FILE);
      assert.equal(await readFile(file, "utf8"), await readFile(`${keyFile}.pub`, "utf8"));

      const removed = await town("ssh-key", "rm", "owner@laptop");
      assert.equal(removed.code, 0, removed.stderr);
      assert.equal(await readFile(file, "utf8"), "");
      assert.equal((await town("ssh-key", "rm", "owner@laptop")).code, 2);
    },
  );

  it("refuses a private key or a second line, saying which key", async () => {
    const answer = await town("ssh-key", "add", "--", "-----BEGIN OPENSSH PRIVATE KEY-----");
    assert.equal(answer.code, 1);
    assert.match(answer.stderr, /keys\.0: not an SSH public key: it must start with its type/);
    const smuggled = await town(
      "ssh-key",
      "add",
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBzoKgnJgqbt9H6G2pZUa3vM3/jDippBAPlEL68knkOG a\nssh-rsa AAAA b",
    );
    assert.equal(smuggled.code, 1);
    assert.match(smuggled.stderr, /control character \(U\+000A\)/);
  });

  it("is for administrators only", async () => {
    const admin = new TownClient({ baseUrl: daemon.url, token: env["TOWN_TOKEN"] });
    const user = await signedInAccount(daemon, admin, "bob", "bob-password-7d2e");
    await assert.rejects(
      user.sshKeys(),
      (error) => error instanceof ApiError && error.problem.code === "forbidden",
    );
    await assert.rejects(
      user.setSshKeys([]),
      (error) => error instanceof ApiError && error.problem.code === "forbidden",
    );
  });
});
