/**
 * `@marker@` substitution. `@@` is an escape for one literal `@`: it is kept
 * through every stage and turned into `@` only by `unescapeMarkers`, once a
 * value's last stage has run. Inserted values have their own `@` doubled, so
 * an answer such as `p@@ss` or `@dep_db_host@` is never read as markup by a
 * later stage and comes out exactly as given.
 */

/** Marker name → value. A marker whose name is absent stays as written. */
export type MarkerValues = ReadonlyMap<string, string>;

const MARKER_AT = /@([a-zA-Z0-9_-]+)@/y;

export function substituteMarkers(text: string, values: MarkerValues): string {
  return scanMarkers(text, (name, written) => {
    const value = values.get(name);
    return value === undefined ? written : escapeMarkers(value);
  });
}

/** Names of the markers a text holds, skipping `@@` escapes. */
export function markerNames(text: string): string[] {
  const names: string[] = [];
  scanMarkers(text, (name, written) => {
    names.push(name);
    return written;
  });
  return names;
}

/** Doubles every `@`, so the text survives substitution stages unchanged. */
export function escapeMarkers(text: string): string {
  return text.replaceAll("@", "@@");
}

/** The final step of a value: `@@` → `@`; a lone `@` stays. */
export function unescapeMarkers(text: string): string {
  return text.replaceAll("@@", "@");
}

/**
 * Walks `text` left to right: `@@` is kept as an escape, `@name@` is replaced
 * by what `replace` returns, and a lone `@` is plain text.
 */
function scanMarkers(text: string, replace: (name: string, written: string) => string): string {
  if (!text.includes("@")) return text;
  let out = "";
  let i = 0;
  while (i < text.length) {
    const at = text.indexOf("@", i);
    if (at === -1) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, at);
    if (text[at + 1] === "@") {
      out += "@@";
      i = at + 2;
      continue;
    }
    MARKER_AT.lastIndex = at;
    const match = MARKER_AT.exec(text);
    if (!match) {
      out += "@";
      i = at + 1;
      continue;
    }
    out += replace(match[1] ?? "", match[0]);
    i = at + match[0].length;
  }
  return out;
}
