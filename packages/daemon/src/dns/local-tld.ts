/**
 * Which names may be the box's own top-level domain, and which may never be
 * claimed as a public domain.
 *
 * The box answers every name under its TLD itself, so a TLD that exists in
 * the public DNS (`com`, `box`, `app`…) would hide real sites from the whole
 * home network and could never get certificates of its own. The rule is an
 * allow-list of names that no public registry hands out: RFC 8375's
 * `home.arpa`, and the private-use names RFC 6762 (Appendix G) found in wide
 * use and ICANN keeps out of the root zone (`internal` is reserved for
 * private use outright; `home` and `corp` were withdrawn from delegation).
 * A list of today's public TLDs would not do: new ones are delegated every
 * year. `local` is left out: it belongs to mDNS (RFC 6762), and many
 * clients never ask unicast DNS for it.
 */
export const LOCAL_TLDS: readonly string[] = [
  "home",
  "lan",
  "internal",
  "home.arpa",
  "corp",
  "private",
  "intranet",
];

/**
 * Special-use names (RFC 6761, 6762, 7686, 9476) besides the local TLDs:
 * no public CA certifies names under them, so they are never public domains.
 */
const SPECIAL_USE: readonly string[] = [
  "local",
  "localhost",
  "localdomain",
  "test",
  "invalid",
  "example",
  "onion",
  "alt",
  "arpa",
];

/** Why `tld` cannot be the box's TLD, or undefined when it can. */
export function localTldProblem(tld: string): string | undefined {
  if (LOCAL_TLDS.includes(tld)) return undefined;
  return `a name that is never a public top-level domain: one of ${LOCAL_TLDS.join(", ")}`;
}

/**
 * Why `domain` (lower-case) may not be a public domain of an app on a box
 * whose TLD is `tld`, or undefined: names under the box's own TLD are its
 * local names (the dashboard's and the apps'), and special-use names are
 * nobody's.
 */
export function publicDomainProblem(domain: string, tld: string): string | undefined {
  const under = (suffix: string): boolean => domain === suffix || domain.endsWith(`.${suffix}`);
  if (under(tld))
    return `is under the box's own top-level domain .${tld}, where the box names its apps and dashboard`;
  const reserved = [...LOCAL_TLDS, ...SPECIAL_USE].find(under);
  if (reserved !== undefined) return `is under .${reserved}, which is not a public domain`;
  return undefined;
}
