/** Name and value rules of the package format, in one place. */

export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/;
export const TEMPLATE_NAME = VOLUME_NAME;
export const QUESTION_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_]*$/;
export const ENV_KEY = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
export const PORT_NAME = /^[a-zA-Z][a-zA-Z0-9_]*$/;
export const IMAGE_REFERENCE = /^[a-zA-Z0-9@][a-zA-Z0-9._:/@-]*$/;
/** A SHA-256 checksum as hex, either case. */
export const SHA256 = /^[0-9a-fA-F]{64}$/;
/**
 * Package and repository names become DNS labels (`<name>.<repo>.<tld>`) and
 * container names, so they follow RFC 1123 label rules, lower case.
 */
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/**
 * Package names: DNS labels without `--`, which separates the parts of the
 * names made from them (`<app>--<dependency key>`, see names.ts), so that
 * those names are injective.
 */
export const PACKAGE_NAME = /^(?!.*--)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/**
 * Dependency keys appear inside markers (`@dep_KEY_port_sql@`), in host
 * aliases and in `TOWNOS_DEP_<KEY>_…` variables: no underscore, so markers
 * split unambiguously; like package names, no `--` and no `-` at the end.
 */
export const DEPENDENCY_KEY = /^(?!.*--)[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A single `@marker@`: its name may hold what question names and dependency keys hold. */
export const MARKER = /@([a-zA-Z0-9_-]+)@/;
export const MARKER_CHARS = /@[a-zA-Z0-9_-]+@/;

/** Bounds on strings that come from packages or answers. */
export const MAX_VALUE_LENGTH = 64 * 1024;
export const MAX_TEMPLATE_CONTENT_LENGTH = 256 * 1024;

/** The first control character (tab excepted) in `value`, for error messages. */
export function findControlCharacter(value: string): string | undefined {
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    if (char !== "\t" && (code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0))) {
      return `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
    }
  }
  return undefined;
}

export function hasMarker(value: string): boolean {
  return MARKER_CHARS.test(value);
}

/** Relative, normalized, and never escaping its root. */
export function relativePathProblem(path: string): string | undefined {
  if (path === "") return "must not be empty";
  if (path.startsWith("/")) return "must be relative (no leading /)";
  if (path.includes("\\")) return "must not contain backslashes";
  const parts = path.split("/");
  if (parts.some((part) => part === "..")) return "must not contain '..'";
  if (parts.some((part) => part === "" || part === "."))
    return "must not contain empty or '.' segments";
  return undefined;
}

export function absolutePathProblem(path: string): string | undefined {
  if (!path.startsWith("/")) return "must be an absolute path";
  if (path.includes("\\")) return "must not contain backslashes";
  const parts = path.split("/").slice(1);
  if (parts.some((part) => part === "..")) return "must not contain '..'";
  if (path !== "/" && parts.some((part) => part === "" || part === ".")) {
    return "must not contain empty or '.' segments";
  }
  return undefined;
}

/** Longest metrics path a package may give: Prometheus' target URL, not a document. */
export const MAX_METRICS_PATH_LENGTH = 1024;

/**
 * A metrics endpoint's path (the `metrics` extension): absolute, and only the
 * characters a URL path holds unescaped (RFC 3986 pchar and `/`), so no
 * spaces, control characters, query or fragment.
 */
export function metricsPathProblem(path: string): string | undefined {
  if (!path.startsWith("/")) return "must be an absolute URL path (starting with /)";
  if (path.length > MAX_METRICS_PATH_LENGTH)
    return `is longer than ${MAX_METRICS_PATH_LENGTH} characters`;
  if (!/^[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/.test(path)) {
    return "may hold only URL path characters (no spaces, control characters, ? or #)";
  }
  return undefined;
}

/** How the `backup` extension quiesces an app before a snapshot (absent: not at all). */
export const QUIESCE_MODES = ["stop", "command"] as const;
export type QuiesceMode = (typeof QUIESCE_MODES)[number];

/** Bounds on a quiesce command: a short argument list, not a script shipped inline. */
export const MAX_QUIESCE_ARGS = 32;
export const MAX_QUIESCE_ARG_LENGTH = 4096;
export const DEFAULT_QUIESCE_TIMEOUT_SECONDS = 60;
export const MAX_QUIESCE_TIMEOUT_SECONDS = 3600;

/** A quiesce timeout in whole seconds (1-3600), or what is wrong with the text. */
export function parseQuiesceTimeout(text: string): number | string {
  const seconds = /^[0-9]{1,4}$/.test(text) ? Number(text) : 0;
  return seconds >= 1 && seconds <= MAX_QUIESCE_TIMEOUT_SECONDS
    ? seconds
    : `"${text}" is not a number of seconds (1-${MAX_QUIESCE_TIMEOUT_SECONDS})`;
}

export function isDomainName(name: string): boolean {
  return (
    name.length <= 253 &&
    name.split(".").length >= 2 &&
    name.split(".").every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(label))
  );
}

export function isGitUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return (parsed.protocol === "https:" || parsed.protocol === "http:") && parsed.hostname !== "";
  } catch {
    return false;
  }
}

/** uid/gid as an integer; 4294967295 is (uid_t)-1 and means "no change" to chown, so it is refused. */
export function parseId(text: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const value = Number(text);
  return value <= 4294967294 ? value : undefined;
}
