/**
 * Caddy parses requests from the internet: it must not run as root. A root
 * daemon starts it as an unprivileged user (Debian's caddy package makes
 * `caddy`) through util-linux's `setpriv`, keeping only CAP_NET_BIND_SERVICE
 * (ambient, so it survives the exec) to bind 80 and 443, with no_new_privs.
 *
 * The daemon's data directory stays closed to Caddy's user (it holds the
 * database and the volumes): Caddy is started in its own directory (the
 * working directory is set while still root) and names every file through
 * `/proc/self/cwd/…`, which reaches that directory without passing through
 * its parents. That directory stays the daemon's: root-owned, group `caddy`,
 * sticky (01770), so Caddy can create its admin socket and pid file there but
 * can neither replace nor remove the daemon's files (config, log). Its
 * storage and XDG directories are Caddy's own. The daemon never follows a
 * link in that directory: see `openNoFollow`.
 *
 * Prometheus and Node Exporter (monitoring/prometheus.ts) run the same way,
 * as the `prometheus` user and without capabilities.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { constants } from "node:fs";
import { chmod, chown, lstat, mkdir, open, rename, rm, type FileHandle } from "node:fs/promises";
import { promisify } from "node:util";
import { TownError } from "@townos/format";
import { NO_FOLLOW } from "../system/proc.js";

const run = promisify(execFile);

export interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

export const DEFAULT_CADDY_USER = "caddy";

/** Caddy's own directory as Caddy names it: its working directory. */
export const CADDY_DIR = "/proc/self/cwd";

/**
 * The user's ids from the system's user database (`getent`, so NSS is honoured).
 * `program` (also Debian's package that makes the user) names it in messages.
 */
export async function lookupUser(name: string, program = "caddy"): Promise<RunAs> {
  let line = "";
  try {
    line = (await run("getent", ["passwd", name], { timeout: 5_000 })).stdout.trim();
  } catch {
    // Not found: said below.
  }
  const [, , uid, gid] = line.split(":");
  if (uid === undefined || gid === undefined || !/^\d+$/.test(uid) || !/^\d+$/.test(gid))
    throw new TownError(
      "unavailable",
      `${program}: there is no user "${name}" to run ${program} as (Debian's ${program} package makes it); ${program} is not started as root`,
    );
  if (Number(uid) === 0)
    throw new TownError("unavailable", `${program}: the user "${name}" is root`);
  return { name, uid: Number(uid), gid: Number(gid) };
}

/** `setpriv` arguments that run the command after them as `user` with only `capabilities` (none: `[]`). */
export function dropPrivileges(
  user: RunAs,
  capabilities: readonly string[] = ["net_bind_service"],
): string[] {
  const caps = ["-all", ...capabilities.map((capability) => `+${capability}`)].join(",");
  return [
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    "--init-groups",
    `--inh-caps=${caps}`,
    `--ambient-caps=${caps}`,
    `--bounding-set=${caps}`,
    "--no-new-privs",
    "--",
  ];
}

/** The shared directory: the daemon's (root), Caddy's group may add files but not touch others'. */
export async function prepareSharedDirectory(
  dir: string,
  user: RunAs,
  program = "caddy",
): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await lstat(dir);
  if (!info.isDirectory() || info.uid !== 0)
    throw new TownError("unavailable", `${program}: ${dir} is not a directory of root's`);
  await chown(dir, 0, user.gid);
  await chmod(dir, 0o1770);
}

/**
 * The sites directory: the daemon's alone to write, readable by everyone
 * (0755) so that Caddy's user serves from it. An existing one is checked
 * without following a link.
 */
export async function prepareSitesDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const info = await lstat(dir);
  if (!info.isDirectory() || info.uid !== process.getuid?.())
    throw new TownError("unavailable", `caddy: ${dir} is not a directory of the daemon's`);
  await chmod(dir, 0o755);
}

/**
 * A directory of Caddy's own (0700): made, or handed over (with what is in
 * it, links not followed) when an earlier root Caddy left it root's.
 */
export async function prepareOwnDirectory(
  dir: string,
  user: RunAs,
  program = "caddy",
): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await lstat(dir);
  if (!info.isDirectory())
    throw new TownError("unavailable", `${program}: ${dir} is not a directory (a link?)`);
  if (info.uid !== user.uid || info.gid !== user.gid)
    await run("chown", ["-R", "-P", `${user.uid}:${user.gid}`, "--", dir], { timeout: 60_000 });
  await chmod(dir, 0o700);
}

/** Opens a file in the shared directory with `NO_FOLLOW`; only regular files. */
export async function openNoFollow(path: string, flags: number, mode = 0o600): Promise<FileHandle> {
  // (Node opens every file close-on-exec already.)
  const handle = await open(path, flags | NO_FOLLOW, mode);
  try {
    if (!(await handle.stat()).isFile()) throw new TownError("io", `${path} is not a regular file`);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Writes `path` anew, root's (group `gid` when given): a temporary file made
 * with O_EXCL beside it, so that no planted link is followed, then renamed
 * into place.
 */
export async function writeFileAnew(
  path: string,
  content: string,
  mode: number,
  gid?: number,
): Promise<void> {
  const temporary = `${path}.tmp`;
  await rm(temporary, { force: true });
  const file = await openNoFollow(
    temporary,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
    mode,
  );
  try {
    if (gid !== undefined) await file.chown(0, gid);
    await file.writeFile(content);
  } finally {
    await file.close();
  }
  await rename(temporary, path);
}

/** The real uid a process runs as, from /proc; null when it is gone. */
export function processUid(pid: number): number | null {
  try {
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return uid === undefined ? null : Number(uid);
  } catch {
    return null;
  }
}
