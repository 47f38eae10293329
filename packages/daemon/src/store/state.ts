/**
 * GitOps records: the state repository followed, the commits seen, what the
 * last applied one declares, and the secrets answers may name.
 */
import type { ManagedObject, StateApplyView, StateObjectKind } from "@townos/api";
import type { Clock } from "../clock.js";
import { sql, type Db } from "./database.js";

/** The state repository as configured (credentials included: never shown). */
export interface StateSource {
  url: string;
  branch: string | null;
  username: string | null;
  password: string | null;
  intervalSeconds: number;
  /** The webhook's secret. */
  hookToken: string;
  createdAt: number;
}

interface SourceRow {
  url: string;
  branch: string | null;
  username: string | null;
  password: string | null;
  interval_seconds: number;
  hook_token: string;
  created_at: number;
}

interface CommitRow {
  commit_id: string;
  author: string | null;
  message: string | null;
  result: StateApplyView["result"];
  error: string | null;
  changes: string;
  at: number;
}

/** Commits kept in the history. */
const MAX_COMMITS = 200;

export class StateRecords {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  source(): StateSource | undefined {
    const row = sql(this.db, "SELECT * FROM state_source WHERE id = 1").get() as
      SourceRow | undefined;
    return (
      row && {
        url: row.url,
        branch: row.branch,
        username: row.username,
        password: row.password,
        intervalSeconds: row.interval_seconds,
        hookToken: row.hook_token,
        createdAt: row.created_at,
      }
    );
  }

  /** Sets the source; its hook token is kept when there was one. */
  setSource(source: Omit<StateSource, "createdAt">): void {
    sql(
      this.db,
      `INSERT INTO state_source (id, url, branch, username, password, interval_seconds, hook_token, created_at)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET url = excluded.url, branch = excluded.branch,
         username = excluded.username, password = excluded.password,
         interval_seconds = excluded.interval_seconds`,
    ).run(
      source.url,
      source.branch,
      source.username,
      source.password,
      source.intervalSeconds,
      source.hookToken,
      this.clock(),
    );
  }

  /** Forgets the source and what it managed; the history stays. */
  unset(): void {
    this.db.transaction(() => {
      sql(this.db, "DELETE FROM state_source").run();
      sql(this.db, "DELETE FROM state_managed").run();
    })();
  }

  recordCommit(entry: Omit<StateApplyView, "at">): void {
    sql(
      this.db,
      "INSERT INTO state_commits (commit_id, author, message, result, error, changes, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ).run(
      entry.commit,
      entry.author,
      entry.message,
      entry.result,
      entry.error,
      JSON.stringify(entry.changes),
      this.clock(),
    );
    sql(
      this.db,
      "DELETE FROM state_commits WHERE id NOT IN (SELECT id FROM state_commits ORDER BY id DESC LIMIT ?)",
    ).run(MAX_COMMITS);
  }

  /** Newest first. */
  history(limit: number): StateApplyView[] {
    const rows = sql(this.db, "SELECT * FROM state_commits ORDER BY id DESC LIMIT ?").all(
      limit,
    ) as CommitRow[];
    return rows.map(commitView);
  }

  /** The newest commit applied (wholly or partly), if any. */
  lastApplied(): StateApplyView | undefined {
    const row = sql(
      this.db,
      "SELECT * FROM state_commits WHERE result != 'refused' ORDER BY id DESC LIMIT 1",
    ).get() as CommitRow | undefined;
    return row && commitView(row);
  }

  managed(): ManagedObject[] {
    return sql(this.db, "SELECT kind, name FROM state_managed ORDER BY kind, name").all() as {
      kind: StateObjectKind;
      name: string;
    }[];
  }

  /** Apps (`repo/name`) to delete with their data when their file goes. */
  purgeOnRemoval(): Set<string> {
    const rows = sql(
      this.db,
      "SELECT name FROM state_managed WHERE kind = 'app' AND purge = 1",
    ).all() as {
      name: string;
    }[];
    return new Set(rows.map((row) => row.name));
  }

  isManaged(kind: StateObjectKind, name: string): boolean {
    return (
      sql(this.db, "SELECT 1 FROM state_managed WHERE kind = ? AND name = ?").get(kind, name) !==
      undefined
    );
  }

  setManaged(objects: readonly ManagedObject[], purge: ReadonlySet<string>): void {
    this.db.transaction(() => {
      sql(this.db, "DELETE FROM state_managed").run();
      const insert = sql(this.db, "INSERT INTO state_managed (kind, name, purge) VALUES (?, ?, ?)");
      for (const object of objects) {
        insert.run(
          object.kind,
          object.name,
          object.kind === "app" && purge.has(object.name) ? 1 : 0,
        );
      }
    })();
  }

  secret(name: string): string | undefined {
    const row = sql(this.db, "SELECT value FROM state_secrets WHERE name = ?").get(name) as
      { value: string } | undefined;
    return row?.value;
  }

  secretNames(): string[] {
    return (
      sql(this.db, "SELECT name FROM state_secrets ORDER BY name").all() as { name: string }[]
    ).map((row) => row.name);
  }

  setSecret(name: string, value: string): void {
    sql(
      this.db,
      "INSERT INTO state_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    ).run(name, value, this.clock());
  }

  /** False when there was none. */
  removeSecret(name: string): boolean {
    return sql(this.db, "DELETE FROM state_secrets WHERE name = ?").run(name).changes > 0;
  }
}

function commitView(row: CommitRow): StateApplyView {
  return {
    commit: row.commit_id,
    author: row.author,
    message: row.message,
    result: row.result,
    error: row.error,
    changes: JSON.parse(row.changes) as string[],
    at: row.at,
  };
}
