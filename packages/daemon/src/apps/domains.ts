/**
 * Public domains (`network.domains`) are checked before an install or
 * upgrade makes anything: a package may not claim the box's own names (under
 * its TLD, where the dashboard lives), special-use names, or a domain another
 * installed app serves. Without this, the first claim won at serve time and
 * the later one was silently left out, or a package took `town.<tld>`.
 */
import { TownError, type CompiledPackage, type Issue } from "@townos/format";
import { publicDomainProblem } from "../dns/local-tld.js";
import type { InstallRecord } from "../store/installs.js";
import { flattenPlan } from "./names.js";

/**
 * @throws TownError `invalid_package` for a name that is not a public domain,
 * `conflict` for one another app has; the issues name each domain.
 */
export function checkDomainClaims(
  repo: string,
  name: string,
  plan: CompiledPackage,
  tld: string,
  installs: readonly InstallRecord[],
): void {
  const owners = appDomainOwners(
    installs.filter((other) => !(other.repo === repo && other.name === name)),
  );
  const refused: Issue[] = [];
  const taken: Issue[] = [];
  for (const [i, domain] of planDomains(plan).entries()) {
    const field = `network.domains.${i}`;
    const problem = publicDomainProblem(domain, tld);
    const owner = owners.get(domain);
    if (problem !== undefined) refused.push({ field, message: `"${domain}" ${problem}` });
    else if (owner !== undefined)
      taken.push({ field, message: `"${domain}" is served for ${owner} already` });
  }
  const issues = [...refused, ...taken];
  const first = issues[0];
  if (first === undefined) return;
  throw new TownError(
    refused.length > 0 ? "invalid_package" : "conflict",
    `${repo}/${name} may not claim the public domain ${first.message}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ""}`,
    { issues },
  );
}

/** Each public domain the installs serve, with the app (`repo/name`) serving it. */
export function appDomainOwners(installs: readonly InstallRecord[]): Map<string, string> {
  const owners = new Map<string, string>();
  for (const install of installs) {
    if (!install.plan) continue;
    for (const domain of planDomains(install.plan))
      owners.set(domain, `${install.repo}/${install.name}`);
  }
  return owners;
}

function planDomains(plan: CompiledPackage): string[] {
  return flattenPlan(plan).flatMap(({ plan: node }) => node.domains.map((d) => d.toLowerCase()));
}
