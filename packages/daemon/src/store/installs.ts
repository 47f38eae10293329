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
  installedAt: number;
}

interface InstallRow {
  repo: string;
  name: string;
  version: string;
  definition_hash: string;
  answers: string;
  enabled: number;
  installed_at: number;
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

  /** Records (or replaces) the desired state of one installed package. */
  put(install: Omit<InstallRecord, "installedAt">): InstallRecord {
    sql(
      this.db,
      `INSERT INTO installs (repo, name, version, definition_hash, answers, enabled, installed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (repo, name) DO UPDATE SET version = excluded.version,
           definition_hash = excluded.definition_hash, answers = excluded.answers, enabled = excluded.enabled`,
    ).run(
      install.repo,
      install.name,
      install.version,
      install.definitionHash,
      JSON.stringify(install.answers),
      install.enabled ? 1 : 0,
      this.clock(),
    );
    this.generation += 1;
    const row = sql(this.db, "SELECT * FROM installs WHERE repo = ? AND name = ?").get(
      install.repo,
      install.name,
    ) as InstallRow;
    return toRecord(row);
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
    installedAt: row.installed_at,
  };
}
