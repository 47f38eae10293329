import assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TownError } from "@townos/format";
import { parseSshKey, parseSshKeys, SSH_DIR, SshKeys } from "./ssh-keys.js";

// Made with ssh-keygen; the fingerprints are what `ssh-keygen -l` printed for them.
const ED25519 =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBzoKgnJgqbt9H6G2pZUa3vM3/jDippBAPlEL68knkOG ada@laptop";
const ED25519_FINGERPRINT = "SHA256:bzNJigRUn1+I2fYKdBiUb29MUuNIYqVg1R0bCN8UXZs";
const RSA =
  "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCkDYGQ8e+YHeWZbVu56kiynFUqOBlMCP9xv2/jJtwU07gpCbByyDZbqxug7SH24zJ+qQVkau4ERc8CsCTXHOTFRgQKCPeN8JhcUdvnqasg+hFvQBV9niMKK8nYMlB6EEi9YX9Lrd9gl9K3y010Pa3mgun9BRH5gy/XZncaK3gDEfLvWbnZWmI34G2ugXAcYIh2BJ/UAnUpJFrh5p97QyQtc6gdHJJjY9nyhfj9i/rc04ROjktpSi7ZDZg3iUPr9guzPYnHmiap+FqV24TBASVm/hapUYErcluY/x6V8PjfZzwmYmaC3OG0A7F+N/1oRZoROKc1IiwC50RrB9bB71f3";
const RSA_FINGERPRINT = "SHA256:84x6uO0Z98CxK39/zpG8LO0uIQyHxBgZujNvfvoqOE0";

const refused = (text: string, message: RegExp) => {
  assert.throws(
    () => parseSshKey(text),
    (error) =>
      error instanceof TownError &&
      error.code === "invalid_argument" &&
      message.test(error.message),
  );
};

describe("SSH public keys", () => {
  it("reads a key's type, comment and fingerprint as ssh-keygen shows them", () => {
    assert.deepEqual(parseSshKey(`  ${ED25519}\n`), {
      type: "ssh-ed25519",
      fingerprint: ED25519_FINGERPRINT,
      comment: "ada@laptop",
      line: ED25519,
    });
    const rsa = parseSshKey(RSA);
    assert.equal(rsa.fingerprint, RSA_FINGERPRINT);
    assert.equal(rsa.comment, "");
    assert.equal(rsa.line, RSA);
  });

  it("refuses what is not one public key of the type it names", () => {
    refused(`command="rm -rf /" ${ED25519}`, /must start with its type/);
    refused(ED25519.replace("ssh-ed25519", "ssh-dss"), /must start with its type/);
    refused(ED25519.replace("ssh-ed25519", "ssh-rsa"), /not a ssh-rsa key/);
    refused("ssh-ed25519 not*base64", /not base64/);
    refused("ssh-ed25519", /not base64/);
    refused("ssh-ed25519 AAAA", /not a ssh-ed25519 key/);
    // A second line smuggled into the comment would be a second key to sshd.
    refused(`${ED25519}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI evil`, /control character/);
    refused(`${ED25519} \u001b[2J`, /control character/);
    refused(`${ED25519} ${"x".repeat(9000)}`, /longer than/);
    // A private key pasted by mistake.
    refused("-----BEGIN OPENSSH PRIVATE KEY-----", /must start with its type/);
  });

  it("drops the same key given twice and reports every bad line", () => {
    assert.deepEqual(
      parseSshKeys([ED25519, RSA, `${ED25519.split(" ").slice(0, 2).join(" ")} other`]).map(
        (key) => key.fingerprint,
      ),
      [ED25519_FINGERPRINT, RSA_FINGERPRINT],
    );
    assert.throws(
      () => parseSshKeys([ED25519, "nonsense", "ssh-rsa AAAA"]),
      (error) =>
        error instanceof TownError &&
        error.issues.map((issue) => issue.field).join() === "keys.1,keys.2",
    );
    assert.throws(() => parseSshKeys(Array.from({ length: 101 }, () => ED25519)), /at most 100/);
  });
});

describe("the authorized_keys file", () => {
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "town-ssh-keys-"));
  });
  after(() => rm(dataDir, { recursive: true, force: true }));

  it("is absent until keys are given, then holds them, owner-only", async () => {
    const keys = new SshKeys(join(dataDir, "fresh"));
    assert.deepEqual(await keys.list(), []);
    await keys.replace([RSA, ED25519]);
    assert.equal(await readFile(keys.path, "utf8"), `${RSA}\n${ED25519}\n`);
    assert.equal((await lstat(keys.path)).mode & 0o777, 0o600);
    assert.equal((await lstat(join(dataDir, "fresh", SSH_DIR))).mode & 0o777, 0o700);
    assert.deepEqual(
      (await keys.list()).map((key) => key.comment),
      ["", "ada@laptop"],
    );
    await keys.replace([]);
    assert.equal(await readFile(keys.path, "utf8"), "");
  });

  it("never writes through a link where the file or its directory should be", async () => {
    const linkedFile = join(dataDir, "linked-file");
    await mkdir(join(linkedFile, SSH_DIR), { recursive: true });
    const elsewhere = join(dataDir, "elsewhere");
    await writeFile(elsewhere, "untouched");
    const keys = new SshKeys(linkedFile);
    await symlink(elsewhere, `${keys.path}.new`);
    await symlink(elsewhere, keys.path);
    await keys.replace([ED25519]);
    assert.equal(await readFile(elsewhere, "utf8"), "untouched");
    assert.equal((await lstat(keys.path)).isFile(), true);

    const linkedDir = join(dataDir, "linked-dir");
    await mkdir(join(linkedDir, "os"), { recursive: true });
    await mkdir(join(dataDir, "outside"));
    await symlink(join(dataDir, "outside"), join(linkedDir, SSH_DIR));
    await assert.rejects(new SshKeys(linkedDir).replace([ED25519]), /not a directory/);
  });
});
