import type { TownError } from "@townos/format";
import { sourceKey } from "../auth/throttle.js";
import type { Clock } from "../clock.js";
import { redact, redactText } from "../redact.js";
import { sql, type Db } from "./database.js";

export interface AuditEntry {
  id: number;
  at: number;
  username: string | null;
  action: string;
  target: string;
  detail: Record<string, unknown>;
  /** `success`, or the error code of the failure. */
  outcome: string;
  error: string | null;
  source: string;
}

export interface AuditRecord {
  accountId: number | null;
  username: string | null;
  action: string;
  target: string;
  detail: unknown;
  outcome: string;
  error: string | null;
  source: string;
}

export interface AuditQuery {
  offset: number;
  limit: number;
  /** Matches action, target, username or error text. */
  search?: string | undefined;
  action?: string | undefined;
  username?: string | undefined;
  outcome?: "success" | "failure" | undefined;
  order: "asc" | "desc";
}

/** The most any field of a row may hold: anonymous callers choose some of them. */
const MAX_CHARS = { username: 64, action: 64, target: 256, outcome: 64, error: 1024, source: 64 };
const MAX_DETAIL_CHARS = 8192;
/** Rows kept at most, whatever the retention: a bound on the disk the log takes. */
export const MAX_AUDIT_ROWS = 100_000;
/** Rows recorded per anonymous source and minute; the rest are counted in one summary row. */
export const ANONYMOUS_ROWS_PER_MINUTE = 20;
const MINUTE_MS = 60_000;
/** Anonymous sources tracked at most (bounded memory); the oldest are summarised first. */
const MAX_ANONYMOUS_SOURCES = 10_000;

export interface AuditLimits {
  maxRows?: number;
  anonymousRowsPerMinute?: number;
}

interface AnonymousWindow {
  start: number;
  recorded: number;
  suppressed: number;
}

/** Control characters out, and at most `max` characters. */
export function bound(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is replaced
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "\ufffd");
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

/**
 * What is recorded of a request whose input was refused as invalid: only the
 * names of the fields that were wrong, never the values — they are whatever
 * an anonymous caller chose to send.
 */
export function invalidInputDetail(failure: TownError | undefined): object | undefined {
  if (failure?.code !== "invalid_argument" && failure?.code !== "payload_too_large")
    return undefined;
  return {
    invalid: failure.issues
      .slice(0, 16)
      .map((issue) => bound(issue.field ?? issue.question ?? "", 64)),
  };
}

/**
 * Who changed what, when, and how it ended. Append-only, with every field
 * bounded; anonymous sources get a few rows a minute, the rest are counted;
 * `prune` drops rows past the retention and beyond the row cap.
 */
