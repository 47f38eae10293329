import { readFile, stat } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import type { Command } from "commander";
import type { AddBackupTargetBody, BackupRunView, TownClient } from "@townos/client";
import { collect } from "./answers.js";
import {
  BOX,
  backupTable,
  boxRestoreFailures,
  boxRestoreText,
  keepText,
  overviewText,
  parseEnv,
  parseKeep,
  parseSchedule,
  policyTable,
  runStateText,
  runTable,
  targetTable,
} from "./backup-views.js";
import { clientKit, type JsonFlag } from "./client-kit.js";
import { confirm } from "./confirm.js";
import type { Io } from "./io.js";
import { appSpec } from "./restore-point-commands.js";
import { UsageError } from "./usage.js";

/** How often `town backup run --wait` asks how its runs are doing. */
const FOLLOW_MS = 1000;
/** A password file is a few bytes; anything bigger is the wrong file. */
const MAX_PASSWORD_FILE = 4096;

export interface TargetFlags {
  path?: string;
  btrfs?: string;
  restic?: string;
  passwordFile?: string;
  env: string[];
}

/**
 * `town backup target add`'s flags as the API's body (without the password,
 * read separately): exactly one kind, the restic-only flags only with it, and
 * local directories made absolute (the daemon runs elsewhere).
 */
export function targetRequest(
  name: string,
  flags: TargetFlags,
  cwd: string,
  environment: NodeJS.ProcessEnv = {},
): AddBackupTargetBody {
  const given = (["path", "btrfs", "restic"] as const).filter((kind) => flags[kind] !== undefined);
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0
        ? "give where backups go: --path DIR, --btrfs DIR or --restic REPO"
        : `give one kind of target, not ${given.map((kind) => `--${kind}`).join(" and ")}`,
    );
  }
  const kind = given[0] ?? "path";
  if (kind !== "restic" && (flags.passwordFile !== undefined || flags.env.length > 0)) {
    throw new UsageError("--password-file and --env are for --restic targets");
  }
  const location = flags[kind] ?? "";
  // restic names remote repositories `backend:…`; anything else is a local directory.
  const local = kind !== "restic" || !/^[a-z0-9]+:/.test(location);
  const env = parseEnv(flags.env, environment);
  return {
    name,
    kind,
    location: local && !isAbsolute(location) ? resolve(cwd, location) : location,
    ...(Object.keys(env).length === 0 ? {} : { env }),
  };
}

/**
 * A restic password from a file: refused when others may read it (a
 * password there is as good as public), one trailing newline dropped.
 */
export async function readPasswordFile(path: string): Promise<string> {
  const info = await stat(path);
  if (!info.isFile() || info.size > MAX_PASSWORD_FILE) {
    throw new UsageError(`${path} is not a small file holding a password`);
  }
  if ((info.mode & 0o007) !== 0) {
    throw new UsageError(`${path} can be read by other users: chmod o-rwx it first`);
  }
  const password = (await readFile(path, "utf8")).replace(/\r?\n$/, "");
  if (password === "") throw new UsageError(`${path} is empty`);
  return password;
}

