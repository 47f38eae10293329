/**
 * Redaction: the one helper for everything the daemon shows or stores that
 * may carry a secret — reconcile steps and progress, errors (`lastError`,
 * problem answers), log lines and the audit log. It removes the credentials,
 * query strings and fragments of URLs, the values of secret answers (given
 * by the caller, from the plan), and the values of secret-looking keys.
 */
import { isTownError, TownError, type TownErrorOptions } from "@townos/format";

export const REDACTED = "[redacted]";

const SECRET_KEY = /pass|secret|token|credential|key/i;
/** A URL written in free text: a scheme, `://`, up to white space or a quote, less trailing punctuation. */
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]*[^\s"'<>`:,.;)\]]/gi;
const MAX_DEPTH = 8;

/** `https://user:pw@host/x.git?token=t#f` → `https://[redacted]@host/x.git?[redacted]#[redacted]`. */
export function redactUrl(url: string): string {
  const start = url.indexOf("://") + 3;
  if (start < 3) return url;
  const authorityEnd = firstOf(url, ["/", "?", "#"], start);
  const at = url.lastIndexOf("@", authorityEnd - 1);
  const authority =
    at >= start ? `${REDACTED}${url.slice(at, authorityEnd)}` : url.slice(start, authorityEnd);
  let rest = url.slice(authorityEnd);
  const hash = rest.indexOf("#");
  if (hash !== -1) rest = `${rest.slice(0, hash)}#${REDACTED}`;
  const query = rest.indexOf("?");
  if (query !== -1) {
    const after = rest.indexOf("#", query);
    rest = `${rest.slice(0, query)}?${REDACTED}${after === -1 ? "" : rest.slice(after)}`;
  }
  return `${url.slice(0, start)}${authority}${rest}`;
}

/**
 * Free text with every secret value (as written and percent-encoded)
 * replaced in one pass, then every URL in it redacted.
 */
export function redactText(text: string, secrets: readonly string[] = []): string {
  const forms = secretForms(secrets);
  let out = text;
  if (forms.length > 0) {
    const pattern = forms.map((form) => form.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
    out = out.replace(new RegExp(pattern, "g"), REDACTED);
  }
  return out.replace(URL_IN_TEXT, redactUrl);
}

/** Whether the text holds one of the secret values (as written or percent-encoded). */
export function containsSecret(text: string, secrets: readonly string[]): boolean {
  return secretForms(secrets).some((form) => text.includes(form));
}

/** The non-empty secrets as written and percent-encoded, longest first. */
function secretForms(secrets: readonly string[]): string[] {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret === "") continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
  }
  return [...forms].sort((a, b) => b.length - a.length);
}

/**
 * A structured value (an audit detail, a log's fields) with the values of
 * secret-looking keys replaced at any depth and every string redacted as
 * text.
 */
export function redact(value: unknown, secrets: readonly string[] = [], depth = 0): unknown {
  if (depth > MAX_DEPTH) return "…";
  if (typeof value === "string") return redactText(value, secrets);
  if (Array.isArray(value)) return value.map((item) => redact(item, secrets, depth + 1));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [
        key,
        SECRET_KEY.test(key) && inner !== undefined && inner !== null && inner !== ""
          ? REDACTED
          : redact(inner, secrets, depth + 1),
      ]),
    );
  }
  return value;
}

/**
 * The error as a TownError with its message and issues redacted, keeping
 * its code (so retries behave the same) and leaving out its cause, which
 * holds the text unredacted.
 */
export function redactError(error: unknown, secrets: readonly string[]): TownError {
  const message = error instanceof Error ? error.message : String(error);
  const options: TownErrorOptions = {};
  if (isTownError(error)) {
    options.issues = error.issues.map((issue) => ({
      ...issue,
      message: redactText(issue.message, secrets),
    }));
    if (error.retryAfter !== undefined) options.retryAfter = error.retryAfter;
  }
  return new TownError(
    isTownError(error) ? error.code : "internal",
    redactText(message, secrets),
    options,
  );
}

function firstOf(text: string, needles: readonly string[], from: number): number {
  let first = text.length;
  for (const needle of needles) {
    const at = text.indexOf(needle, from);
    if (at !== -1 && at < first) first = at;
  }
  return first;
}
