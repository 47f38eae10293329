import { ask } from "./prompt.js";

/** Where a command reads and writes; tests capture it instead of the real streams. */
export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Whether missing credentials may be asked for on a terminal. */
  interactive: boolean;
  ask: (question: string, hidden: boolean) => Promise<string>;
}

export function processIo(): Io {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    cwd: process.cwd(),
    env: process.env,
    interactive: process.stdin.isTTY && process.stdout.isTTY,
    ask,
  };
}
