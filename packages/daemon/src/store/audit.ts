import type { Clock } from "../clock.js";
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

const SECRET_KEY = /pass|secret|token|credential|key/i;
const MAX_DETAIL_CHARS = 8192;

/** Replaces the values of secret-looking keys at any depth, so no secret reaches the log. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return "…";
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [
        key,
        SECRET_KEY.test(key) && inner !== undefined && inner !== null && inner !== ""
          ? "[redacted]"
          : redact(inner, depth + 1),
      ]),
    );
  }
  return value;
}

/** Who changed what, when, and how it ended. Append-only. */
export class AuditLog {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  record(entry: AuditRecord): void {
    let detail = JSON.stringify(redact(entry.detail ?? {}));
    if (detail.length > MAX_DETAIL_CHARS)
      detail = JSON.stringify({ truncated: detail.slice(0, MAX_DETAIL_CHARS) });
    sql(
      this.db,
      `INSERT INTO audit (at, account_id, username, action, target, detail, outcome, error, source)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      this.clock(),
      entry.accountId,
      entry.username,
      entry.action,
      entry.target,
      detail,
      entry.outcome,
      entry.error,
      entry.source,
    );
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
      items: rows.map((row) => ({
        ...row,
        detail: JSON.parse(row.detail) as Record<string, unknown>,
      })),
    };
  }
}
