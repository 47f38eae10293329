/**
 * Running the system's storage programs (`btrfs`, `mkfs.btrfs`, `mount`):
 * always `execFile` with an argument array (never a shell), a time limit, a
 * bounded output, the C locale and UTC (their output is parsed, and btrfs
 * prints some times without their zone). Failures become TownError `io` with
 * the program's own last words.
 */
import { execFile } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { TownError } from "@townos/format";
import { printable } from "./names.js";

export const DEFAULT_COMMAND_TIMEOUT_MS = 120_000;
const MAX_OUTPUT_BYTES = 8 * 1024 * 1024;
/** Where administration programs live when the daemon's PATH lacks the sbin directories. */
const SBIN_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

export interface RunOptions {
  timeoutMs?: number;
  /** Written to the program's standard input: secrets go this way, never on argv. */
  input?: string;
}

/**
 * Runs `program` with `args` and returns its standard output.
 * @throws TownError `io` naming `context`: `<context>: <stderr's last line>`.
 */
export function run(
  program: string,
  args: readonly string[],
  context: string,
  options: RunOptions = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      args,
      {
        timeout: options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
        killSignal: "SIGKILL",
        maxBuffer: MAX_OUTPUT_BYTES,
        // "UTC0" is POSIX: it needs no zoneinfo files.
        env: { ...process.env, LC_ALL: "C", LANG: "C", TZ: "UTC0" },
        encoding: "utf8",
      },
      (error, stdout, stderr) => {
        if (!error) {
          resolve(stdout);
          return;
        }
        reject(new TownError("io", `${context}: ${describeFailure(program, error, stderr)}`));
      },
    );
    if (options.input !== undefined) {
      // A program that exits without reading its input fails with its own words, not EPIPE.
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(options.input);
    }
  });
}

/** The absolute path of an executable found on PATH or in the sbin directories. */
export async function findProgram(name: string): Promise<string | undefined> {
  const dirs = [...(process.env["PATH"] ?? "").split(delimiter), ...SBIN_DIRS];
  for (const dir of dirs) {
    if (!dir.startsWith("/")) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; keep looking.
    }
  }
  return undefined;
}

/** Like `findProgram`, for programs that must exist. @throws TownError `unavailable` */
export async function requireProgram(name: string, purpose: string): Promise<string> {
  const found = await findProgram(name);
  if (!found)
    throw new TownError("unavailable", `${purpose}: the program "${name}" is not installed`);
  return found;
}

function describeFailure(
  program: string,
  error: Error & { code?: unknown; killed?: boolean; signal?: unknown },
  stderr: string,
): string {
  if (error.code === "ENOENT") return `${program} is not installed`;
  if (error.killed && error.signal === "SIGKILL") return `${program} took too long and was stopped`;
  const lines = stderr
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  // btrfs-progs prints "ERROR: …" lines among chatter: those say what went wrong.
  const last = lines.filter((line) => line.startsWith("ERROR")).at(-1) ?? lines.at(-1);
  if (last) return printable(last, 300);
  return typeof error.code === "number"
    ? `${program} exited with status ${error.code}`
    : error.message;
}
