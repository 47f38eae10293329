/**
 * How an app's objects are found again: the labels on its containers and
 * network, and its work-queue key.
 */

/** Label on every container and network of an app (dependencies included): `<repo>/<name>`. */
export const LABEL_APP = "town.app";
/**
 * Label naming the Town OS install (its data directory) that made a
 * container: a daemon only ever removes its own, so two daemons on one host
 * (a test beside a real box) leave each other alone.
 */
export const LABEL_BOX = "town.box";

/** The labels that select one app's containers and network. */
export function appLabels(box: string, repo: string, name: string): Record<string, string> {
  return { [LABEL_BOX]: box, [LABEL_APP]: `${repo}/${name}` };
}

/** `<repo>/<name>` from an app label; undefined for anything else. */
export function appFromLabel(
  label: string | undefined,
): { repo: string; name: string } | undefined {
  const slash = label?.indexOf("/") ?? -1;
  if (label === undefined || slash <= 0 || slash === label.length - 1) return undefined;
  return { repo: label.slice(0, slash), name: label.slice(slash + 1) };
}

/** The manager's kind of apps: an app's key is `apps/<repo>/<name>`. */
export const APPS = "apps";
const KEY_PREFIX = `${APPS}/`;

/** The manager's key of an app. */
export function appKey(repo: string, name: string): string {
  return `${KEY_PREFIX}${repo}/${name}`;
}

/** Reads an app key back; undefined for keys of other kinds. */
export function parseAppKey(key: string): { repo: string; name: string } | undefined {
  if (!key.startsWith(KEY_PREFIX)) return undefined;
  const [repo, name, ...rest] = key.slice(KEY_PREFIX.length).split("/");
  if (!repo || !name || rest.length > 0) return undefined;
  return { repo, name };
}
