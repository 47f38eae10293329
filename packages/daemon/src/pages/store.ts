/**
 * The pages table: what each page is (source, build, domains, webhook token)
 * and which versions are live and kept for rollback. The content itself is
 * on disk (`content.ts`); a version recorded here exists there.
 */
import { randomBytes } from "node:crypto";
import type { PageBuild, PageVersion } from "@townos/api";
import { TownError } from "@townos/format";
import type { Clock } from "../clock.js";
import { sql, type Db } from "../store/database.js";
import type { PageSource } from "./types.js";

export interface PageRecord {
  name: string;
  source: PageSource;
  build: PageBuild | null;
  domains: string[];
  /** The webhook's secret (32 random bytes, hex). */
  hookToken: string;
  current: PageVersion | null;
  previous: PageVersion | null;
  /** Why the last deploy failed; null after a success. */
  lastError: string | null;
  /** What the current version's deploy left out. */
  skipped: string[];
  createdAt: number;
  updatedAt: number | null;
}

interface PageRow {
  name: string;
  source: string;
  build: string | null;
  domains: string;
  hook_token: string;
  current: string | null;
  previous: string | null;
  last_error: string | null;
  skipped: string;
  created_at: number;
  updated_at: number | null;
}

export class PageStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  list(): PageRecord[] {
    return (sql(this.db, "SELECT * FROM pages ORDER BY name").all() as PageRow[]).map(fromRow);
  }

  get(name: string): PageRecord | undefined {
    const row = sql(this.db, "SELECT * FROM pages WHERE name = ?").get(name) as PageRow | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  /** @throws `not_found` */
  require(name: string): PageRecord {
    const page = this.get(name);
    if (page === undefined) throw new TownError("not_found", `there is no page "${name}"`);
    return page;
  }

  /** @throws `conflict` when the name is taken */
  create(input: {
    name: string;
    source: PageSource;
    build: PageBuild | null;
    domains: string[];
  }): PageRecord {
    if (this.get(input.name) !== undefined)
      throw new TownError("conflict", `there is already a page "${input.name}"`);
    sql(
      this.db,
      "INSERT INTO pages (name, source, build, domains, hook_token, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(
      input.name,
      JSON.stringify(input.source),
      input.build === null ? null : JSON.stringify(input.build),
      JSON.stringify(input.domains),
      randomBytes(32).toString("hex"),
      this.clock(),
    );
    return this.require(input.name);
  }

  /** A new version went live: the one it replaces is kept for rollback. */
  published(name: string, version: PageVersion, skipped: readonly string[]): PageRecord {
    const page = this.require(name);
    sql(
      this.db,
      "UPDATE pages SET current = ?, previous = ?, last_error = NULL, skipped = ?, updated_at = ? WHERE name = ?",
    ).run(
      JSON.stringify(version),
      page.current === null ? null : JSON.stringify(page.current),
      JSON.stringify(skipped),
      this.clock(),
      name,
    );
    return this.require(name);
  }

  /** The previous version goes live again; the current one becomes the previous. @throws `failed_precondition` */
  rolledBack(name: string): PageRecord {
    const page = this.require(name);
    if (page.previous === null)
      throw new TownError("conflict", `page "${name}" has no previous version`);
    sql(
      this.db,
      "UPDATE pages SET current = ?, previous = ?, last_error = NULL, skipped = '[]', updated_at = ? WHERE name = ?",
    ).run(
      JSON.stringify(page.previous),
      page.current === null ? null : JSON.stringify(page.current),
      this.clock(),
      name,
    );
    return this.require(name);
  }

  failed(name: string, error: string | null): void {
    sql(this.db, "UPDATE pages SET last_error = ? WHERE name = ?").run(error, name);
  }

  setDomains(name: string, domains: readonly string[]): PageRecord {
    sql(this.db, "UPDATE pages SET domains = ? WHERE name = ?").run(JSON.stringify(domains), name);
    return this.require(name);
  }

  remove(name: string): boolean {
    return sql(this.db, "DELETE FROM pages WHERE name = ?").run(name).changes > 0;
  }
}

function fromRow(row: PageRow): PageRecord {
  return {
    name: row.name,
    source: JSON.parse(row.source) as PageSource,
    build: row.build === null ? null : (JSON.parse(row.build) as PageBuild),
    domains: JSON.parse(row.domains) as string[],
    hookToken: row.hook_token,
    current: row.current === null ? null : (JSON.parse(row.current) as PageVersion),
    previous: row.previous === null ? null : (JSON.parse(row.previous) as PageVersion),
    lastError: row.last_error,
    skipped: JSON.parse(row.skipped) as string[],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
