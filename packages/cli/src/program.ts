import { Command, CommanderError } from "commander";
import { isTownError } from "@townos/format";
import { registerPackageCommands } from "./package-commands.js";

/** Where a command writes; tests capture it instead of the real streams. */
export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  cwd: string;
}

/** Exit codes: 0 success, 1 failure, 2 invalid input (package or answers). */
export async function runTown(argv: readonly string[], io: Io): Promise<number> {
  let exitCode = 0;
  const program = new Command("town")
    .description("Town OS: a self-hosted home cloud")
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  registerPackageCommands(program, io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode;
    }
    if (isTownError(error)) {
      io.stderr(`town: ${error.title}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  return exitCode;
}
