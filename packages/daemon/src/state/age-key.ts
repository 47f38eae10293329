/**
 * The box's age key: an answer in the state repository may be encrypted to
 * its public key (`town state key`, `town state encrypt`), so that a secret
 * can live in git without anyone who reads the repository reading it. The
 * identity is made once and kept in `<dataDir>/state/age-identity` (0600,
 * in a 0700 directory, never through a link); it never leaves the box.
 *
 * A sync decrypts the answers before planning (`decryptAnswers`); an answer
 * that does not decrypt is a problem of its file, and refuses the commit.
 * Plaintexts are never logged, recorded or named in a problem.
 */
import { constants } from "node:fs";
import { chmod, lstat, mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import type { StateProblem } from "@townos/api";
import { TownError } from "@townos/format";
import {
  armor,
  Decrypter,
  Encrypter,
  generateX25519Identity,
  identityToRecipient,
} from "age-encryption";
import { writeFileAtomic } from "../system/small-files.js";
import { errnoCode } from "../storage/safe-fs.js";
import { NO_FOLLOW } from "../system/proc.js";
import { appPath } from "./plan.js";
import type { DesiredApp, DesiredState } from "./types.js";

/** The identity's file in the state directory. */
export const IDENTITY_FILE = "age-identity";

/** A decrypted answer's limit, the same as a plain answer's. */
const MAX_ANSWER_BYTES = 65536;
/** An identity file is one key and two comment lines: anything bigger is not one. */
const MAX_IDENTITY_FILE_BYTES = 4096;

export interface BoxIdentity {
  /** `AGE-SECRET-KEY-1…`: decrypts; never shown. */
  readonly identity: string;
  /** `age1…`: what answers are encrypted to. */
  readonly publicKey: string;
}

/**
 * The box's identity from `dir/age-identity`, made (with `dir`) when there is
 * none. An X25519 key: the age tools everyone has can encrypt to it.
 * @throws TownError `io` when `dir` or the file is a link, or the file holds no identity
 */
export async function loadOrCreateIdentity(dir: string): Promise<BoxIdentity> {
  await privateDirectory(dir);
  const path = join(dir, IDENTITY_FILE);
  const existing = await readIdentityFile(path);
  if (existing !== undefined) {
    try {
      return { identity: existing, publicKey: await identityToRecipient(existing) };
    } catch {
      throw new TownError("io", `${path} does not hold an age identity`);
    }
  }
  const identity = await generateX25519Identity();
  const publicKey = await identityToRecipient(identity);
  // The comment is what age-keygen writes: `age -d -i` reads the file as it is.
  await writeFileAtomic(path, `# public key: ${publicKey}\n${identity}\n`);
  return { identity, publicKey };
}

/** Makes `dir` (0700) or checks the one there is a directory and not a link, and makes it 0700. */
async function privateDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const stats = await lstat(dir);
  if (!stats.isDirectory()) throw new TownError("io", `${dir} is a link or not a directory`);
  if ((stats.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
}

/** The identity in the file at `path`; undefined when there is no file. */
async function readIdentityFile(path: string): Promise<string | undefined> {
  let text: string;
  try {
    const file = await open(path, constants.O_RDONLY | NO_FOLLOW);
    try {
      const stats = await file.stat();
      if (!stats.isFile() || stats.size > MAX_IDENTITY_FILE_BYTES) {
        throw new TownError("io", `${path} is not an age identity file`);
      }
      text = await file.readFile("utf8");
    } finally {
      await file.close();
    }
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return undefined;
    if (errnoCode(error) === "ELOOP") throw new TownError("io", `${path} is a link: refused`);
    throw error;
  }
  const keys = text.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#"));
  const [key] = keys;
  if (keys.length !== 1 || key === undefined) {
    throw new TownError("io", `${path} does not hold one age identity`);
  }
  return key.trim();
}

/**
 * `plaintext` encrypted to `recipient` (`age1…`), armored: what an `{age: …}`
 * answer holds. @throws TownError `invalid_argument` for a recipient that is not one
 */
export async function encryptAnswer(plaintext: string, recipient: string): Promise<string> {
  const encrypter = new Encrypter();
  try {
    encrypter.addRecipient(recipient);
  } catch {
    throw new TownError("invalid_argument", `${recipient} is not an age public key (age1…)`);
  }
  return armor.encode(await encrypter.encrypt(plaintext));
}

/**
 * The checkout with every `{age}` answer of its apps replaced by its
 * plaintext; problems (naming the file and the question, never the
 * plaintext) for answers that do not decrypt with the identity. That is
 * asked for only when there is an answer to decrypt.
 */
export async function decryptAnswers(
  desired: DesiredState,
  identity: () => Promise<string>,
): Promise<{ desired: DesiredState; problems: StateProblem[] }> {
  let decrypter: Decrypter | undefined;
  const problems: StateProblem[] = [];
  const apps = new Map<string, DesiredApp>();
  for (const [key, app] of desired.apps) {
    if (!app.answers) {
      apps.set(key, app);
      continue;
    }
    const answers: NonNullable<DesiredApp["answers"]> = {};
    for (const [question, answer] of Object.entries(app.answers)) {
      if (typeof answer === "string" || !("age" in answer)) {
        answers[question] = answer;
        continue;
      }
      if (!decrypter) {
        decrypter = new Decrypter();
        decrypter.addIdentity(await identity());
      }
      const decrypted = await decrypt(decrypter, answer.age);
      if (typeof decrypted === "string") answers[question] = decrypted;
      else problems.push({ path: appPath(app), message: `answer ${question}: ${decrypted.why}` });
    }
    apps.set(key, { ...app, answers });
  }
  return { desired: { ...desired, apps }, problems };
}

/** The plaintext of an armored age file, or why there is none. */
async function decrypt(decrypter: Decrypter, armored: string): Promise<string | { why: string }> {
  let file: Uint8Array;
  try {
    file = armor.decode(armored);
  } catch {
    return { why: "is not an armored age file (-----BEGIN AGE ENCRYPTED FILE-----)" };
  }
  let bytes: Uint8Array;
  try {
    bytes = await decrypter.decrypt(file);
  } catch (error) {
    // The library's one way of saying the file is for another key (the tests pin it).
    const elsewhere = error instanceof Error && /no identity matched/.test(error.message);
    return {
      why: elsewhere
        ? "is encrypted to another key than the box's: encrypt it to the key `town state key` shows"
        : "is not a valid age file",
    };
  }
  if (bytes.length > MAX_ANSWER_BYTES) return { why: "decrypts to more than 64 KiB" };
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { why: "does not decrypt to UTF-8 text" };
  }
}
