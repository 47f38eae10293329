import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { TownError } from "@townos/format";
import type { Clock } from "../clock.js";
import { sql, type Db } from "../store/database.js";
import type { Account, Accounts } from "./accounts.js";

/** A session ends after this long without a request. */
export const SESSION_IDLE_MS = 7 * 24 * 3600 * 1000;
/** Refreshing `last_seen_at` on every request would write on every read; once a minute is enough. */
const TOUCH_EVERY_MS = 60 * 1000;

export interface Session {
  id: string;
  accountId: number;
  createdAt: number;
  lastSeenAt: number;
  source: string;
  userAgent: string;
}

interface SessionRow {
  id: string;
  account_id: number;
  created_at: number;
  last_seen_at: number;
  source: string;
  user_agent: string;
}

export interface Authenticated {
  account: Account;
  session: Session;
}

/**
 * Signed session tokens: `<session id>.<HMAC of it>`. The signing key is made
 * fresh at every start, so a reboot signs everybody out — as on a box that
 * runs from RAM — and sessions of a previous start are deleted.
 */
export class Sessions {
  private readonly key = randomBytes(32);

  constructor(
    private readonly db: Db,
    private readonly accounts: Accounts,
    private readonly clock: Clock,
  ) {
    sql(db, "DELETE FROM sessions").run();
  }

  issue(account: Account, source: string, userAgent: string): { token: string; session: Session } {
    const id = randomBytes(18).toString("base64url");
    const now = this.clock();
    sql(
      this.db,
      "INSERT INTO sessions (id, account_id, created_at, last_seen_at, source, user_agent) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(id, account.id, now, now, source, userAgent.slice(0, 256));
    return {
      token: `${id}.${this.sign(id)}`,
      session: { id, accountId: account.id, createdAt: now, lastSeenAt: now, source, userAgent },
    };
  }

  private sign(id: string): string {
    return createHmac("sha256", this.key).update(id).digest("base64url");
  }

  /**
   * The account and session a token stands for. Fails closed: a bad
   * signature, an unknown or idle session, or a disabled account all
   * answer `unauthenticated`.
   */
  verify(token: string): Authenticated {
    const dot = token.indexOf(".");
    const id = dot > 0 ? token.slice(0, dot) : "";
    const given = Buffer.from(dot > 0 ? token.slice(dot + 1) : "");
    const expected = Buffer.from(this.sign(id));
    if (id === "" || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new TownError("unauthenticated", "the session token is not valid; sign in again");
    }
    const row = sql(this.db, "SELECT * FROM sessions WHERE id = ?").get(id) as
      SessionRow | undefined;
    const now = this.clock();
    if (!row || now - row.last_seen_at > SESSION_IDLE_MS) {
      if (row) this.revoke(row.id);
      throw new TownError("unauthenticated", "the session has ended; sign in again");
    }
    const account = this.accounts.byId(row.account_id);
    if (!account || account.disabled)
      throw new TownError("unauthenticated", "this account is disabled");
    if (now - row.last_seen_at > TOUCH_EVERY_MS) {
      sql(this.db, "UPDATE sessions SET last_seen_at = ? WHERE id = ?").run(now, id);
      row.last_seen_at = now;
    }
    return { account, session: toSession(row) };
  }

  listFor(accountId: number): Session[] {
    const cutoff = this.clock() - SESSION_IDLE_MS;
    return (
      sql(
        this.db,
        "SELECT * FROM sessions WHERE account_id = ? AND last_seen_at >= ? ORDER BY last_seen_at DESC",
      ).all(accountId, cutoff) as SessionRow[]
    ).map(toSession);
  }

  /** Revokes one of an account's own sessions. */
  revokeOwn(accountId: number, id: string): void {
    const result = sql(this.db, "DELETE FROM sessions WHERE id = ? AND account_id = ?").run(
      id,
      accountId,
    );
    if (result.changes === 0) throw new TownError("not_found", "there is no such session");
  }

  /** Ends every session of an account, e.g. after its password changed. */
  revokeAllFor(accountId: number): number {
    return sql(this.db, "DELETE FROM sessions WHERE account_id = ?").run(accountId).changes;
  }

  revoke(id: string): void {
    sql(this.db, "DELETE FROM sessions WHERE id = ?").run(id);
  }

  /** Drops idle sessions; called now and then, not needed for correctness. */
  sweep(): number {
    return sql(this.db, "DELETE FROM sessions WHERE last_seen_at < ?").run(
      this.clock() - SESSION_IDLE_MS,
    ).changes;
  }
}

function toSession(row: SessionRow): Session {
  return {
    id: row.id,
    accountId: row.account_id,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    source: row.source,
    userAgent: row.user_agent,
  };
}
