import { runTown } from "../src/program.js";

export interface TownRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the town command in-process with captured output and no terminal. */
export async function runTownCaptured(
  argv: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<TownRun> {
  let stdout = "";
  let stderr = "";
  const code = await runTown(argv, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    cwd: options.cwd,
    env: options.env ?? {},
    interactive: false,
    ask: () => Promise.reject(new Error("no terminal in tests")),
  });
  return { code, stdout, stderr };
}