/** `town backup …`: targets off the box, policies, runs and restores. */
export function registerBackupCommands(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  const { client, print, json } = clientKit(program, io);
  const backup = program
    .command("backup")
    .description("backups: targets off the box, schedules with retention, runs and restores");

  const target = backup.command("target").description("where backups go");
  target
    .command("add")
    .description(
      "add a target: a directory on another disk (--path), a btrfs file system receiving snapshots (--btrfs), or a restic repository (--restic: a path, sftp:…, s3:…)",
    )
    .argument("<name>", "lower-case letters, digits and dashes")
    .option("--path <dir>", "archives in a directory")
    .option("--btrfs <dir>", "snapshots sent to a directory on another btrfs")
    .option("--restic <repo>", "an encrypted restic repository")
    .option(
      "--password-file <file>",
      "restic: the repository's password (default: one is made and shown once)",
    )
    .option(
      "--env <pair>",
      "restic: KEY=VALUE its backend reads, e.g. AWS_ACCESS_KEY_ID, or KEY alone to pass on this shell's value (repeatable)",
      collect,
      [],
    )
    .option("--json")
    .action(async (name: string, flags: TargetFlags & JsonFlag) => {
      const body = targetRequest(name, flags, io.cwd, io.env);
      if (flags.env.some((pair) => pair.includes("="))) {
        io.stderr(
          "town: warning: values given with --env KEY=VALUE are visible to other users in the process list and stay in the shell history; export KEY and give --env KEY instead\n",
        );
      }
      if (flags.passwordFile !== undefined) {
        body.password = await readPasswordFile(resolve(io.cwd, flags.passwordFile));
      }
      const result = await (await client()).addBackupTarget(body);
      if (flags.json) {
        json(result);
        return;
      }
      print(
        `added ${result.target.kind} target ${result.target.name} at ${result.target.location}`,
      );
      if (result.password !== null) {
        io.stderr(
          "town: this restic repository's password is shown this once: store it somewhere safe off the box; without it, the backups cannot be read\n",
        );
        print(`password: ${result.password}`);
      }
    });
  target
    .command("ls")
    .description("backup targets and how their last check or run went")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const targets = await (await client()).backupTargets();
      if (flags.json) json(targets);
      else print(targetTable(targets, Date.now()));
    });
  target
    .command("rm")
    .description("forget a target (the backups on it stay where they are)")
    .argument("<name>")
    .action(async (name: string) => {
      await (await client()).removeBackupTarget(name);
      print(`removed target ${name}; the backups on it are left in place`);
    });

  const policy = backup.command("policy").description("scheduled restore points and backups");
  policy
    .command("set")
    .description(
      "restore points of an app, a volume or the whole box on a schedule, kept by a policy, and sent to targets",
    )
    .argument(
      "<subject>",
      "REPO/NAME of an app, a volume's name, or box: the whole box (repositories, changed settings, people's volumes, every app)",
    )
    .requiredOption("--schedule <cron>", "five-field cron, in UTC, e.g. '0 * * * *' (hourly)")
    .requiredOption(
      "--keep <policy>",
      "what to keep: last, hourly, daily, weekly, monthly counts, e.g. hourly=24,daily=7,weekly=4",
    )
    .option("--target <name>", "also send each to this target (repeatable)", collect, [])
    .option("--json")
    .action(
      async (
        subject: string,
        flags: JsonFlag & { schedule: string; keep: string; target: string[] },
      ) => {
        const view = await (
          await client()
        ).setBackupPolicy({
          subject,
          schedule: parseSchedule(flags.schedule),
          keep: parseKeep(flags.keep),
          ...(flags.target.length === 0 ? {} : { targets: flags.target }),
        });
        if (flags.json) json(view);
        else {
          const to = view.targets.length === 0 ? "" : `, sent to ${view.targets.join(", ")}`;
          print(`${view.subject}: ${view.schedule}, keeping ${keepText(view.keep)}${to}`);
        }
      },
    );
  policy
    .command("ls")
    .description("policies with their next and last run")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const { policies } = await (await client()).backups();
      if (flags.json) json(policies);
      else print(policyTable(policies, Date.now()));
    });
  policy
    .command("rm")
    .description("stop a subject's schedule (its restore points and backups stay)")
    .argument("<subject>")
    .action(async (subject: string) => {
      await (await client()).removeBackupPolicy(subject);
      print(`removed the policy of ${subject}`);
    });

  backup
    .command("run")
    .description("back up now: one subject, or every one with a policy")
    .argument(
      "[subject]",
      "REPO/NAME, a volume, or box for the whole box (default: every subject with a policy)",
    )
    .option("--target <name>", "send to this target (default: the policy's)")
    .option("--wait", "follow the runs to their end; exit 1 when one failed")
    .option("--json")
    .action(
      async (
        subject: string | undefined,
        flags: JsonFlag & { target?: string; wait?: boolean },
      ) => {
        const api = await client();
        const started = await api.runBackup({
          ...(subject === undefined ? {} : { subject }),
          ...(flags.target === undefined ? {} : { target: flags.target }),
        });
        const runs = flags.wait === true ? await follow(api, started, io) : started;
        if (flags.json) json(runs);
        else print(runTable(runs, Date.now()));
        if (runs.some((run) => run.state === "failed")) setExit(1);
      },
    );

  backup
    .command("ls")
    .description("targets, policies and recent runs; with a target, the backups it holds")
    .argument("[target]")
    .option("--json")
    .action(async (name: string | undefined, flags: JsonFlag) => {
      const api = await client();
      if (name === undefined) {
        const overview = await api.backups();
        if (flags.json) json(overview);
        else print(overviewText(overview, Date.now()));
        return;
      }
      const backups = await api.targetBackups(name);
      if (flags.json) json(backups);
      else print(backupTable(backups, Date.now()));
    });

  backup
    .command("restore")
    .description(
      "bring an app (version, answers and data) back from a target, in place (what it replaces is kept as a restore point) or onto a box without it; or, given box, the whole box: missing repositories added, settings set, missing volumes made and every app restored in place",
    )
    .argument("<app>", "REPO/NAME, or box for the whole box")
    .requiredOption("--from <target>", "the target holding the backup")
    .option(
      "--at <id>",
      "the backup: an app's or the whole box's (default: the newest of the app, or of the box, on the target)",
    )
    .option(
      "--as-new",
      "install it beside the app as NAME-restored (the daemon refuses this for now: an app is installed under its package's name)",
    )
    .option("--yes", "do not ask before replacing the app (or the whole box)")
    .option("--json")
    .action(
      async (
        spec: string,
        flags: JsonFlag & { from: string; at?: string; asNew?: boolean; yes?: boolean },
      ) => {
        if (spec === BOX) {
          await restoreBox(flags);
          return;
        }
        const { repo, name } = appSpec(spec);
        if (flags.asNew !== true) {
          await confirm(
            io,
            `Replace ${repo}/${name} with its backup ${flags.at ?? "(the newest)"} from ${flags.from} (its data now is kept as a restore point first)`,
            flags.yes,
          );
        }
        const result = await (
          await client()
        ).restoreBackup({
          app: `${repo}/${name}`,
          target: flags.from,
          ...(flags.at === undefined ? {} : { at: flags.at }),
          ...(flags.asNew === true ? { asNew: true } : {}),
        });
        if (flags.json) json(result);
        else {
          const kept = result.kept === null ? "" : `; what it replaced is kept as ${result.kept}`;
          print(`${result.app} is at ${result.version} from backup ${result.backup.id}${kept}`);
        }
      },
    );

  /** `town backup restore box`: every part is tried; any that failed makes the exit 1. */
  async function restoreBox(
    flags: JsonFlag & { from: string; at?: string; asNew?: boolean; yes?: boolean },
  ): Promise<void> {
    if (flags.asNew === true) throw new UsageError("--as-new is for an app, not the whole box");
    await confirm(
      io,
      `Restore the whole box from its backup ${flags.at ?? "(the newest)"} on ${flags.from}: add the repositories missing here, set the backed-up settings, make the missing volumes and restore every app in place (what each replaces is kept as a restore point first)`,
      flags.yes,
    );
    io.stderr("… restoring the whole box: this can take minutes\n");
    const result = await (
      await client()
    ).restoreBox({ target: flags.from, ...(flags.at === undefined ? {} : { at: flags.at }) });
    if (flags.json) json(result);
    else print(boxRestoreText(result, Date.now()));
    const failed = boxRestoreFailures(result);
    if (failed > 0) {
      io.stderr(`town: ${failed} part(s) of the restore failed (see above); the others are done\n`);
      setExit(1);
    }
  }
}

/** Waits for the started runs to end, showing each new step on stderr; their last views. */
async function follow(
  api: TownClient,
  started: readonly BackupRunView[],
  io: Io,
): Promise<BackupRunView[]> {
  let runs = [...started];
  const shown = new Map<number, string>();
  for (;;) {
    for (const run of runs) {
      const text = runStateText(run);
      if (run.state === "running" && shown.get(run.id) !== text) {
        io.stderr(`… ${run.subject}${run.target === null ? "" : ` → ${run.target}`}: ${text}\n`);
        shown.set(run.id, text);
      }
    }
    if (runs.every((run) => run.state !== "running")) return runs;
    await new Promise((done) => setTimeout(done, FOLLOW_MS));
    const latest = new Map((await api.backups()).runs.map((run) => [run.id, run]));
    // The runs just started are among the overview's newest 50.
    runs = runs.map((run) => latest.get(run.id) ?? run);
  }
}
