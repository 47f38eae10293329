import { createHash } from "node:crypto";
import { lstat, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { findControlCharacter, TownError, type Issue } from "@townos/format";

/**
 * SSH public keys that may log in to the Town OS image as root (rescue and
 * expert access). They live on the data pool, `<dataDir>/os/ssh/authorized_keys`,
 * which the image's sshd reads, so they survive the OS being reset at boot.
 */
export const SSH_DIR = join("os", "ssh");
export const AUTHORIZED_KEYS_FILE = "authorized_keys";
export const MAX_SSH_KEYS = 100;
/** An RSA key of 16384 bits is about 2.8 KB in base64: twice that is plenty. */
export const MAX_SSH_KEY_LENGTH = 8192;

const KEY_TYPES: ReadonlySet<string> = new Set([
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
]);
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export interface SshKey {
  type: string;
  /** As `ssh-keygen -l` prints it: `SHA256:` and the unpadded base64 of the key's hash. */
  fingerprint: string;
  comment: string;
  /** The line as it goes into authorized_keys. */
  line: string;
}

/**
 * One authorized_keys line, `TYPE BASE64 [COMMENT]`, checked to be a public
 * key of that type. Options before the type (`command=`, `from=`) are refused:
 * the dashboard could not show what they allow.
 */
export function parseSshKey(text: string): SshKey {
  const line = text.trim();
  const refuse = (message: string): never => {
    throw new TownError("invalid_argument", `not an SSH public key: ${message}`, {
      issues: [{ field: "keys", message }],
    });
  };
  if (line.length > MAX_SSH_KEY_LENGTH) refuse(`longer than ${MAX_SSH_KEY_LENGTH} characters`);
  // sshd reads a key line to its end: no control character may hide a second line.
  const control = findControlCharacter(line);
  if (control) refuse(`it holds a control character (${control}) or more than one line`);
  const [type = "", data = "", ...rest] = line.split(/[ \t]+/);
  if (!KEY_TYPES.has(type)) {
    refuse(
      `it must start with its type (${[...KEY_TYPES].join(", ")}); options such as command= are not supported`,
    );
  }
  if (!BASE64.test(data)) refuse("its key is not base64");
  const blob = Buffer.from(data, "base64");
  if (blobType(blob) !== type) refuse(`its key is not a ${type} key`);
  const comment = rest.join(" ");
  return {
    type,
    fingerprint: `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`,
    comment,
    line: [type, data, comment].filter(Boolean).join(" "),
  };
}

/** The key type a public key's wire form starts with (a length-prefixed string). */
function blobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  return length > 0 && length <= 64 && blob.length > 4 + length
    ? blob.subarray(4, 4 + length).toString("latin1")
    : undefined;
}

/** Every line checked, duplicates (same key) dropped; all problems reported together. */
export function parseSshKeys(lines: readonly string[]): SshKey[] {
  if (lines.length > MAX_SSH_KEYS) {
    throw new TownError("invalid_argument", `at most ${MAX_SSH_KEYS} SSH keys`);
  }
  const keys = new Map<string, SshKey>();
  const issues: Issue[] = [];
  lines.forEach((line, index) => {
    try {
      const key = parseSshKey(line);
      if (!keys.has(key.fingerprint)) keys.set(key.fingerprint, key);
    } catch (error) {
      if (!(error instanceof TownError)) throw error;
      issues.push({ field: `keys.${index}`, message: error.message });
    }
  });
  if (issues.length > 0) {
    throw new TownError("invalid_argument", issues.map((issue) => issue.message).join("; "), {
      issues,
    });
  }
  return [...keys.values()];
}

/** The authorized_keys file on the data pool: read, and replaced whole. */
export class SshKeys {
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, SSH_DIR);
  }

  get path(): string {
    return join(this.dir, AUTHORIZED_KEYS_FILE);
  }

  async list(): Promise<SshKey[]> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    return parseSshKeys(text.split("\n").filter((line) => line.trim() !== ""));
  }

  /**
   * Replaces the keys. The new file is written beside the old one and renamed
   * over it, so sshd never reads half a file; the directory is made 0700 and
   * must not be a link (sshd's StrictModes also wants it so).
   */
  async replace(lines: readonly string[]): Promise<SshKey[]> {
    const keys = parseSshKeys(lines);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const dir = await lstat(this.dir);
    if (!dir.isDirectory()) {
      throw new TownError("io", `${this.dir} is not a directory: SSH keys are not saved`);
    }
    const next = `${this.path}.new`;
    await rm(next, { force: true });
    await writeFile(next, keys.map((key) => `${key.line}\n`).join(""), {
      flag: "wx",
      mode: 0o600,
    });
    await rename(next, this.path);
    return keys;
  }
}
