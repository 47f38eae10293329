import type { Node as YamlNode } from "yaml";
import type { YamlSource } from "./yaml-source.js";
import { parseDuration } from "./units.js";

/**
 * The `oauth` map of an `oauth` question: a PIN/device flow the box runs for
 * the person installing (see the spec's "OAuth questions"). Requests carry no
 * body; URLs and header values may hold `{{client_id}}` (made per flow by the
 * box) and, after the start request, `{{<extracted field>}}`.
 */
export interface OAuthDefinition {
  start: OAuthRequest;
  /** Field name → top-level JSON key of the start answer. */
  extract: ReadonlyMap<string, string>;
  /** The page the person opens to approve. */
  approve: string;
  /** Requested every `intervalSeconds` until the answer's `token` key is non-empty. */
  poll: OAuthRequest;
  token: string;
  intervalSeconds: number;
  timeoutSeconds: number;
}

export interface OAuthRequest {
  method: "GET" | "POST";
  url: string;
  headers: ReadonlyMap<string, string>;
}

/** The placeholder every flow has: an identifier the box makes for it. */
export const CLIENT_ID_PLACEHOLDER = "client_id";
export const OAUTH_LIMITS = {
  urlLength: 2048,
  headers: 16,
  headerValueLength: 1024,
  extractFields: 8,
  jsonKeyLength: 64,
  minIntervalSeconds: 1,
  maxIntervalSeconds: 60,
  maxTimeoutSeconds: 30 * 60,
} as const;
const DEFAULT_INTERVAL_SECONDS = 5;
const DEFAULT_TIMEOUT_SECONDS = 10 * 60;

/** RFC 9110 token characters. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
/** Headers that frame or route the request: the box sets them, a package may not. */
const RESERVED_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "proxy-authorization",
  "proxy-connection",
  "expect",
]);
const EXTRACT_FIELD = /^[a-z][a-z0-9_]{0,31}$/;
const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** What the package reader lends: its checked-string and known-fields helpers. */
export interface OAuthReader {
  source: YamlSource;
  text(node: YamlNode | null | undefined, field: string): string | undefined;
  fieldsOf(
    node: YamlNode | null | undefined,
    field: string,
    known: readonly string[],
  ): Map<string, YamlNode | null>;
}

/** Reads and checks an `oauth` map; problems go to the source, each at its place. */
export function readOAuth(
  reader: OAuthReader,
  node: YamlNode | null | undefined,
  field: string,
): OAuthDefinition | undefined {
  const s = reader.source;
  if (!s.isMapping(node, field)) {
    s.error(
      field,
      node,
      "must be a mapping (start, extract, approve, poll, token, interval, timeout)",
    );
    return undefined;
  }
  const before = s.issues.length;
  const fields = reader.fieldsOf(node, field, [
    "start",
    "extract",
    "approve",
    "poll",
    "token",
    "interval",
    "timeout",
  ]);
  const extract = readExtract(reader, fields.get("extract"), `${field}.extract`);
  const afterStart = new Set([CLIENT_ID_PLACEHOLDER, ...extract.keys()]);
  const start = readRequest(reader, fields.get("start"), `${field}.start`, {
    methods: true,
    placeholders: new Set([CLIENT_ID_PLACEHOLDER]),
  });
  const approve = required(reader, fields.get("approve"), `${field}.approve`);
  checkUrl(reader, approve, fields.get("approve"), `${field}.approve`, afterStart);
  const poll = readRequest(reader, fields.get("poll"), `${field}.poll`, {
    methods: false,
    placeholders: afterStart,
  });
  const token = jsonKey(reader, fields.get("token"), `${field}.token`);
  const intervalSeconds = duration(reader, fields.get("interval"), `${field}.interval`, {
    fallback: DEFAULT_INTERVAL_SECONDS,
    min: OAUTH_LIMITS.minIntervalSeconds,
    max: OAUTH_LIMITS.maxIntervalSeconds,
  });
  const timeoutSeconds = duration(reader, fields.get("timeout"), `${field}.timeout`, {
    fallback: DEFAULT_TIMEOUT_SECONDS,
    min: intervalSeconds,
    max: OAUTH_LIMITS.maxTimeoutSeconds,
  });
  if (s.issues.length > before) return undefined;
  return { start, extract, approve, poll, token, intervalSeconds, timeoutSeconds };
}

