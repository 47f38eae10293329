import { hash, verify } from "@node-rs/argon2";
import { TownError } from "@townos/format";

export const MIN_PASSWORD_LENGTH = 8;
/** argon2 cost grows with input; nobody needs a longer password than this. */
export const MAX_PASSWORD_LENGTH = 1024;

// Argon2id with the library's defaults (m=19 MiB, t=2, p=1): OWASP's baseline.
export async function hashPassword(password: string): Promise<string> {
  checkPassword(password);
  return hash(password);
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  if (password.length > MAX_PASSWORD_LENGTH) return false;
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

export function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new TownError(
      "invalid_argument",
      `a password needs at least ${MIN_PASSWORD_LENGTH} characters`,
      {
        issues: [{ field: "password", message: `at least ${MIN_PASSWORD_LENGTH} characters` }],
      },
    );
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw new TownError(
      "invalid_argument",
      `a password may have at most ${MAX_PASSWORD_LENGTH} characters`,
      {
        issues: [{ field: "password", message: `at most ${MAX_PASSWORD_LENGTH} characters` }],
      },
    );
  }
}
