/**
 * Sources that count as the home network: RFC 1918, loopback, IPv4
 * link-local, IPv6 unique-local (fc00::/7) and link-local. Left out on
 * purpose: 100.64.0.0/10 (RFC 6598 shared address space), which a carrier's
 * NAT puts its other subscribers in, so a router behind it would pass them on
 * as "local". A router port forward keeps the internet client's address
 * (DNAT), so what it forwards falls outside these ranges.
 */
export const LAN_SOURCE_RANGES: readonly string[] = [
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "::1/128",
  "fc00::/7",
  "fe80::/10",
];