function required(reader: OAuthReader, node: YamlNode | null | undefined, field: string): string {
  const before = reader.source.issues.length;
  const value = reader.text(node, field);
  if (value === undefined && reader.source.issues.length === before) {
    reader.source.keyError(
      field.slice(0, field.lastIndexOf(".")),
      `${lastPart(field)} is required`,
    );
  } else if (value === "") {
    reader.source.error(field, node, "must not be empty");
  }
  return value ?? "";
}

function readExtract(
  reader: OAuthReader,
  node: YamlNode | null | undefined,
  field: string,
): Map<string, string> {
  const extract = new Map<string, string>();
  const entries = reader.source.map(node, field);
  if (entries.length > OAUTH_LIMITS.extractFields) {
    reader.source.error(field, node, `has more than ${OAUTH_LIMITS.extractFields} fields`);
  }
  for (const [name, value] of entries) {
    if (!EXTRACT_FIELD.test(name) || name === CLIENT_ID_PLACEHOLDER) {
      reader.source.keyError(
        `${field}.${name}`,
        `"${name}" is not a field name (lower-case letters, digits, _; not client_id)`,
      );
    }
    extract.set(name, jsonKey(reader, value, `${field}.${name}`));
  }
  return extract;
}

function jsonKey(reader: OAuthReader, node: YamlNode | null | undefined, field: string): string {
  const key = required(reader, node, field);
  if (key.length > OAUTH_LIMITS.jsonKeyLength) {
    reader.source.error(field, node, `is longer than ${OAUTH_LIMITS.jsonKeyLength} characters`);
  }
  return key;
}

function readRequest(
  reader: OAuthReader,
  node: YamlNode | null | undefined,
  field: string,
  options: { methods: boolean; placeholders: ReadonlySet<string> },
): OAuthRequest {
  const s = reader.source;
  const known = options.methods ? ["method", "url", "headers"] : ["url", "headers"];
  const fields =
    node == null ? new Map<string, YamlNode | null>() : reader.fieldsOf(node, field, known);
  if (node == null)
    s.keyError(field.slice(0, field.lastIndexOf(".")), `${lastPart(field)} is required`);
  let method: OAuthRequest["method"] = options.methods ? "POST" : "GET";
  const methodText = reader.text(fields.get("method"), `${field}.method`);
  if (methodText !== undefined) {
    const upper = methodText.toUpperCase();
    if (upper === "GET" || upper === "POST") method = upper;
    else s.error(`${field}.method`, fields.get("method"), `"${methodText}" is not GET or POST`);
  }
  const url = node == null ? "" : required(reader, fields.get("url"), `${field}.url`);
  checkUrl(reader, url, fields.get("url"), `${field}.url`, options.placeholders);
  const headers = new Map<string, string>();
  const headerEntries = s.map(fields.get("headers"), `${field}.headers`);
  if (headerEntries.length > OAUTH_LIMITS.headers) {
    s.error(
      `${field}.headers`,
      fields.get("headers"),
      `has more than ${OAUTH_LIMITS.headers} headers`,
    );
  }
  for (const [name, valueNode] of headerEntries) {
    const headerField = `${field}.headers.${name}`;
    if (!HEADER_NAME.test(name)) {
      s.keyError(headerField, `"${name}" is not a header name`);
    } else if (RESERVED_HEADERS.has(name.toLowerCase())) {
      s.keyError(headerField, `the header "${name}" is set by the box, not by packages`);
    }
    const value = reader.text(valueNode, headerField) ?? "";
    // Tabs pass the package's string check but have no place in a header a package writes.
    if (value.includes("\t"))
      s.error(headerField, valueNode, "contains a control character (U+0009)");
    if (value.length > OAUTH_LIMITS.headerValueLength) {
      s.error(
        headerField,
        valueNode,
        `is longer than ${OAUTH_LIMITS.headerValueLength} characters`,
      );
    }
    checkPlaceholders(reader, value, valueNode, headerField, options.placeholders);
    headers.set(name, value);
  }
  return { method, url, headers };
}

