/** One text per value, for hashes that must not depend on key order (spec hashes, configuration hashes). */

/**
 * JSON with object keys sorted (by UTF-16 code units) at every level and no
 * whitespace, so that equal values always serialize to equal text. Array
 * order is kept: it is meaningful (arguments, mounts). Undefined members are
 * left out, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, member: unknown) => {
    if (member === null || typeof member !== "object" || Array.isArray(member)) return member;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(member).sort()) {
      sorted[key] = (member as Record<string, unknown>)[key];
    }
    return sorted;
  });
}
