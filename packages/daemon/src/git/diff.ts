/**
 * Which paths differ between two listings of commits' trees.
 *
 * Listings (path → entry), not isomorphic-git's `walk`: a listing is read
 * through the object memo anyway (the files must be read), so diffing two of
 * them costs nothing more, whereas `walk` reads every directory it visits
 * from git before its map can prune it (about 0.3 ms each, every refresh).
 * Listings also compare commits held by two clones, when a clone is replaced.
 */

/** A path's entry in a git tree. */
export interface TreeFile {
  oid: string;
  /** Git's octal mode: "100644", "100755", "120000" (a link), "040000", "160000". */
  mode: string;
  type: string;
}

/** Paths whose object or mode differs, or that are in one listing only; sorted. */
export function diffEntries(
  before: ReadonlyMap<string, TreeFile>,
  after: ReadonlyMap<string, TreeFile>,
): string[] {
  const changed = new Set<string>();
  for (const [path, entry] of after) {
    const old = before.get(path);
    if (old?.oid !== entry.oid || old.mode !== entry.mode) changed.add(path);
  }
  for (const path of before.keys()) if (!after.has(path)) changed.add(path);
  return [...changed].sort();
}