function checkUrl(
  reader: OAuthReader,
  url: string,
  node: YamlNode | null | undefined,
  field: string,
  placeholders: ReadonlySet<string>,
): void {
  if (url === "") return;
  if (url.length > OAUTH_LIMITS.urlLength) {
    reader.source.error(field, node, `is longer than ${OAUTH_LIMITS.urlLength} characters`);
    return;
  }
  if (!checkPlaceholders(reader, url, node, field, placeholders)) return;
  const problem = httpsUrlProblem(fillPlaceholders(url, () => "x", encodeURIComponent));
  if (problem) reader.source.error(field, node, problem);
}

/** Unknown or malformed placeholders, reported at the value; true when there are none. */
function checkPlaceholders(
  reader: OAuthReader,
  text: string,
  node: YamlNode | null | undefined,
  field: string,
  allowed: ReadonlySet<string>,
): boolean {
  const problem = placeholderProblem(text, allowed);
  if (problem) reader.source.errorWithin(field, node, problem.at, problem.message);
  return problem === undefined;
}

/**
 * The first placeholder in `text` other than `allowed`, or a stray `{{`/`}}`:
 * what is wrong and the text it is at. Undefined when fine.
 */
export function placeholderProblem(
  text: string,
  allowed: ReadonlySet<string>,
): { message: string; at: string } | undefined {
  for (const match of text.matchAll(PLACEHOLDER)) {
    const name = match[1] ?? "";
    if (!allowed.has(name)) {
      const known = [...allowed].map((a) => `{{${a}}}`).join(", ");
      return { message: `unknown placeholder "{{${name}}}" (known here: ${known})`, at: match[0] };
    }
  }
  const stray = /\{\{|\}\}/.exec(text.replace(PLACEHOLDER, (whole) => " ".repeat(whole.length)));
  return stray ? { message: "has an unclosed {{ or a stray }}", at: stray[0] } : undefined;
}

/**
 * Replaces each `{{name}}` with `encode(value(name))`. Callers check the
 * names first (`placeholderProblem`); `value` sees only those.
 */
export function fillPlaceholders(
  text: string,
  value: (name: string) => string,
  encode: (value: string) => string,
): string {
  return text.replace(PLACEHOLDER, (_whole, name: string) => encode(value(name)));
}

/** Why `url` may not be requested or opened: not https, credentials, no host. Undefined when fine. */
export function httpsUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url}" is not a URL`;
  }
  if (parsed.protocol !== "https:") return `"${url}" is not an https URL`;
  if (parsed.username !== "" || parsed.password !== "")
    return "must not hold a user name or password";
  if (parsed.hostname === "") return `"${url}" names no host`;
  return undefined;
}

function duration(
  reader: OAuthReader,
  node: YamlNode | null | undefined,
  field: string,
  bounds: { fallback: number; min: number; max: number },
): number {
  const text = reader.text(node, field);
  if (text === undefined) return bounds.fallback;
  const seconds = parseDuration(text);
  if (seconds === undefined) {
    reader.source.error(field, node, `"${text}" is not a duration (a number with s, m, h or d)`);
    return bounds.fallback;
  }
  if (seconds < bounds.min || seconds > bounds.max) {
    reader.source.error(field, node, `must be between ${bounds.min}s and ${bounds.max}s`);
  }
  return seconds;
}

function lastPart(field: string): string {
  return field.slice(field.lastIndexOf(".") + 1);
}
