/**
 * Pure checks of paths that come from outside: archive entry names, symbolic
 * link targets, template paths and paths picked for export. A path that
 * passes is returned as its list of components, none of them empty, `.` or
 * `..`, so joining it under a root can only name something below that root
 * (as long as no component on disk is a symbolic link: `safe-fs.ts` checks
 * that part).
 */
import { printable } from "./names.js";

/** Longest path (bytes) accepted, like Linux's PATH_MAX. */
export const MAX_PATH_BYTES = 4096;
/** Longest single component (bytes), like Linux's NAME_MAX. */
export const MAX_COMPONENT_BYTES = 255;
/** Deepest nesting accepted. */
export const MAX_DEPTH = 128;
/**
 * Names beginning with this are Town OS's own inside a volume (entries being
 * moved in, template files being written): never taken from input, and not
 * trusted either, since the volume's app can make them too.
 */
export const RESERVED_ENTRY_PREFIX = ".town-";

export type PathCheck = { parts: string[] } | { reason: string };

/**
 * An archive entry name: relative, `/`-separated, where leading `./`,
 * repeated slashes and a trailing `/` are tolerated (tar writes them) and the
 * empty result means the archive's root. Absolute names, `..` anywhere,
 * control characters and over-long names are refused. `anyCharacters`
 * (names a volume had, restored from its backup) lets control characters
 * other than NUL through: Linux takes them, and they are only ever printed
 * through `printable`.
 */
export function checkEntryPath(name: string, options: { anyCharacters?: boolean } = {}): PathCheck {
  if (name.startsWith("/")) return { reason: "absolute path" };
  return checkParts(
    name.split("/").filter((part) => part !== "" && part !== "."),
    name,
    options.anyCharacters === true,
  );
}

/**
 * A path chosen by a person or a package (templates, exports): relative and
 * already normal, so `a//b`, `./a` or `a/` are mistakes worth reporting.
 */
export function checkRelativePath(path: string): PathCheck {
  if (path === "") return { reason: "empty path" };
  if (path.startsWith("/")) return { reason: "absolute path" };
  const parts = path.split("/");
  if (parts.some((part) => part === "" || part === ".")) {
    return { reason: "empty or '.' path component" };
  }
  return checkParts(parts, path, false);
}

/**
 * Whether a symbolic link at `linkParts` (relative to the root) pointing at
 * `target` stays inside the root. Only targets of the form `../../a/b` are
 * accepted: leading `..` that climb no higher than the root, then names. A
 * `..` after a name is refused because the name may itself be a link, and
 * `..` then climbs from wherever that link leads, not from where the text
 * says; with this shape every hop provably stays inside.
 */
export function symlinkTargetProblem(
  linkParts: readonly string[],
  target: string,
): string | undefined {
  if (target === "") return "empty link target";
  if (Buffer.byteLength(target) > MAX_PATH_BYTES) return "link target too long";
  if (hasControl(target)) return "control character in link target";
  if (target.startsWith("/")) return `link points outside (absolute target "${printable(target)}")`;
  const parts = target.split("/").filter((part) => part !== "" && part !== ".");
  let up = 0;
  while (parts[up] === "..") up++;
  if (parts.slice(up).includes(".."))
    return `link target "${printable(target)}" climbs after descending`;
  if (up > linkParts.length - 1) return `link points outside ("${printable(target)}")`;
  return undefined;
}

/** Control characters are refused in anything that becomes a path. */
export function hasControl(text: string): boolean {
  // eslint-disable-next-line no-control-regex -- the characters being looked for
  return /[\u0000-\u001f\u007f-\u009f]/.test(text);
}

function checkParts(parts: string[], original: string, anyCharacters: boolean): PathCheck {
  if (Buffer.byteLength(original) > MAX_PATH_BYTES) return { reason: "path too long" };
  if (anyCharacters ? original.includes("\0") : hasControl(original)) {
    return { reason: "control character in name" };
  }
  if (parts.includes("..")) return { reason: "'..' in path" };
  if (parts.length > MAX_DEPTH) return { reason: `nested deeper than ${MAX_DEPTH} levels` };
  if (parts.some((part) => Buffer.byteLength(part) > MAX_COMPONENT_BYTES)) {
    return { reason: "path component too long" };
  }
  if (parts[0]?.startsWith(RESERVED_ENTRY_PREFIX)) {
    return { reason: `names starting with "${RESERVED_ENTRY_PREFIX}" are reserved` };
  }
  return { parts };
}
