import { hostname, networkInterfaces } from "node:os";
import type { Clock } from "../clock.js";

/** How long the box's addresses are trusted before they are read again. */
export const OWN_HOSTS_TTL_MS = 5_000;

/** The box's own names and addresses: browser requests naming anything else are refused. */
export function readOwnHosts(
  extraHosts: readonly string[],
  interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
  host: string = hostname(),
): ReadonlySet<string> {
  const names = new Set([
    "localhost",
    "127.0.0.1",
    "[::1]",
    "town-os.local",
    host.toLowerCase(),
    `${host.toLowerCase()}.local`,
  ]);
  for (const addresses of Object.values(interfaces)) {
    for (const address of addresses ?? []) {
      names.add(address.family === "IPv6" ? `[${address.address.toLowerCase()}]` : address.address);
    }
  }
  for (const extra of extraHosts) names.add(extra.toLowerCase());
  return names;
}

/**
 * `read`'s answer, read again once it is older than OWN_HOSTS_TTL_MS: the
 * address a new DHCP lease brings is the box's own within seconds, without a
 * restart, and requests naming other hosts cost no more than a set lookup.
 */
export function ownHostsReader(
  read: () => ReadonlySet<string>,
  clock: Clock,
): () => ReadonlySet<string> {
  let hosts = read();
  let readAt = clock();
  return () => {
    if (clock() - readAt >= OWN_HOSTS_TTL_MS) {
      hosts = read();
      readAt = clock();
    }
    return hosts;
  };
}
