import { Command, CommanderError } from "commander";
import { ApiError } from "@townos/client";
import { isTownError } from "@townos/format";
import { registerAccountCommands } from "./account-commands.js";
import { registerAdminCommands } from "./admin-commands.js";
import { registerAppCommands } from "./app-commands.js";
import { registerBackupCommands } from "./backup-commands.js";
import { registerDaemonCommand } from "./daemon-command.js";
import { registerLogCommands } from "./log-commands.js";
import { registerMonitorCommands } from "./monitor-commands.js";
import { registerNetCommands } from "./net-commands.js";
import { registerPackageCommands } from "./package-commands.js";
import { registerPageCommands } from "./page-commands.js";
import { registerRepoCommands } from "./repo-commands.js";
import { registerSshKeyCommands } from "./ssh-key-commands.js";
import { registerNetworkCommands } from "./network-commands.js";
import { registerConsolePasswordCommands } from "./console-password-commands.js";
import { registerStateCommands } from "./state-commands.js";
import type { Io } from "./io.js";
import { UsageError } from "./usage.js";
import { registerVmImageCommands } from "./vm-image-commands.js";
import { registerVolumeCommands } from "./volume-commands.js";

/** Exit codes: 0 success, 1 failure, 2 invalid input (usage, package or answers). */
export async function runTown(argv: readonly string[], io: Io): Promise<number> {
  let exitCode = 0;
  const program = new Command("town")
    .description("Town OS: a self-hosted home cloud")
    .option("--server <url>", "daemon to talk to (env TOWN_SERVER, default http://127.0.0.1:5309)")
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  registerPackageCommands(program, io, (code) => {
    exitCode = code;
  });
  registerDaemonCommand(program, io);
  registerAccountCommands(program, io);
  registerRepoCommands(program, io);
  registerAppCommands(program, io);
  registerAdminCommands(program, io);
  registerLogCommands(program, io);
  registerNetCommands(program, io);
  registerSshKeyCommands(program, io);
  registerNetworkCommands(program, io);
  registerConsolePasswordCommands(program, io);
  registerVolumeCommands(program, io, (code) => {
    exitCode = code;
  });
  registerVmImageCommands(program, io, (code) => {
    exitCode = code;
  });
  registerPageCommands(program, io, (code) => {
    exitCode = code;
  });
  registerMonitorCommands(program, io, (code) => {
    exitCode = code;
  });
  registerBackupCommands(program, io, (code) => {
    exitCode = code;
  });
  registerStateCommands(program, io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof ApiError) {
      io.stderr(`town: ${error.problem.title}: ${error.problem.detail}\n`);
      for (const issue of error.problem.issues ?? []) {
        io.stderr(`  ${issue.field ?? issue.question ?? ""}: ${issue.message}\n`);
      }
      return 1;
    }
    if (error instanceof UsageError) {
      io.stderr(`town: ${error.message}\n`);
      return 2;
    }
    if (isTownError(error)) {
      io.stderr(`town: ${error.title}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  return exitCode;
}
