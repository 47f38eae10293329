import { TownError, type CompiledPackage } from "@townos/format";
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
  /** Kept running, and started again when the box starts. */
  enabled: boolean;
  /** Should be running now: false once a person stopped it (or disabled it). */
  running: boolean;
  /** The compiled plan the runtime applies; null for records made without one. */
  plan: CompiledPackage | null;
  /** The plan hash whose `post_update` commands are still to run (set by an upgrade). */
  postUpdateFor: string | null;
  /**
   * Volumes taken over from earlier names: uninstalled copies (a failed
   * install moves them aside again) or, after an upgrade, the install's own
   * volumes under the names used before names were injective.
   */
  reused: string[];
  /** Volumes this install made itself: undoing a failed install deletes only these. */
  created: string[];
  /** Host port → exposure, where a person changed it from the default (`defaultExposure`). */
  exposures: Record<string, ExposureLevel>;
  /** Instance → the loopback host port its `http` port is published on for the ingress. */
  ingressPorts: Record<string, number>;
  /** The app's names are in the box's DNS. */
  dnsPublished: boolean;
  installedAt: number;
}

/** Who can reach a published port: the box itself, the home network, or the internet too. */
export type ExposureLevel = "local" | "lan" | "internet";
export const EXPOSURE_LEVELS: readonly ExposureLevel[] = ["local", "lan", "internet"];

/**
 * A port's exposure until the administrator changes it: the home network,
 * whatever the package declares. An `external` port is one the package
 * offers for the internet; only the administrator opens it there (`expose`).
 */
export function defaultExposure(_declared: "external" | "internal"): ExposureLevel {
  return "lan";
}

/** An uninstall still to be carried out: the install is gone, its volumes are not yet dealt with. */
export interface RemovalRecord {
  repo: string;
  name: string;
  /** Delete the volumes instead of moving them aside. */
  purge: boolean;
  /** The plan of the removed install: which volumes it had. */
  plan: CompiledPackage | null;
  /** Volumes moved aside even when purging (ones a failed install had reused). */
  keep: string[];
  /**
   * The only package volumes this removal deletes (those a failed install
   * made), besides `keep`; null: every volume of the plan.
   */
  onlyVolumes: string[] | null;
  /** The version that was installed, recorded with the volumes moved aside. */
  version: string;
  requestedAt: number;
}

/** What the checks of `create` and `replace` are shown: every other app's desired state. */
export interface InstallState {
  installs: InstallRecord[];
  removals: RemovalRecord[];
}

export type InstallInput = Omit<
  InstallRecord,
  | "installedAt"
  | "plan"
  | "running"
  | "postUpdateFor"
  | "reused"
  | "created"
  | "exposures"
  | "ingressPorts"
  | "dnsPublished"
> & {
  plan?: CompiledPackage | null;
  postUpdateFor?: string | null;
  reused?: string[];
  exposures?: Record<string, ExposureLevel>;
  ingressPorts?: Record<string, number>;
  dnsPublished?: boolean;
};

interface InstallRow {
  repo: string;
  name: string;
  version: string;
  definition_hash: string;
  answers: string;
  enabled: number;
  running: number;
  plan: string;
  post_update_for: string | null;
  reused: string;
  created: string;
  exposures: string;
  ingress_ports: string;
  dns_published: number;
  installed_at: number;
}

interface RemovalRow {
  repo: string;
  name: string;
  purge: number;
  plan: string;
  keep: string;
  only_volumes: string | null;
  version: string;
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
   * Records (or replaces) the desired state of one installed package, running
   * when enabled, and saves its answers for that version. A pending removal
   * of the same app is dropped: installing again wins.
   */
  put(install: InstallInput): InstallRecord {
    this.db.transaction(() => {
      this.write(install);
    })();
    return this.written(install);
  }

  /**
   * Records a new install like `put`, in one transaction with the checks
   * that decide it: it is not installed already, and `check` (shown every
   * other install and pending removal) does not throw. Two concurrent
   * installs of one app: the second fails here, before it changes anything.
   * @throws TownError `conflict` when installed already; what `check` throws
   */
  create(install: InstallInput, check: (others: InstallState) => void): InstallRecord {
    this.db.transaction(() => {
      if (this.get(install.repo, install.name)) {
        throw new TownError("conflict", `${install.repo}/${install.name} is installed already`);
      }
      check(this.others(install.repo, install.name));
      this.write(install);
    })();
    return this.written(install);
  }

