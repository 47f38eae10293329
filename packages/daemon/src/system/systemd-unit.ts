/**
 * Helpers (Caddy, HAProxy, dnsmasq, Prometheus, Node Exporter, VMs) as
 * systemd units of their own, when the daemon is itself a systemd service:
 * each shows in `systemctl status town-…`, with its own cgroup (memory, CPU),
 * outside the daemon's, so the daemon restarts without touching them and then
 * adopts them (their pid files, as everywhere). Started as transient units with
 * `systemd-run`; elsewhere the daemon spawns them itself (supervisor.ts).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { TownError } from "@townos/format";

const run = promisify(execFile);

/** How to run a managed process, asked anew before every start (supervisor.ts). */
export interface Launch {
  argv: readonly [string, ...string[]];
  /** Default: the daemon's environment. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}
const SYSTEMCTL_TIMEOUT_MS = 30_000;

/**
 * How a helper's output is kept: appended to a file the daemon made (systemd
 * opens it as root, so it must be made, or truncated, without following a
 * link first), stdout left out when asked.
 */
export interface UnitLog {
  path: string;
  stdout?: boolean;
}

/** Variables systemd sets for the daemon's own service: not the helper's. */
const SERVICE_ONLY = new Set([
  "INVOCATION_ID",
  "JOURNAL_STREAM",
  "NOTIFY_SOCKET",
  "LISTEN_FDS",
  "LISTEN_PID",
  "LISTEN_FDNAMES",
  "WATCHDOG_PID",
  "WATCHDOG_USEC",
  "SYSTEMD_EXEC_PID",
  "MANAGERPID",
]);

/** True when the daemon is a systemd service (systemd gave it an invocation id) on a systemd-booted machine. */
export function runsUnderSystemd(
  env: NodeJS.ProcessEnv = process.env,
  systemdBooted = existsSync("/run/systemd/system"),
): boolean {
  return env["INVOCATION_ID"] !== undefined && systemdBooted;
}

/** A unit name from a helper's name: `town-` and its letters, digits and dashes. */
export function unitName(name: string): string {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");
  if (slug === "") throw new TownError("internal", `no unit name for "${name}"`);
  return `town-${slug}.service`;
}

/**
 * The `systemd-run` command line that starts `launch` as the transient unit
 * `unit`: started once its program runs (Type=exec: a missing program fails
 * here), collected once it ends however it ends, with the launch's
 * environment (default: the daemon's), directory and log file.
 */
export function systemdRunArgv(
  unit: string,
  launch: Launch,
  log: UnitLog | undefined,
  daemonEnv: NodeJS.ProcessEnv = process.env,
): string[] {
  const env = launch.env ?? daemonEnv;
  // Both appending: one file, two descriptors, no line written over another.
  const output = log === undefined ? "null" : `append:${log.path}`;
  return [
    `--unit=${unit}`,
    "--collect",
    "--quiet",
    "--property=Type=exec",
    `--property=StandardOutput=${log?.stdout === false ? "null" : output}`,
    `--property=StandardError=${output}`,
    ...(launch.cwd === undefined ? [] : [`--working-directory=${launch.cwd}`]),
    ...Object.entries(env)
      .filter(
        (entry): entry is [string, string] =>
          entry[1] !== undefined && !SERVICE_ONLY.has(entry[0]) && !/[\n=]/.test(entry[0]),
      )
      .map(([key, value]) => `--setenv=${key}=${value}`),
    "--",
    ...launch.argv,
  ];
}

/**
 * Starts `launch` as `unit` and returns its main process's pid. Whatever still
 * runs or failed under that name first is stopped and forgotten: a helper
 * that was not adopted must not keep its ports.
 */
export async function startUnit(
  unit: string,
  launch: Launch,
  log: UnitLog | undefined,
): Promise<number> {
  await systemctl("stop", unit).catch(() => undefined);
  await systemctl("reset-failed", unit).catch(() => undefined);
  try {
    await run("systemd-run", systemdRunArgv(unit, launch, log), {
      timeout: SYSTEMCTL_TIMEOUT_MS,
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`systemd-run ${unit}: ${stderr || (error as Error).message}`, {
      cause: error,
    });
  }
  const { stdout } = await systemctl("show", "--property=MainPID", "--value", unit);
  const pid = Number(stdout.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    throw new Error(`${unit} started, but has no main process (it ended at once)`);
  }
  return pid;
}

function systemctl(...args: string[]): Promise<{ stdout: string }> {
  return run("systemctl", args, { timeout: SYSTEMCTL_TIMEOUT_MS });
}
