/**
 * Schema migrations, applied in order; the database's `user_version` says
 * how many have run. Never edit one that has shipped: add another.
 *
 * Tables hold desired state (what should exist) and observed facts (what a
 * refresh saw); never transitional verbs like "installing".
 */
export const migrations: readonly string[] = [
  `
  CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email TEXT,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
  );

  CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    user_agent TEXT NOT NULL
  );
  CREATE INDEX sessions_account ON sessions(account_id);

  CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    account_id INTEGER,
    username TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    source TEXT NOT NULL
  );
  CREATE INDEX audit_at ON audit(at);

  -- Facts the daemon keeps about itself, e.g. that first-start work is done.
  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );

  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );

  CREATE TABLE repositories (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    username TEXT,
    password TEXT,
    position INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );

  -- What the last refresh of a repository saw.
  CREATE TABLE repository_status (
    name TEXT PRIMARY KEY REFERENCES repositories(name) ON DELETE CASCADE ON UPDATE CASCADE,
    commit_id TEXT,
    refreshed_at INTEGER,
    attempted_at INTEGER,
    error TEXT,
    changed_packages TEXT NOT NULL DEFAULT '[]'
  );

  -- Installed packages: desired state. The runtime that makes them real
  -- reads this table; the catalog reads it for "installed" and upgrades.
  CREATE TABLE installs (
    repo TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    answers TEXT NOT NULL DEFAULT '{}',
    enabled INTEGER NOT NULL DEFAULT 1,
    installed_at INTEGER NOT NULL,
    PRIMARY KEY (repo, name)
  );

  -- An upgrade offer a person dismissed: hidden until something newer appears.
  CREATE TABLE upgrade_dismissals (
    repo TEXT NOT NULL,
    name TEXT NOT NULL,
    offer TEXT NOT NULL,
    dismissed_at INTEGER NOT NULL,
    PRIMARY KEY (repo, name)
  );
  `,
  `
  -- The compiled plan an install was made with: what the app reconciler applies.
  ALTER TABLE installs ADD COLUMN plan TEXT NOT NULL DEFAULT 'null';

  -- An uninstall that is not finished yet: desired state too, so that a
  -- crash part-way still ends with containers gone and volumes moved aside
  -- (or deleted when purge was asked for).
  CREATE TABLE app_removals (
    repo TEXT NOT NULL,
    name TEXT NOT NULL,
    purge INTEGER NOT NULL,
    plan TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    PRIMARY KEY (repo, name)
  );

  -- What the last reconcile of an app saw go wrong (observed, not desired).
  CREATE TABLE app_status (
    repo TEXT NOT NULL,
    name TEXT NOT NULL,
    last_error TEXT,
    attempted_at INTEGER NOT NULL,
    PRIMARY KEY (repo, name)
  );
  `,
  `
  -- Started or stopped by a person, apart from enabled (kept running, and
  -- started again when the box starts).
  ALTER TABLE installs ADD COLUMN running INTEGER NOT NULL DEFAULT 1;
  -- The plan hash whose post_update commands are still to run after an upgrade.
  ALTER TABLE installs ADD COLUMN post_update_for TEXT;
  -- Volumes the install took back from an earlier uninstall: if the install
  -- fails, they are moved aside again, never deleted.
  ALTER TABLE installs ADD COLUMN reused TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE app_removals ADD COLUMN keep TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE app_removals ADD COLUMN version TEXT NOT NULL DEFAULT '';

  -- Which version each volume moved aside by an uninstall came from, so a
  -- reinstall can import the volumes of a chosen version.
  CREATE TABLE uninstalled_volumes (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    uninstalled_at INTEGER NOT NULL
  );

  -- The answers given per installed version: offered again on reinstall.
  CREATE TABLE answers (
    repo TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    answers TEXT NOT NULL,
    saved_at INTEGER NOT NULL,
    PRIMARY KEY (repo, name, version)
  );
  `,
  `
  -- Per published host port: local (loopback), lan or internet, when a
  -- person changed it from the package's default.
  ALTER TABLE installs ADD COLUMN exposures TEXT NOT NULL DEFAULT '{}';
  -- Per instance with an \`http\` port: the loopback host port the ingress proxies to.
  ALTER TABLE installs ADD COLUMN ingress_ports TEXT NOT NULL DEFAULT '{}';
  -- Whether the app's names are published in the box's DNS.
  ALTER TABLE installs ADD COLUMN dns_published INTEGER NOT NULL DEFAULT 1;
  `,
  `
  -- The volumes an install made itself: undoing a failed install deletes
  -- these and nothing else (never a volume that was there before it).
  ALTER TABLE installs ADD COLUMN created TEXT NOT NULL DEFAULT '[]';
  -- An undo's removal touches only these volumes (JSON list); NULL: all of the plan's.
  ALTER TABLE app_removals ADD COLUMN only_volumes TEXT;
  `,
  `
  -- Static websites served by the ingress. \`source\` is JSON (a git URL keeps
  -- its credentials: never shown); \`current\`/\`previous\` are version JSON.
  CREATE TABLE pages (
    name TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    build TEXT,
    domains TEXT NOT NULL DEFAULT '[]',
    hook_token TEXT NOT NULL,
    current TEXT,
    previous TEXT,
    last_error TEXT,
    skipped TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,
    updated_at INTEGER
  );
  `,
  `
  -- Restore points: read-only snapshots of an app's volumes (or of one
  -- volume) taken together, named \`id\` in each volume, with what the app
  -- was then (version, answers, plan) so that it can be returned to.
  CREATE TABLE restore_points (
    id TEXT NOT NULL,
    subject TEXT NOT NULL,
    repo TEXT,
    name TEXT,
    reason TEXT NOT NULL,
    version TEXT,
    definition_hash TEXT,
    answers TEXT,
    plan TEXT,
    quiesce TEXT NOT NULL DEFAULT 'none',
    volumes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (subject, id)
  );

  -- Where backups go: \`password\` and \`env\` (JSON) are secrets, never shown.
  CREATE TABLE backup_targets (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('path', 'btrfs', 'restic')),
    location TEXT NOT NULL,
    password TEXT,
    env TEXT NOT NULL DEFAULT '{}',
    status_ok INTEGER,
    status_error TEXT,
    status_at INTEGER,
    created_at INTEGER NOT NULL
  );

  -- Per subject (an app \`repo/name\` or a volume): when to take a restore
  -- point (cron, UTC), how many to keep (JSON), which targets get each.
  CREATE TABLE backup_policies (
    subject TEXT PRIMARY KEY,
    schedule TEXT NOT NULL,
    keep TEXT NOT NULL,
    targets TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL
  );

  -- What each backup run did (observed facts, newest kept).
  CREATE TABLE backup_runs (
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    target TEXT,
    trigger TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'ok', 'failed')),
    error TEXT,
    restore_point TEXT,
    bytes INTEGER,
    started_at INTEGER NOT NULL,
    finished_at INTEGER
  );
  CREATE INDEX backup_runs_subject ON backup_runs(subject, started_at);
  `,
  `
  -- A whole-box restore point (subject 'box') records the desired state it
  -- was taken with: every app, the package repositories and the settings (JSON).
  ALTER TABLE restore_points ADD COLUMN box TEXT;
  `,
  `
  -- GitOps: the state repository followed (desired state; one row at most).
  CREATE TABLE state_source (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    url TEXT NOT NULL,
    branch TEXT,
    username TEXT,
    password TEXT,
    interval_seconds INTEGER NOT NULL,
    hook_token TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );

  -- Every commit the box saw, applied or refused (observed facts, newest kept).
  CREATE TABLE state_commits (
    id INTEGER PRIMARY KEY,
    commit_id TEXT NOT NULL,
    author TEXT,
    message TEXT,
    result TEXT NOT NULL CHECK (result IN ('applied', 'refused', 'failed')),
    error TEXT,
    changes TEXT NOT NULL DEFAULT '[]',
    at INTEGER NOT NULL
  );

  -- What the last applied commit declares: changed only through git.
  CREATE TABLE state_managed (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    purge INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, name)
  );

  -- Values that secretRef answers name; never shown again.
  CREATE TABLE state_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  `,
];