  /**
   * Replaces an install's desired state (an upgrade), in one transaction with
   * the checks: it is still installed, still the one read as `expected` (no
   * other change to its plan since), and `check` does not throw.
   * @throws TownError `not_found` (uninstalled meanwhile), `conflict`
   *   (changed meanwhile), what `check` throws
   */
  replace(
    install: InstallInput,
    expected: Pick<InstallRecord, "plan" | "version" | "definitionHash">,
    check: (others: InstallState) => void,
  ): InstallRecord {
    this.db.transaction(() => {
      const current = this.get(install.repo, install.name);
      if (!current) {
        throw new TownError("not_found", `${install.repo}/${install.name} is not installed`);
      }
      if (
        current.plan?.hash !== expected.plan?.hash ||
        current.version !== expected.version ||
        current.definitionHash !== expected.definitionHash
      ) {
        throw new TownError(
          "conflict",
          `${install.repo}/${install.name} was changed meanwhile; try again`,
        );
      }
      check(this.others(install.repo, install.name));
      this.write(install);
    })();
    return this.written(install);
  }

  /** Every install and pending removal but those of one app. */
  private others(repo: string, name: string): InstallState {
    const other = (record: { repo: string; name: string }): boolean =>
      record.repo !== repo || record.name !== name;
    return { installs: this.list().filter(other), removals: this.removals().filter(other) };
  }

  private written(install: InstallInput): InstallRecord {
    this.generation += 1;
    const record = this.get(install.repo, install.name);
    if (!record) throw new Error(`install ${install.repo}/${install.name} vanished while written`);
    return record;
  }

  /** The writes of `put`; call inside a transaction. */
  private write(install: InstallInput): void {
    sql(this.db, "DELETE FROM app_removals WHERE repo = ? AND name = ?").run(
      install.repo,
      install.name,
    );
    sql(
      this.db,
      `INSERT INTO installs (repo, name, version, definition_hash, answers, enabled, running,
           plan, post_update_for, reused, exposures, ingress_ports, dns_published, installed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (repo, name) DO UPDATE SET version = excluded.version,
           definition_hash = excluded.definition_hash, answers = excluded.answers,
           enabled = excluded.enabled, running = excluded.running, plan = excluded.plan,
           post_update_for = excluded.post_update_for, reused = excluded.reused,
           exposures = excluded.exposures, ingress_ports = excluded.ingress_ports,
           dns_published = excluded.dns_published`,
    ).run(
      install.repo,
      install.name,
      install.version,
      install.definitionHash,
      JSON.stringify(install.answers),
      install.enabled ? 1 : 0,
      install.enabled ? 1 : 0,
      JSON.stringify(install.plan ?? null),
      install.postUpdateFor ?? null,
      JSON.stringify(install.reused ?? []),
      JSON.stringify(install.exposures ?? {}),
      JSON.stringify(install.ingressPorts ?? {}),
      install.dnsPublished === false ? 0 : 1,
      this.clock(),
    );
    sql(
      this.db,
      `INSERT INTO answers (repo, name, version, answers, saved_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (repo, name, version) DO UPDATE SET answers = excluded.answers,
           saved_at = excluded.saved_at`,
    ).run(
      install.repo,
      install.name,
      install.version,
      JSON.stringify(install.answers),
      this.clock(),
    );
  }

  /** The install made this volume itself (not taken over): an undo may delete it. */
  recordCreatedVolume(repo: string, name: string, volume: string): void {
    sql(
      this.db,
      `UPDATE installs SET created = json_insert(created, '$[#]', ?)
         WHERE repo = ? AND name = ? AND NOT EXISTS (SELECT 1 FROM json_each(created) WHERE value = ?)`,
    ).run(volume, repo, name, volume);
  }

  /** Sets whether the app should run now. False when not installed. */
  setRunning(repo: string, name: string, running: boolean): boolean {
    return this.update(
      "UPDATE installs SET running = ? WHERE repo = ? AND name = ?",
      running ? 1 : 0,
      repo,
      name,
    );
  }

  /** Enabling also starts the app; disabling also stops it. False when not installed. */
  setEnabled(repo: string, name: string, enabled: boolean): boolean {
    return this.update(
      "UPDATE installs SET enabled = ?, running = ? WHERE repo = ? AND name = ?",
      enabled ? 1 : 0,
      enabled ? 1 : 0,
      repo,
      name,
    );
  }

  /** Sets who can reach one published host port. False when not installed. */
  setExposure(repo: string, name: string, hostPort: number, level: ExposureLevel): boolean {
    const install = this.get(repo, name);
    if (!install) return false;
    return this.update(
      "UPDATE installs SET exposures = ? WHERE repo = ? AND name = ?",
      JSON.stringify({ ...install.exposures, [String(hostPort)]: level }),
      repo,
      name,
    );
  }

