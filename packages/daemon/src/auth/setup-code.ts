import { constants } from "node:fs";
import { open, rm } from "node:fs/promises";
import { createHash, randomInt, timingSafeEqual } from "node:crypto";
import { TownError } from "@townos/format";

/** The file in the data directory that holds the code; `town setup` on the box reads it. */
export const SETUP_CODE_FILE = "setup-code";

/** Letters and digits nobody mixes up when reading them off a screen. */
const ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/**
 * A one-time code that the first-run setup needs, so that only somebody who
 * can see the box's console, log or data directory — not anybody on the LAN
 * who finds a fresh box first — creates its administrator. Made at each
 * start while no account exists, shown in the log and written to a root-only
 * file; gone once the administrator exists.
 */
export class SetupCode {
  private code: string | undefined;

  constructor(private readonly path: string) {}

  /** The code while setup is possible, else undefined. */
  get current(): string | undefined {
    return this.code;
  }

  /** Makes a new code and writes it (mode 0600, never through a link) when `needed`; else removes any old one. */
  async prepare(needed: boolean): Promise<string | undefined> {
    if (!needed) {
      await this.clear();
      return undefined;
    }
    const code = Array.from({ length: 12 }, () => ALPHABET[randomInt(ALPHABET.length)])
      .join("")
      .replace(/(.{4})(?!$)/g, "$1-");
    await rm(this.path, { force: true });
    const file = await open(
      this.path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      await file.chmod(0o600);
      await file.writeFile(`${code}\n`);
    } finally {
      await file.close();
    }
    this.code = code;
    return code;
  }

  /** Throws `forbidden` unless `given` is the code (dashes, spaces and case aside), in constant time. */
  check(given: string | undefined): void {
    const expected = this.code;
    const ok =
      expected !== undefined &&
      given !== undefined &&
      timingSafeEqual(digest(normalise(given)), digest(normalise(expected)));
    if (!ok) {
      throw new TownError(
        "forbidden",
        "the setup code is missing or wrong; it is in the daemon's log and in setup-code in its data directory",
        { issues: [{ field: "setupCode", message: "missing or wrong" }] },
      );
    }
  }

  /** Forgets the code and its file: the administrator exists. */
  async clear(): Promise<void> {
    this.code = undefined;
    await rm(this.path, { force: true });
  }
}

function normalise(code: string): string {
  return code.replace(/[\s-]/g, "").toUpperCase();
}

/** Equal-length inputs for timingSafeEqual, whatever was typed. */
function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}
