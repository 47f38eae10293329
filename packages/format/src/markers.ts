/**
 * `@marker@` substitution in passes: built-ins, then answers (stage 1), then
 * dependency values (stage 2). Each pass replaces the leftmost `@name@` of a
 * known name, wherever it starts; unknown markers stay as written. Inserted
 * values are opaque: later passes never read them, so an answer holding `@`
 * or text like `@dep_db_host@` comes out exactly as given. When a value's last
 * pass has run, `@@` in the package's own text becomes `@`.
 *
 * This reproduces what real packages rely on:
 * `ssh://git@@@PACKAGE_DNS@` → `ssh://git@gitea.default.home`, and
 * `@password@@@PACKAGE_DNS@` → `pw@postgres.default.home` (built-ins first).
 */

/** Marker name → value. */
export type MarkerValues = ReadonlyMap<string, string>;

/** Package text with the values inserted so far kept apart from it. */
export type MarkedText = readonly (string | { readonly value: string })[];

const MARKER_AT = /@([a-zA-Z0-9_-]+)@/y;

export function markText(text: string): MarkedText {
  return [text];
}

export function substituteMarkers(text: MarkedText, values: MarkerValues): MarkedText {
  const out: (string | { value: string })[] = [];
  for (const segment of text) {
    if (typeof segment !== "string") {
      out.push(segment);
      continue;
    }
    let literal = "";
    scanMarkers(
      segment,
      (name) => {
        const value = values.get(name);
        if (value === undefined) return false;
        if (literal !== "") out.push(literal);
        literal = "";
        out.push({ value });
        return true;
      },
      (plain) => {
        literal += plain;
      },
    );
    if (literal !== "") out.push(literal);
  }
  return out;
}

/** The final string: `@@` → `@` in the package's text, values as inserted. */
export function finishMarkers(text: MarkedText): string {
  return text
    .map((segment) => (typeof segment === "string" ? segment.replaceAll("@@", "@") : segment.value))
    .join("");
}

/** Substitutes one pass and finishes: for fields with a single stage. */
export function renderMarkers(text: string, values: MarkerValues): string {
  return finishMarkers(substituteMarkers(markText(text), values));
}

/** Names of the `@name@` markers a text holds, in order. */
export function markerNames(text: string): string[] {
  const names: string[] = [];
  scanMarkers(
    text,
    (name) => {
      names.push(name);
      return true;
    },
    () => undefined,
  );
  return names;
}

/**
 * Walks `text`: at each `@`, offers the `@name@` starting there to `marker`,
 * which returns whether it consumed it; anything not consumed goes to
 * `plain` (one `@` at a time, so a closing `@` may open the next marker).
 */
function scanMarkers(
  text: string,
  marker: (name: string, written: string) => boolean,
  plain: (text: string) => void,
): void {
  let i = 0;
  while (i < text.length) {
    const at = text.indexOf("@", i);
    if (at === -1) {
      plain(text.slice(i));
      return;
    }
    if (at > i) plain(text.slice(i, at));
    MARKER_AT.lastIndex = at;
    const match = MARKER_AT.exec(text);
    if (match && marker(match[1] ?? "", match[0])) {
      i = at + match[0].length;
    } else {
      plain("@");
      i = at + 1;
    }
  }
}