export class AuditLog {
  private readonly maxRows: number;
  private readonly anonymousRowsPerMinute: number;
  private readonly anonymous = new Map<string, AnonymousWindow>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    limits: AuditLimits = {},
  ) {
    this.maxRows = limits.maxRows ?? MAX_AUDIT_ROWS;
    this.anonymousRowsPerMinute = limits.anonymousRowsPerMinute ?? ANONYMOUS_ROWS_PER_MINUTE;
  }

  record(entry: AuditRecord): void {
    if (entry.accountId === null && !this.admitAnonymous(entry.source)) return;
    this.insert(entry);
  }

  private insert(entry: AuditRecord): void {
    let detail = JSON.stringify(redact(entry.detail ?? {}));
    if (detail.length > MAX_DETAIL_CHARS) {
      detail = JSON.stringify({
        truncated: true,
        chars: detail.length,
        start: detail.slice(0, 1024),
      });
    }
    sql(
      this.db,
      `INSERT INTO audit (at, account_id, username, action, target, detail, outcome, error, source)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      this.clock(),
      entry.accountId,
      entry.username === null ? null : bound(entry.username, MAX_CHARS.username),
      bound(entry.action, MAX_CHARS.action),
      bound(entry.target, MAX_CHARS.target),
      detail,
      bound(entry.outcome, MAX_CHARS.outcome),
      // Redacted whole, then cut: a cut could hide where a URL's credentials end.
      entry.error === null ? null : bound(redactText(entry.error), MAX_CHARS.error),
      bound(entry.source, MAX_CHARS.source),
    );
  }

  /** Whether an anonymous row from `source` is recorded; the others are counted for the summary. */
  private admitAnonymous(source: string): boolean {
    const key = sourceKey(source);
    const now = this.clock();
    let window = this.anonymous.get(key);
    if (!window || now - window.start >= MINUTE_MS) {
      if (window) this.summarise(key, window);
      window = { start: now, recorded: 0, suppressed: 0 };
    }
    // Re-inserted so that the map's order is least recently seen first.
    this.anonymous.delete(key);
    this.anonymous.set(key, window);
    for (const [oldKey, old] of this.anonymous) {
      if (this.anonymous.size <= MAX_ANONYMOUS_SOURCES) break;
      this.summarise(oldKey, old);
      this.anonymous.delete(oldKey);
    }
    if (window.recorded < this.anonymousRowsPerMinute) {
      window.recorded++;
      return true;
    }
    window.suppressed++;
    return false;
  }

  /** Writes the summaries of anonymous minutes that started before `before` (all: at stop). */
  summariseAnonymous(before = Infinity): void {
    for (const [key, window] of this.anonymous) {
      if (window.start > before) continue;
      this.summarise(key, window);
      this.anonymous.delete(key);
    }
  }

  private summarise(key: string, window: AnonymousWindow): void {
    if (window.suppressed === 0) return;
    this.insert({
      accountId: null,
      username: null,
      action: "audit.suppressed",
      target: key,
      detail: { count: window.suppressed, from: window.start, to: window.start + MINUTE_MS },
      outcome: "rate_limited",
      error: `${window.suppressed} more anonymous requests from ${key} within a minute were not recorded one by one`,
      source: key,
    });
  }

  /**
   * Writes the summaries of anonymous minutes that are over, then drops rows
   * older than `retentionMs` and the oldest beyond the row cap. Returns the rows dropped.
   */
  prune(retentionMs: number): number {
    const now = this.clock();
    this.summariseAnonymous(now - MINUTE_MS);
    const old = sql(this.db, "DELETE FROM audit WHERE at < ?").run(now - retentionMs).changes;
    const over = sql(
      this.db,
      "DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?)",
    ).run(this.maxRows).changes;
    return old + over;
  }

  search(query: AuditQuery): { items: AuditEntry[]; total: number } {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (query.search) {
      where.push(
        "(action LIKE ? ESCAPE '\\' OR target LIKE ? ESCAPE '\\' OR username LIKE ? ESCAPE '\\' OR error LIKE ? ESCAPE '\\')",
      );
      const like = `%${query.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      params.push(like, like, like, like);
    }
    if (query.action) {
      where.push("action = ?");
      params.push(query.action);
    }
    if (query.username) {
      where.push("username = ? COLLATE NOCASE");
      params.push(query.username);
    }
    if (query.outcome)
      where.push(query.outcome === "success" ? "outcome = 'success'" : "outcome <> 'success'");
    const clause = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
    const total = (
      sql(this.db, `SELECT COUNT(*) AS n FROM audit ${clause}`).get(...params) as { n: number }
    ).n;
    const rows = sql(
      this.db,
      `SELECT * FROM audit ${clause} ORDER BY id ${query.order === "asc" ? "ASC" : "DESC"} LIMIT ? OFFSET ?`,
    ).all(...params, query.limit, query.offset) as {
      id: number;
      at: number;
      username: string | null;
      action: string;
      target: string;
      detail: string;
      outcome: string;
      error: string | null;
      source: string;
    }[];
    return {
      total,
      // Named one by one: the row also holds `account_id`, which an entry does not show.
      items: rows.map(({ id, at, username, action, target, detail, outcome, error, source }) => ({
        id,
        at,
        username,
        action,
        target,
        detail: JSON.parse(detail) as Record<string, unknown>,
        outcome,
        error,
        source,
      })),
    };
  }
}
