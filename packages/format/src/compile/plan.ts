/**
 * The finished plan: its hash, its secrets, and the order its lists are
 * sorted in. Hashes are stored in installed boxes' databases, so hashPlan and
 * the plan's field order (compile.ts) must not change.
 */

import { createHash } from "node:crypto";
import type { CompiledPackage } from "./types.js";

/**
 * The non-empty values of the secret answers of a plan and its dependencies,
 * longest first: what is masked for non-admins and redacted from steps,
 * errors and logs. A plan stored before `secrets` existed counts every
 * answer as secret, so that nothing it holds is shown.
 */
export function planSecrets(plan: CompiledPackage): string[] {
  const values = new Set<string>();
  const visit = (node: CompiledPackage): void => {
    const names = (node as { secrets?: readonly string[] }).secrets ?? Object.keys(node.answers);
    for (const name of names) {
      const value = node.answers[name];
      if (value !== undefined && value !== "") values.add(value);
    }
    for (const dependency of node.dependencies) visit(dependency);
  };
  visit(plan);
  return [...values].sort((a, b) => b.length - a.length || compareText(a, b));
}

const LATER_FIELDS = new Set(["metrics", "backup"]);

/**
 * Fields added after hashes were first stored are left out while they hold
 * their "none" value (only plan nodes have a `metrics` or `backup` key whose
 * value can be null), so that a plan that does not use them keeps its stored
 * hash.
 */
export function hashPlan(plan: Omit<CompiledPackage, "hash">): string {
  const json = JSON.stringify(plan, (key, value: unknown) =>
    LATER_FIELDS.has(key) && value === null ? undefined : value,
  );
  return createHash("sha256").update(json).digest("hex");
}

/** Code-unit order, independent of locale: plans must sort the same everywhere. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
