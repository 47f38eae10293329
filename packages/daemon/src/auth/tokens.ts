import { timingSafeEqual } from "node:crypto";

/** Whether a token given (in a URL, say) is the one expected, in constant time; never with none expected. */
export function tokensMatch(given: string, expected: string | undefined): boolean {
  if (expected === undefined || expected === "") return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
