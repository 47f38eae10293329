/**
 * Addresses the box reaches on behalf of someone else (a package's OAuth
 * flow, a package's VM image) only when they are public: the box itself, its
 * networks and anything not unicast are refused, also after DNS, so a name
 * cannot be rebound to them.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";

/**
 * A package could otherwise make the box call its router's or its own admin
 * pages with the answers coming back to the package.
 */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  PRIVATE.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  PRIVATE.addSubnet(net, prefix, "ipv6");
}

/** Whether `address` (an IP literal) may not be reached; BlockList sees IPv4 in IPv6 (`::ffff:7f00:1`) too. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return PRIVATE.check(address, family === 4 ? "ipv4" : "ipv6");
}

/** `dns.lookup` that refuses names resolving to the box's own networks (give it as a request's `lookup`). */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
    if (error) {
      callback(error, "", 0);
      return;
    }
    const allowed = addresses.filter((entry) => !isPrivateAddress(entry.address));
    const first = allowed[0];
    if (first === undefined) {
      callback(
        Object.assign(
          new Error(`${hostname} resolves to a local address only, which may not be reached`),
          { code: "EACCES" },
        ),
        "",
        0,
      );
      return;
    }
    // net asks for every address when it tries them in turn (autoSelectFamily).
    if (options.all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, allowed);
    else callback(null, first.address, first.family);
  });
};
