import { isIPv4, isIPv6 } from "node:net";
import { TownError } from "@townos/format";
import type { Clock } from "../clock.js";

export interface ThrottleOptions {
  /** Attempts allowed per source within the window (successful ones give slots back). */
  maxFailures: number;
  windowMs: number;
  /** Sources remembered at most; the oldest are forgotten first (bounded memory). */
  maxSources?: number;
}

/**
 * Who a client address counts as: IPv4 addresses (also IPv4-mapped IPv6) on
 * their own, IPv6 addresses by their /64 — one home or host gets a whole /64,
 * so counting single IPv6 addresses would give an attacker 2^64 fresh tries.
 */
export function sourceKey(address: string): string {
  const plain = address.replace(/%.*$/, "").toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(plain)?.[1];
  if (mapped !== undefined && isIPv4(mapped)) return mapped;
  if (!isIPv6(plain)) return plain;
  return `${ipv6Groups(plain).slice(0, 4).join(":")}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address, as lower-case hex without leading zeros. */
function ipv6Groups(address: string): string[] {
  let text = address;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = Array<string>(8 - left.length - right.length).fill("0");
  return [...left, ...(tail === undefined ? [] : zeros), ...right].map((group) =>
    parseInt(group, 16).toString(16),
  );
}

interface Attempt {
  at: number;
  /** The account tried, when known: a success forgives that account's typos only. */
  username: string | undefined;
}

/**
 * Counts sign-in attempts per source (see `sourceKey`) in a sliding window.
 * An attempt takes its slot before any password work starts — synchronously,
 * so parallel guesses cannot all pass the check before the first one fails —
 * and only success gives slots back. While a source is over the limit every
 * attempt is refused before the password is even looked at.
 */
export class LoginThrottle {
  private readonly attempts = new Map<string, Attempt[]>();

  constructor(
    private readonly options: ThrottleOptions,
    private readonly clock: Clock,
  ) {}

  /**
   * Takes a slot for one attempt from `address`, or throws `rate_limited`
   * with the seconds to wait. Call `succeed` with the result when it worked.
   */
  reserve(address: string, username?: string): Reservation {
    const key = sourceKey(address);
    const recent = this.recent(key);
    if (recent.length >= this.options.maxFailures) {
      const oldest = recent[0]?.at ?? this.clock();
      const retryAfter = Math.max(
        1,
        Math.ceil((oldest + this.options.windowMs - this.clock()) / 1000),
      );
      throw new TownError(
        "rate_limited",
        `too many failed sign-ins; try again in ${retryAfter} s`,
        {
          retryAfter,
        },
      );
    }
    const attempt = { at: this.clock(), username };
    recent.push(attempt);
    // Re-inserted so that the map's order is least recently tried first.
    this.attempts.delete(key);
    this.attempts.set(key, recent);
    const max = this.options.maxSources ?? 10_000;
    for (const oldKey of this.attempts.keys()) {
      if (this.attempts.size <= max) break;
      this.attempts.delete(oldKey);
    }
    return { key, attempt };
  }

  /**
   * Gives back the slot of an attempt that worked, and those of earlier
   * tries at the same account — but not the rest: whoever knows one good
   * password cannot wipe the record of guesses at other accounts.
   */
  succeed(reservation: Reservation): void {
    const { key, attempt } = reservation;
    const recent = this.attempts.get(key);
    if (!recent) return;
    const kept = recent.filter(
      (other) =>
        other !== attempt &&
        (attempt.username === undefined || other.username !== attempt.username),
    );
    this.attempts.set(key, kept);
  }

  private recent(key: string): Attempt[] {
    const cutoff = this.clock() - this.options.windowMs;
    return (this.attempts.get(key) ?? []).filter((attempt) => attempt.at > cutoff);
  }
}

/** One attempt's slot in the throttle. */
export interface Reservation {
  key: string;
  attempt: Attempt;
}
