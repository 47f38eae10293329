/**
 * Package version order: split on `.`, compare segment by segment —
 * numerically when both are integers, otherwise as plain strings — with a
 * missing segment sorting as the empty string. So 2.10 > 2.9, 1.0.1 > 1.0,
 * and 1.0 > 1.
 */
export function compareVersions(a: string, b: string): number {
  const left = a.split(".");
  const right = b.split(".");
  const length = Math.max(left.length, right.length);
  for (let i = 0; i < length; i++) {
    const x = left[i] ?? "";
    const y = right[i] ?? "";
    const order = isInteger(x) && isInteger(y) ? compareIntegers(x, y) : compareStrings(x, y);
    if (order !== 0) return order;
  }
  return 0;
}

const INTEGER = /^[0-9]+$/;

function isInteger(segment: string): boolean {
  return INTEGER.test(segment);
}

/** Exact for any length: no precision lost on huge segments. */
function compareIntegers(x: string, y: string): number {
  const a = x.replace(/^0+(?=.)/, "");
  const b = y.replace(/^0+(?=.)/, "");
  return a.length !== b.length ? Math.sign(a.length - b.length) : compareStrings(a, b);
}

/** Plain code-unit order, like Go's string comparison for ASCII versions. */
function compareStrings(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Highest version of a list, or undefined when empty. */
export function latestVersion(versions: Iterable<string>): string | undefined {
  let best: string | undefined;
  for (const version of versions) {
    if (best === undefined || compareVersions(version, best) > 0) best = version;
  }
  return best;
}

export interface VersionedEntry {
  /** Position of the entry's repository in the ordered list; lower wins ties. */
  repoIndex: number;
  version: string;
}

/**
 * "Latest" of one package name across repositories: the highest version;
 * equal versions go to the repository listed first.
 */
export function pickLatest<T extends VersionedEntry>(entries: Iterable<T>): T | undefined {
  let best: T | undefined;
  for (const entry of entries) {
    if (best === undefined) {
      best = entry;
      continue;
    }
    const order = compareVersions(entry.version, best.version);
    if (order > 0 || (order === 0 && entry.repoIndex < best.repoIndex)) best = entry;
  }
  return best;
}
