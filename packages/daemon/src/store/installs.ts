import type { CompiledPackage } from "@townos/format";
import type { Clock } from "../clock.js";
import { sql, type Db } from "./database.js";

/** An installed package as desired state: what should run, from which definition. */
export interface InstallRecord {
  repo: string;
  name: string;
  version: string;
  /** sha256 of the package file the install was made from: a change means an upgrade is offered. */
  definitionHash: string;
  answers: Record<string, string>;
  enabled: boolean;
  /** The compiled plan the runtime applies; null for records made without one. */
  plan: CompiledPackage | null;
  installedAt: number;
}

/** An uninstall still to be carried out: the install is gone, its volumes are not yet dealt with. */
export interface RemovalRecord {
  repo: string;
  name: string;
  /** Delete the volumes instead of moving them aside. */
  purge: boolean;
  /** The plan of the removed install: which volumes it had. */
  plan: CompiledPackage | null;
  requestedAt: number;
}

export type InstallInput = Omit<InstallRecord, "installedAt" | "plan"> & {
  plan?: CompiledPackage | null;
};

interface InstallRow {
  repo: string;
  name: string;
  version: string;
  definition_hash: string;
  answers: string;
  enabled: number;
  plan: string;
  installed_at: number;
}

interface RemovalRow {
  repo: string;
  name: string;
  purge: number;
  plan: string;
  requested_at: number;
}

export class Installs {
  /** Bumped on every change, so readers can cache what they derive from installs. */
  generation = 0;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  list(): InstallRecord[] {
    return (sql(this.db, "SELECT * FROM installs ORDER BY repo, name").all() as InstallRow[]).map(
      toRecord,
    );
  }

  get(repo: string, name: string): InstallRecord | undefined {
    const row = sql(this.db, "SELECT * FROM installs WHERE repo = ? AND name = ?").get(
      repo,
      name,
    ) as InstallRow | undefined;
    return row && toRecord(row);
  }

  /**
   * Records (or replaces) the desired state of one installed package. A
   * pending removal of the same app is dropped: installing again wins.
   */
  put(install: InstallInput): InstallRecord {
    this.db.transaction(() => {
      sql(this.db, "DELETE FROM app_removals WHERE repo = ? AND name = ?").run(
        install.repo,
        install.name,
      );
      sql(
        this.db,
        `INSERT INTO installs (repo, name, version, definition_hash, answers, enabled, plan, installed_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (repo, name) DO UPDATE SET version = excluded.version,
             definition_hash = excluded.definition_hash, answers = excluded.answers,
             enabled = excluded.enabled, plan = excluded.plan`,
      ).run(
        install.repo,
        install.name,
        install.version,
        install.definitionHash,
        JSON.stringify(install.answers),
        install.enabled ? 1 : 0,
        JSON.stringify(install.plan ?? null),
        this.clock(),
      );
    })();
    this.generation += 1;
    const record = this.get(install.repo, install.name);
    if (!record) throw new Error(`install ${install.repo}/${install.name} vanished while written`);
    return record;
  }

  /**
   * Replaces the install by a pending removal, in one transaction, so a crash
   * leaves either the app or the intent to remove it. False when not installed.
   */
  remove(repo: string, name: string, purge: boolean): boolean {
    const removed = this.db.transaction(() => {
      const install = this.get(repo, name);
      if (!install) return false;
      sql(this.db, "DELETE FROM installs WHERE repo = ? AND name = ?").run(repo, name);
      sql(
        this.db,
        `INSERT INTO app_removals (repo, name, purge, plan, requested_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (repo, name) DO UPDATE SET purge = excluded.purge, plan = excluded.plan,
             requested_at = excluded.requested_at`,
      ).run(repo, name, purge ? 1 : 0, JSON.stringify(install.plan), this.clock());
      return true;
    })();
    if (removed) this.generation += 1;
    return removed;
  }

  removals(): RemovalRecord[] {
    return (
      sql(this.db, "SELECT * FROM app_removals ORDER BY repo, name").all() as RemovalRow[]
    ).map(toRemoval);
  }

  removal(repo: string, name: string): RemovalRecord | undefined {
    const row = sql(this.db, "SELECT * FROM app_removals WHERE repo = ? AND name = ?").get(
      repo,
      name,
    ) as RemovalRow | undefined;
    return row && toRemoval(row);
  }

  /** The removal is carried out: forget it and the app's status. */
  finishRemoval(repo: string, name: string): void {
    this.db.transaction(() => {
      sql(this.db, "DELETE FROM app_removals WHERE repo = ? AND name = ?").run(repo, name);
      sql(this.db, "DELETE FROM app_status WHERE repo = ? AND name = ?").run(repo, name);
    })();
  }

  /** Records the outcome of a reconcile: the error text, or null when it went well. */
  recordOutcome(repo: string, name: string, error: string | null): void {
    sql(
      this.db,
      `INSERT INTO app_status (repo, name, last_error, attempted_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (repo, name) DO UPDATE SET last_error = excluded.last_error,
           attempted_at = excluded.attempted_at`,
    ).run(repo, name, error, this.clock());
  }

  lastError(repo: string, name: string): string | null {
    const row = sql(this.db, "SELECT last_error FROM app_status WHERE repo = ? AND name = ?").get(
      repo,
      name,
    ) as { last_error: string | null } | undefined;
    return row?.last_error ?? null;
  }
}

function toRecord(row: InstallRow): InstallRecord {
  return {
    repo: row.repo,
    name: row.name,
    version: row.version,
    definitionHash: row.definition_hash,
    answers: JSON.parse(row.answers) as Record<string, string>,
    enabled: row.enabled === 1,
    plan: JSON.parse(row.plan) as CompiledPackage | null,
    installedAt: row.installed_at,
  };
}

function toRemoval(row: RemovalRow): RemovalRecord {
  return {
    repo: row.repo,
    name: row.name,
    purge: row.purge === 1,
    plan: JSON.parse(row.plan) as CompiledPackage | null,
    requestedAt: row.requested_at,
  };
}
