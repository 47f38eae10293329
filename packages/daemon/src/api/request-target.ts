/**
 * The request target as the router will see it. Access is decided from the
 * matched route, but a target that two parsers could read differently (the
 * router, a proxy, a prefix check) is the root of every path-confusion bypass,
 * so odd targets are refused before routing and harmless encodings are
 * normalised:
 * - only origin-form (`/path?query`): absolute-form (`http://host/path`) and
 *   `*` are for proxies, which the daemon is not;
 * - no empty segments (`//`), no dot segments (`.`, `..`, also encoded), no
 *   encoded `/` or `\`, no backslashes, no control characters (raw or encoded),
 *   no malformed percent-encoding, no fragment;
 * - percent-encoded unreserved characters (`%61` for `a`) are decoded, as
 *   RFC 3986 §6.2.2.2 says they are equivalent.
 * Case is left alone: routes are case-sensitive, so `/API/…` matches nothing.
 */

export type TargetVerdict = { ok: true; url: string } | { ok: false; reason: string };

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;
const PERCENT = /%([0-9A-Fa-f]{2})/g;

export function canonicalTarget(raw: string): TargetVerdict {
  if (!raw.startsWith("/")) return refuse("only origin-form request targets are accepted");
  if (CONTROL.test(raw) || raw.includes("\\") || raw.includes("#")) {
    return refuse("the request target holds characters that are not allowed");
  }
  const queryAt = raw.indexOf("?");
  const path = queryAt === -1 ? raw : raw.slice(0, queryAt);
  const query = queryAt === -1 ? "" : raw.slice(queryAt);
  if (/%(?![0-9A-Fa-f]{2})/.test(raw)) return refuse("malformed percent-encoding");
  const normalised = path.replace(PERCENT, (escape, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : escape.toUpperCase();
  });
  if (/%(2F|5C|[01][0-9A-F]|7F)/.test(normalised)) {
    return refuse("encoded slashes and control characters are not allowed in paths");
  }
  const segments = normalised.split("/").slice(1);
  for (const [index, segment] of segments.entries()) {
    // A trailing slash leaves one empty last segment; any other empty segment is `//`.
    if (segment === "" && index !== segments.length - 1) return refuse("empty path segment");
    if (segment === "." || segment === "..") return refuse("dot segments are not allowed");
  }
  return { ok: true, url: normalised + query };
}

function refuse(reason: string): TargetVerdict {
  return { ok: false, reason };
}
