import { TownError } from "@townos/format";
import type { BackupTargetKind } from "@townos/api";
import type { Clock } from "../clock.js";
import type { BackupTargetConfig } from "../backup/types.js";
import { sql, type Db } from "./database.js";

/** A target's last check or run. */
export interface BackupTargetStatus {
  ok: boolean;
  error: string | null;
  at: number;
}

/** A configured target as the store keeps it (secrets included: never shown as they are). */
export interface BackupTargetRecord extends BackupTargetConfig {
  status: BackupTargetStatus | null;
  createdAt: number;
}

interface Row {
  name: string;
  kind: string;
  location: string;
  password: string | null;
  env: string;
  status_ok: number | null;
  status_error: string | null;
  status_at: number | null;
  created_at: number;
}

/**
 * The configured backup targets (desired state). Names and locations are
 * checked by the caller (`backup/targets/index.ts`) before they get here.
 */
export class BackupTargets {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /** @throws TownError `conflict` when the name is taken */
  add(config: BackupTargetConfig): BackupTargetRecord {
    return this.db.transaction(() => {
      if (this.get(config.name)) {
        throw new TownError("conflict", `a backup target named "${config.name}" exists already`, {
          issues: [{ field: "name", message: "taken" }],
        });
      }
      sql(
        this.db,
        "INSERT INTO backup_targets (name, kind, location, password, env, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      ).run(
        config.name,
        config.kind,
        config.location,
        config.password,
        JSON.stringify(config.env),
        this.clock(),
      );
      return this.require(config.name);
    })();
  }

  /** Undefined when there is none. */
  get(name: string): BackupTargetRecord | undefined {
    const row = sql(this.db, "SELECT * FROM backup_targets WHERE name = ?").get(name) as
      Row | undefined;
    return row && toRecord(row);
  }

  /** @throws TownError `not_found` */
  require(name: string): BackupTargetRecord {
    const record = this.get(name);
    if (!record) throw new TownError("not_found", `there is no backup target "${name}"`);
    return record;
  }

  /** Sorted by name. */
  list(): BackupTargetRecord[] {
    return (sql(this.db, "SELECT * FROM backup_targets ORDER BY name").all() as Row[]).map(
      toRecord,
    );
  }

  /** False when there was none. */
  remove(name: string): boolean {
    return sql(this.db, "DELETE FROM backup_targets WHERE name = ?").run(name).changes > 0;
  }

  /** Records the outcome of a check or run now. False when the target is gone meanwhile. */
  recordStatus(name: string, ok: boolean, error: string | null): boolean {
    return (
      sql(
        this.db,
        "UPDATE backup_targets SET status_ok = ?, status_error = ?, status_at = ? WHERE name = ?",
      ).run(ok ? 1 : 0, ok ? null : error, this.clock(), name).changes > 0
    );
  }
}

function toRecord(row: Row): BackupTargetRecord {
  return {
    name: row.name,
    kind: row.kind as BackupTargetKind,
    location: row.location,
    password: row.password,
    env: parseEnv(row.env),
    status:
      row.status_at === null
        ? null
        : { ok: row.status_ok === 1, error: row.status_error, at: row.status_at },
    createdAt: row.created_at,
  };
}

function parseEnv(text: string): Record<string, string> {
  const value: unknown = JSON.parse(text);
  const env: Record<string, string> = {};
  if (typeof value === "object" && value !== null) {
    for (const [key, entry] of Object.entries(value)) {
      if (typeof entry === "string") env[key] = entry;
    }
  }
  return env;
}
