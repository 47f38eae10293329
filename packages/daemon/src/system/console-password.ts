/**
 * Root's console password on the Town OS image: with it, whoever stands at
 * the box logs in on its own screen and keyboard when the network is broken
 * (sshd refuses passwords: SSH stays key-only). Only a yescrypt hash is kept,
 * on the data pool (`<dataDir>/os/console/root-password`), and written into
 * /etc/shadow at every boot, as the image's root starts locked (`root:*`).
 */
import { lstat, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findControlCharacter, TownError } from "@townos/format";
import { readSmallFile, writeFileAtomic } from "./small-files.js";
import { lstatOrUndefined } from "../storage/safe-fs.js";
import { requireProgram, run } from "../storage/exec.js";
import { Mutex } from "./mutex.js";

export const CONSOLE_DIR = join("os", "console");
export const ROOT_PASSWORD_FILE = "root-password";
export const MIN_CONSOLE_PASSWORD_LENGTH = 8;
export const MAX_CONSOLE_PASSWORD_LENGTH = 256;
/** What the image's /etc/shadow holds for root: no password opens it. */
export const LOCKED = "*";

/** `$y$PARAMS$SALT$HASH` in crypt's base64 alphabet; yescrypt's hash is 43 characters. */
const YESCRYPT_HASH = /^\$y\$[./0-9A-Za-z]{1,32}\$[./0-9A-Za-z]{1,86}\$[./0-9A-Za-z]{43}$/;
const CHPASSWD_TIMEOUT_MS = 30_000;

/** @throws TownError `invalid_argument` with an issue on `password` */
export function checkConsolePassword(password: string): void {
  const refuse = (message: string): never => {
    throw new TownError("invalid_argument", `console password: ${message}`, {
      issues: [{ field: "password", message }],
    });
  };
  // Characters as people count them (code points), not UTF-16 units.
  const length = Array.from(password).length;
  if (length < MIN_CONSOLE_PASSWORD_LENGTH)
    refuse(`at least ${MIN_CONSOLE_PASSWORD_LENGTH} characters`);
  if (length > MAX_CONSOLE_PASSWORD_LENGTH)
    refuse(`at most ${MAX_CONSOLE_PASSWORD_LENGTH} characters`);
  // chpasswd reads `user:password` lines: a newline would start another user's line.
  // Tab too, which findControlCharacter lets through for text fields.
  const control = password.includes("\t") ? "U+0009" : findControlCharacter(password);
  if (control) refuse(`it holds a control character (${control})`);
}

/** `hash` when it is a yescrypt hash; else TownError `io` naming `source` (it never reaches /etc/shadow). */
export function checkPasswordHash(hash: string, source: string): string {
  if (!YESCRYPT_HASH.test(hash)) throw new TownError("io", `${source} is not a yescrypt hash`);
  return hash;
}

/**
 * The yescrypt hash of `password`, made by Debian's own `chpasswd` (no crypt
 * library of our own) in a scratch root holding just the passwd and shadow
 * files it needs. It chroots there, so it needs root.
 */
export async function hashConsolePassword(password: string): Promise<string> {
  checkConsolePassword(password);
  const chpasswd = await requireProgram("chpasswd", "console password");
  const scratch = await mkdtemp(join(tmpdir(), "town-console-password-"));
  try {
    await mkdir(join(scratch, "etc"));
    await writeFile(join(scratch, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    await writeFile(join(scratch, "etc", "shadow"), `root:${LOCKED}:0:0:99999:7:::\n`, {
      mode: 0o600,
    });
    await run(chpasswd, ["-R", scratch, "-c", "YESCRYPT"], "console password: chpasswd", {
      input: `root:${password}\n`,
      timeoutMs: CHPASSWD_TIMEOUT_MS,
    });
    const shadow = await readFile(join(scratch, "etc", "shadow"), "utf8");
    return checkPasswordHash(/^root:([^:\n]*):/.exec(shadow)?.[1] ?? "", "chpasswd's output");
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * The stored hash, and root's entry in `<loginRoot>/etc/shadow`. `loginRoot`
 * undefined (a developer's host): the hash is kept, no password is changed.
 * Changes and applying run one at a time, so the file and shadow agree.
 */
export class ConsolePassword {
  private readonly dir: string;
  private readonly lock = new Mutex();

  constructor(
    dataDir: string,
    private readonly loginRoot: string | undefined,
  ) {
    this.dir = join(dataDir, CONSOLE_DIR);
  }

  get path(): string {
    return join(this.dir, ROOT_PASSWORD_FILE);
  }

  async isSet(): Promise<boolean> {
    return (await this.storedHash()) !== undefined;
  }

  /** Hashes, stores (written beside and renamed over, 0600 in a 0700 directory) and applies. */
  async set(password: string): Promise<void> {
    const hash = await hashConsolePassword(password);
    await this.lock.run(async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      if (!(await lstat(this.dir)).isDirectory()) {
        throw new TownError(
          "io",
          `${this.dir} is not a directory: the console password is not saved`,
        );
      }
      await writeFileAtomic(this.path, `${hash}\n`);
      await this.applyHash(hash);
    });
  }

  /** Forgets the password and locks root again. Idempotent. */
  async clear(): Promise<void> {
    await this.lock.run(async () => {
      await rm(this.path, { force: true });
      await this.applyHash(undefined);
    });
  }

  /**
   * Writes the stored password (or the lock) into shadow: at boot, once the
   * data pool is there. @throws TownError `io` when the stored file is not a
   * hash (a link, too big, tampered with): then nothing is applied.
   */
  async apply(): Promise<void> {
    await this.lock.run(async () => {
      await this.applyHash(await this.storedHash());
    });
  }

  /** The pool's file is untrusted: read bounded, never through a link, and checked. */
  private async storedHash(): Promise<string | undefined> {
    const text = await readSmallFile(this.path, 256);
    if (text === undefined) {
      if ((await lstatOrUndefined(this.path)) === undefined) return undefined;
      throw new TownError("io", `${this.path} is a link, not a file or too big: refused`);
    }
    return checkPasswordHash(text.replace(/\n$/, ""), this.path);
  }

  private async applyHash(hash: string | undefined): Promise<void> {
    if (this.loginRoot === undefined) return;
    const chpasswd = await requireProgram("chpasswd", "console login");
    const shadow = join(this.loginRoot, "etc", "shadow");
    // -e: the password is already hashed (or the lock); -R chroots, needless for the box's own root.
    await run(
      chpasswd,
      ["-e", ...(this.loginRoot === "/" ? [] : ["-R", this.loginRoot])],
      `console login: root's password in ${shadow}`,
      { input: `root:${hash ?? LOCKED}\n`, timeoutMs: CHPASSWD_TIMEOUT_MS },
    );
  }
}
