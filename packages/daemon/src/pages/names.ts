/**
 * A page's name and the names it is served at, made here and nowhere else.
 * A page name is one DNS label: it becomes `<page>.<tld>`, a directory
 * under the sites directory and a container label, so it is checked before
 * any of those is made.
 */
import { DNS_LABEL, findControlCharacter, isDomainName, TownError } from "@townos/format";
import { publicDomainProblem } from "../dns/local-tld.js";

/** Names the box itself answers at: `town.<tld>` is the dashboard. */
const SYSTEM_NAMES = new Set(["town", "www", "localhost"]);

/** @throws TownError `invalid_argument` */
export function checkPageName(name: string): void {
  const control = findControlCharacter(name);
  if (control !== undefined)
    throw new TownError("invalid_argument", `a page name may not hold ${control}`);
  if (!DNS_LABEL.test(name))
    throw new TownError(
      "invalid_argument",
      `"${name.slice(0, 80)}" is not a page name: lower-case letters, digits and inner hyphens, at most 63`,
    );
  if (name.includes("--"))
    throw new TownError(
      "invalid_argument",
      `a page name may not hold "--" (punycode and reserved forms)`,
    );
  if (SYSTEM_NAMES.has(name))
    throw new TownError("invalid_argument", `"${name}" is a name of the box itself`);
}

/** Where a page answers on the home network. */
export function pageHost(name: string, tld: string): string {
  return `${name}.${tld}`;
}

/** `https://<host>/` for the page's name and each of its public domains. */
export function pageUrls(name: string, domains: readonly string[], tld: string): string[] {
  return [pageHost(name, tld), ...domains].map((host) => `https://${host}/`);
}

/** A public domain a page may claim, lower-cased. @throws TownError `invalid_argument` */
export function checkPageDomain(domain: string, tld: string): string {
  const lower = domain.toLowerCase();
  if (findControlCharacter(lower) !== undefined || !isDomainName(lower))
    throw new TownError("invalid_argument", `"${domain.slice(0, 80)}" is not a domain name`);
  const problem = publicDomainProblem(lower, tld);
  if (problem !== undefined) throw new TownError("invalid_argument", `"${lower}" ${problem}`);
  return lower;
}
