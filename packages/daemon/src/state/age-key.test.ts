/**
 * The box's age key: the identity file (made private, kept, never read or
 * written through a link) and the answers encrypted to it (decrypted, or
 * problems naming the file and the question, never the plaintext).
 */
import assert from "node:assert/strict";
import { lstat, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Decrypter, armor, generateX25519Identity } from "age-encryption";
import { expectTownError } from "../../../format/test/support.js";
import { emptyBox, noLookups } from "../../test/state.js";
import { decryptAnswers, encryptAnswer, IDENTITY_FILE, loadOrCreateIdentity } from "./age-key.js";
import { parseCheckout } from "./layout.js";
import { planChanges } from "./plan.js";
import type { DesiredApp, DesiredState } from "./types.js";

type Answers = NonNullable<DesiredApp["answers"]>;

/**
 * A checkout whose one app, main/wiki, has these answers. Not read from
 * YAML: the file's schema would refuse an answer too large before it could
 * be decrypted.
 */
function checkout(answers: Answers): DesiredState {
  const { desired } = parseCheckout([]);
  desired.apps.set("main/wiki", { repo: "main", name: "wiki", answers });
  return desired;
}

describe("the box's identity file", () => {
  let scratch: string;
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-age-key-"));
  });
  after(() => rm(scratch, { recursive: true, force: true }));

  it("is made private once and read back the next time", async () => {
    const dir = join(scratch, "made", "state");
    const made = await loadOrCreateIdentity(dir);
    assert.match(made.publicKey, /^age1[0-9a-z]+$/);
    assert.equal((await lstat(dir)).mode & 0o777, 0o700);
    const file = join(dir, IDENTITY_FILE);
    assert.equal((await lstat(file)).mode & 0o777, 0o600);
    assert.match(await readFile(file, "utf8"), /^# public key: age1/);
    assert.deepEqual(await loadOrCreateIdentity(dir), made);
    // What is encrypted to the public key decrypts with the identity kept.
    const decrypter = new Decrypter();
    decrypter.addIdentity(made.identity);
    const armored = await encryptAnswer("hunter2", made.publicKey);
    assert.equal(await decrypter.decrypt(armor.decode(armored), "text"), "hunter2");
  });

  it("is never read through a link", async () => {
    const dir = join(scratch, "linked");
    const elsewhere = join(scratch, "elsewhere");
    await writeFile(elsewhere, `${await generateX25519Identity()}\n`);
    await loadOrCreateIdentity(dir);
    await rm(join(dir, IDENTITY_FILE));
    await symlink(elsewhere, join(dir, IDENTITY_FILE));
    await expectTownError(loadOrCreateIdentity(dir), "io", /is a link: refused/);
  });

  it("is never kept in a linked directory", async () => {
    const target = join(scratch, "target");
    await loadOrCreateIdentity(target);
    const dir = join(scratch, "link-to-target");
    await symlink(target, dir);
    await expectTownError(loadOrCreateIdentity(dir), "io", /is a link or not a directory/);
  });

  it("refuses a file that holds no identity", async () => {
    const dir = join(scratch, "garbled");
    await loadOrCreateIdentity(dir);
    await writeFile(join(dir, IDENTITY_FILE), "# public key: age1x\nnot a key\n");
    await expectTownError(loadOrCreateIdentity(dir), "io", /does not hold an age identity/);
  });

  it("encrypts only to an age public key", async () => {
    await expectTownError(encryptAnswer("x", "ssh-rsa AAAA"), "invalid_argument", /not an age/);
  });
});

describe("encrypted answers", () => {
  let identity: string;
  let publicKey: string;
  before(async () => {
    ({ identity, publicKey } = await loadOrCreateIdentity(
      await mkdtemp(join(tmpdir(), "town-age-answers-")),
    ));
  });
  const key = () => Promise.resolve(identity);

  it("are replaced by their plaintext; other answers stay as they are", async () => {
    const desired = checkout({
      password: { age: await encryptAnswer("hunter2\nsecond line", publicKey) },
      title: "Wiki",
      token: { secretRef: "wiki-token" },
    });
    const { desired: decrypted, problems } = await decryptAnswers(desired, key);
    assert.deepEqual(problems, []);
    assert.deepEqual(decrypted.apps.get("main/wiki")?.answers, {
      password: "hunter2\nsecond line",
      title: "Wiki",
      token: { secretRef: "wiki-token" },
    });
    // The checkout read is left as it was.
    assert.ok(typeof desired.apps.get("main/wiki")?.answers?.password === "object");
  });

  it("ask for the identity only when there is one to decrypt", async () => {
    const desired = checkout({ title: "Wiki" });
    const { problems } = await decryptAnswers(desired, () =>
      Promise.reject(new Error("not needed")),
    );
    assert.deepEqual(problems, []);
  });

  it("encrypted to another key, malformed or too large are problems of the file, without plaintext", async () => {
    const other = await loadOrCreateIdentity(await mkdtemp(join(tmpdir(), "town-age-other-")));
    const desired = checkout({
      elsewhere: { age: await encryptAnswer("not-for-this-box", other.publicKey) },
      garbled: {
        age: "-----BEGIN AGE ENCRYPTED FILE-----\nAAAA\n-----END AGE ENCRYPTED FILE-----\n",
      },
      huge: { age: await encryptAnswer("x".repeat(65537), publicKey) },
      plain: { age: "hunter2" },
      title: "Wiki",
    });
    const { desired: decrypted, problems } = await decryptAnswers(desired, key);
    assert.deepEqual(problems, [
      {
        path: "apps/main/wiki.yaml",
        message:
          "answer elsewhere: is encrypted to another key than the box's: encrypt it to the key `town state key` shows",
      },
      { path: "apps/main/wiki.yaml", message: "answer garbled: is not a valid age file" },
      { path: "apps/main/wiki.yaml", message: "answer huge: decrypts to more than 64 KiB" },
      {
        path: "apps/main/wiki.yaml",
        message: "answer plain: is not an armored age file (-----BEGIN AGE ENCRYPTED FILE-----)",
      },
    ]);
    assert.deepEqual(decrypted.apps.get("main/wiki")?.answers, { title: "Wiki" });
    assert.doesNotMatch(JSON.stringify(problems), /not-for-this-box|hunter2|xxxx/);
  });

  it("still encrypted when planned are a problem, never an answer", async () => {
    const desired = checkout({ password: { age: await encryptAnswer("hunter2", publicKey) } });
    const plan = planChanges(desired, emptyBox(), noLookups);
    assert.deepEqual(plan.problems, [
      { path: "apps/main/wiki.yaml", message: "answer password: was not decrypted" },
    ]);
    assert.deepEqual(plan.steps, [
      { kind: "app.install", repo: "main", name: "wiki", version: undefined, answers: {} },
    ]);
  });
});