  /** Publishes or hides the app's names in the box's DNS. False when not installed. */
  setDnsPublished(repo: string, name: string, published: boolean): boolean {
    return this.update(
      "UPDATE installs SET dns_published = ? WHERE repo = ? AND name = ?",
      published ? 1 : 0,
      repo,
      name,
    );
  }

  /** The post_update commands of that plan ran; an upgrade made since keeps its own. */
  finishPostUpdate(repo: string, name: string, planHash: string): void {
    this.update(
      "UPDATE installs SET post_update_for = NULL WHERE repo = ? AND name = ? AND post_update_for = ?",
      repo,
      name,
      planHash,
    );
  }

  /** After boot: enabled apps run again, whatever a person stopped before. */
  startEnabled(): void {
    this.update("UPDATE installs SET running = 1 WHERE enabled = 1 AND running = 0");
  }

  private update(statement: string, ...values: (string | number)[]): boolean {
    const changed = sql(this.db, statement).run(...values).changes > 0;
    if (changed) this.generation += 1;
    return changed;
  }

  /**
   * Replaces the install by a pending removal, in one transaction, so a crash
   * leaves either the app or the intent to remove it. `keep`: volumes moved
   * aside even when purging. `undo`: a failed install is taken back, so only
   * the volumes it made itself are deleted. False when not installed.
   */
  remove(
    repo: string,
    name: string,
    purge: boolean,
    keep: readonly string[] = [],
    undo = false,
  ): boolean {
    const removed = this.db.transaction(() => {
      const install = this.get(repo, name);
      if (!install) return false;
      sql(this.db, "DELETE FROM installs WHERE repo = ? AND name = ?").run(repo, name);
      sql(
        this.db,
        `INSERT INTO app_removals (repo, name, purge, plan, keep, only_volumes, version, requested_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (repo, name) DO UPDATE SET purge = excluded.purge, plan = excluded.plan,
             keep = excluded.keep, only_volumes = excluded.only_volumes,
             version = excluded.version, requested_at = excluded.requested_at`,
      ).run(
        repo,
        name,
        purge ? 1 : 0,
        JSON.stringify(install.plan),
        JSON.stringify(keep),
        undo ? JSON.stringify(install.created) : null,
        install.version,
        this.clock(),
      );
      return true;
    })();
    if (removed) this.generation += 1;
    return removed;
  }

  /** Notes which version a volume moved aside came from. */
  recordUninstalledVolume(volume: string, version: string): void {
    sql(
      this.db,
      `INSERT INTO uninstalled_volumes (name, version, uninstalled_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET version = excluded.version`,
    ).run(volume, version, this.clock());
  }

  /** The version an uninstalled volume came from; undefined when not recorded. */
  uninstalledVolumeVersion(volume: string): string | undefined {
    const row = sql(this.db, "SELECT version FROM uninstalled_volumes WHERE name = ?").get(
      volume,
    ) as { version: string } | undefined;
    return row?.version;
  }

  /** Forgets a volume that is no longer uninstalled (reattached or deleted). */
  forgetUninstalledVolume(volume: string): void {
    sql(this.db, "DELETE FROM uninstalled_volumes WHERE name = ?").run(volume);
  }

  /** The answers last given for the package (any version), newest first; undefined when never installed. */
  lastAnswers(
    repo: string,
    name: string,
  ): { version: string; answers: Record<string, string> } | undefined {
    const row = sql(
      this.db,
      "SELECT version, answers FROM answers WHERE repo = ? AND name = ? ORDER BY saved_at DESC, rowid DESC LIMIT 1",
    ).get(repo, name) as { version: string; answers: string } | undefined;
    return (
      row && { version: row.version, answers: JSON.parse(row.answers) as Record<string, string> }
    );
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
    running: row.running === 1,
    plan: JSON.parse(row.plan) as CompiledPackage | null,
    postUpdateFor: row.post_update_for,
    reused: JSON.parse(row.reused) as string[],
    created: JSON.parse(row.created) as string[],
    exposures: JSON.parse(row.exposures) as Record<string, ExposureLevel>,
    ingressPorts: JSON.parse(row.ingress_ports) as Record<string, number>,
    dnsPublished: row.dns_published === 1,
    installedAt: row.installed_at,
  };
}

function toRemoval(row: RemovalRow): RemovalRecord {
  return {
    repo: row.repo,
    name: row.name,
    purge: row.purge === 1,
    plan: JSON.parse(row.plan) as CompiledPackage | null,
    keep: JSON.parse(row.keep) as string[],
    onlyVolumes: row.only_volumes === null ? null : (JSON.parse(row.only_volumes) as string[]),
    version: row.version,
    requestedAt: row.requested_at,
  };
}
