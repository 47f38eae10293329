import { findControlCharacter, TownError } from "@townos/format";
import type { Clock } from "../clock.js";
import { sql, type Db } from "./database.js";

export const DEFAULT_REPOSITORY = {
  name: "default",
  url: "https://github.com/town-os/default-packages",
} as const;

/**
 * Repository names are DNS labels: they appear in `<app>.<repo>.<tld>`. No
 * `--`: it ends the repository part of container names (`town-<repo>--<app>`).
 */
export const REPOSITORY_NAME = /^(?!.*--)[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

export interface RepositoryConfig {
  name: string;
  url: string;
  username: string | null;
  /** Never leaves the daemon: API views carry `hasPassword` instead. */
  password: string | null;
  position: number;
}

export interface RepositoryStatus {
  commit: string | null;
  refreshedAt: number | null;
  attemptedAt: number | null;
  error: string | null;
  changedPackages: string[];
}

interface RepositoryRow {
  name: string;
  url: string;
  username: string | null;
  password: string | null;
  position: number;
}

interface StatusRow {
  commit_id: string | null;
  refreshed_at: number | null;
  attempted_at: number | null;
  error: string | null;
  changed_packages: string;
}

/** The ordered list of package repositories (desired state) and what their last refresh saw. */
export class Repositories {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  list(): RepositoryConfig[] {
    return sql(this.db, "SELECT * FROM repositories ORDER BY position").all() as RepositoryRow[];
  }

  get(name: string): RepositoryConfig {
    const row = sql(this.db, "SELECT * FROM repositories WHERE name = ?").get(name) as
      RepositoryRow | undefined;
    if (!row) throw new TownError("not_found", `there is no repository "${name}"`);
    return row;
  }

  add(input: {
    name: string;
    url: string;
    username?: string | undefined;
    password?: string | undefined;
  }): RepositoryConfig {
    checkRepository(input);
    return this.db.transaction(() => {
      if (sql(this.db, "SELECT 1 FROM repositories WHERE name = ?").get(input.name)) {
        throw new TownError("conflict", `a repository named "${input.name}" exists already`, {
          issues: [{ field: "name", message: "taken" }],
        });
      }
      const position = (
        sql(this.db, "SELECT COUNT(*) AS n FROM repositories").get() as { n: number }
      ).n;
      sql(
        this.db,
        "INSERT INTO repositories (name, url, username, password, position, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      ).run(
        input.name,
        input.url,
        input.username || null,
        input.password || null,
        position,
        this.clock(),
      );
      sql(this.db, "INSERT INTO repository_status (name) VALUES (?)").run(input.name);
      return this.get(input.name);
    })();
  }

  remove(name: string): void {
    this.db.transaction(() => {
      this.get(name);
      sql(this.db, "DELETE FROM repositories WHERE name = ?").run(name);
      this.renumber(this.list().map((repo) => repo.name));
    })();
  }

  /** Moves a repository to a 0-based position; the others keep their order. */
  move(name: string, position: number): RepositoryConfig[] {
    return this.db.transaction(() => {
      const names = this.list().map((repo) => repo.name);
      if (!names.includes(name))
        throw new TownError("not_found", `there is no repository "${name}"`);
      if (!Number.isInteger(position) || position < 0 || position >= names.length) {
        throw new TownError("invalid_argument", `position must be 0-${names.length - 1}`);
      }
      const others = names.filter((other) => other !== name);
      others.splice(position, 0, name);
      this.renumber(others);
      return this.list();
    })();
  }

  private renumber(names: string[]): void {
    // Two steps: positions are not unique-constrained, but a clean 0..n-1 is what readers expect.
    const update = sql(this.db, "UPDATE repositories SET position = ? WHERE name = ?");
    names.forEach((name, index) => update.run(index, name));
  }

  status(name: string): RepositoryStatus {
    const row = sql(this.db, "SELECT * FROM repository_status WHERE name = ?").get(name) as
      StatusRow | undefined;
    return {
      commit: row?.commit_id ?? null,
      refreshedAt: row?.refreshed_at ?? null,
      attemptedAt: row?.attempted_at ?? null,
      error: row?.error ?? null,
      changedPackages: row ? (JSON.parse(row.changed_packages) as string[]) : [],
    };
  }

  recordSuccess(name: string, commit: string, changedPackages: string[]): void {
    const now = this.clock();
    sql(
      this.db,
      `INSERT INTO repository_status (name, commit_id, refreshed_at, attempted_at, error, changed_packages)
         VALUES (?, ?, ?, ?, NULL, ?)
         ON CONFLICT (name) DO UPDATE SET commit_id = excluded.commit_id, refreshed_at = excluded.refreshed_at,
           attempted_at = excluded.attempted_at, error = NULL, changed_packages = excluded.changed_packages`,
    ).run(name, commit, now, now, JSON.stringify(changedPackages));
  }

  recordFailure(name: string, error: string): void {
    sql(
      this.db,
      `INSERT INTO repository_status (name, attempted_at, error) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET attempted_at = excluded.attempted_at, error = excluded.error`,
    ).run(name, this.clock(), error);
  }
}

function checkRepository(input: {
  name: string;
  url: string;
  username?: string | undefined;
  password?: string | undefined;
}): void {
  const issues: { field: string; message: string }[] = [];
  if (!REPOSITORY_NAME.test(input.name)) {
    issues.push({
      field: "name",
      message: "lower-case letters, digits and single - (it becomes part of app names)",
    });
  }
  let url: URL | undefined;
  try {
    url = new URL(input.url);
  } catch {
    issues.push({ field: "url", message: "not a URL" });
  }
  if (url && url.protocol !== "https:" && url.protocol !== "http:") {
    issues.push({ field: "url", message: "only http(s) git URLs are supported" });
  }
  if (url && (url.username || url.password)) {
    issues.push({
      field: "url",
      message: "put credentials in username and password, not in the URL",
    });
  }
  if (input.url.length > 2048) issues.push({ field: "url", message: "too long" });
  for (const field of ["username", "password"] as const) {
    const value = input[field];
    if (value !== undefined && (value.length > 1024 || findControlCharacter(value))) {
      issues.push({ field, message: "too long or holds control characters" });
    }
  }
  if (issues.length > 0) {
    throw new TownError(
      "invalid_argument",
      issues.map((issue) => `${issue.field}: ${issue.message}`).join("; "),
      {
        issues,
      },
    );
  }
}
