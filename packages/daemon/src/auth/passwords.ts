import { hash, verify } from "@node-rs/argon2";
import { TownError } from "@townos/format";

export const MIN_PASSWORD_LENGTH = 8;
/** argon2 cost grows with input; nobody needs a longer password than this. */
export const MAX_PASSWORD_LENGTH = 1024;

export interface PasswordOptions {
  /** argon2 computations at once (each takes ~19 MiB and a core for tens of ms); default 2. */
  concurrency?: number;
  /** Computations that may wait for one of those; past that, callers are told to retry. Default 16. */
  queue?: number;
}

/**
 * Hashes and checks passwords with Argon2id (the library's defaults, m=19 MiB,
 * t=2, p=1: OWASP's baseline), never more than a few at once: a flood of
 * sign-ins or setups from anywhere answers `rate_limited` instead of taking
 * the box's memory and CPU.
 */
export class Passwords {
  private readonly concurrency: number;
  private readonly queue: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private computations = 0;

  constructor(options: PasswordOptions = {}) {
    this.concurrency = options.concurrency ?? 2;
    this.queue = options.queue ?? 16;
  }

  /** How many argon2 computations have started: what an attacker made the box do. */
  get started(): number {
    return this.computations;
  }

  async hash(password: string): Promise<string> {
    checkPassword(password);
    return this.limited(() => hash(password));
  }

  async verify(passwordHash: string, password: string): Promise<boolean> {
    if (password.length > MAX_PASSWORD_LENGTH) return false;
    return this.limited(async () => {
      try {
        return await verify(passwordHash, password);
      } catch {
        return false;
      }
    });
  }

  private async limited<T>(work: () => Promise<T>): Promise<T> {
    if (this.running < this.concurrency) this.running++;
    else if (this.waiting.length < this.queue) {
      // The finishing computation hands its slot over: `running` stays as it is.
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      throw new TownError("rate_limited", "Town OS is busy checking passwords; try again", {
        retryAfter: 1,
      });
    }
    this.computations++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
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
