/**
 * Child processes of the backup targets (`btrfs send`/`receive`, `restic`,
 * `cp`): argument arrays (never a shell), a time limit, the caller's abort
 * signal, bounded output. Unlike `storage/exec.ts` `run`, a program's
 * standard streams stay open to the caller, for data piped between programs
 * and for progress read line by line.
 */
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TownError, type ErrorCode } from "@townos/format";
import { formatDuration, printable } from "../../storage/names.js";
import { signalProcess } from "../../system/proc.js";

/** Longest stdout kept when it is collected, and longest progress line read. */
const MAX_STDOUT_BYTES = 8 * 1024 * 1024;
const MAX_LINE_BYTES = 64 * 1024;
const MAX_STDERR_BYTES = 16 * 1024;

export interface ChildOptions {
  /** Prefix of errors: `backup target "usb": btrfs receive`. */
  context: string;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  cwd?: string;
  /** Added to the environment (with the C locale). */
  env?: Record<string, string>;
  /** Inherited variables left out (e.g. a daemon's own RESTIC_* settings). */
  dropEnv?: (name: string) => boolean;
  /** `pipe`: the caller writes `child.stdin`. Default `ignore`. */
  stdin?: "pipe" | "ignore";
  /** `collect`: resolved as text (bounded); `lines`: each line to `onLine`; `pipe`: the caller reads `child.stdout`. */
  stdout?: "collect" | "lines" | "pipe" | "ignore";
  onLine?: (line: string) => void;
  /**
   * Given to the program as file descriptor 3, to read as `/dev/fd/3`:
   * secrets go this way, never on argv. It is a file in a private (0700)
   * temporary directory, deleted before the program starts (its open
   * descriptor is all that is left). Node's own pipes are sockets, which
   * `/dev/fd/3` cannot open.
   */
  fd3?: string;
  /** The code of a failure from what the program said (default `io`). */
  failureCode?: (stderr: string) => ErrorCode;
}

export interface Started {
  child: ChildProcess;
  /** Resolves with the collected stdout once the program exited with 0. @throws TownError */
  finished: Promise<string>;
  /** Stops the program (SIGKILL); `finished` then rejects. */
  kill(): void;
}

/** Starts `program`; see `ChildOptions`. */
export function startChild(
  program: string,
  args: readonly string[],
  options: ChildOptions,
): Started {
  const stdio: StdioOptions = [
    options.stdin ?? "ignore",
    options.stdout === undefined || options.stdout === "ignore" ? "ignore" : "pipe",
    "pipe",
  ];
  const secretFd = options.fd3 === undefined ? undefined : unlinkedFile(options.fd3);
  if (secretFd !== undefined) stdio.push(secretFd);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !options.dropEnv?.(name)) env[name] = value;
  }
  Object.assign(env, { LC_ALL: "C", LANG: "C" }, options.env);
  let child: ChildProcess;
  try {
    // Its own session: no terminal for ssh (under restic's sftp) to ask a
    // password on, and a group to stop helpers with.
    child = spawn(program, args, { stdio, env, cwd: options.cwd, detached: true });
  } finally {
    if (secretFd !== undefined) closeSync(secretFd);
  }

  let stopped: string | undefined;
  const kill = (why: string) => {
    stopped ??= why;
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      signalProcess(child.pid, "SIGKILL");
    }
  };
  const timer = setTimeout(() => {
    kill(`took longer than ${formatDuration(options.timeoutMs)} and was stopped`);
  }, options.timeoutMs);
  const onAbort = () => {
    kill("was cancelled");
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderr = (stderr + text).slice(-MAX_STDERR_BYTES);
  });

  let collected = "";
  let tooMuch = false;
  const stdout = child.stdout;
  if (stdout && options.stdout === "collect") {
    stdout.setEncoding("utf8").on("data", (text: string) => {
      if (collected.length + text.length > MAX_STDOUT_BYTES) {
        tooMuch = true;
        kill(`wrote more than ${MAX_STDOUT_BYTES} bytes`);
      } else collected += text;
    });
  } else if (stdout && options.stdout === "lines") {
    let pending = "";
    stdout.setEncoding("utf8").on("data", (text: string) => {
      pending += text;
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        // An over-long line is nobody's progress report: dropped.
        if (line.length <= MAX_LINE_BYTES) options.onLine?.(line);
      }
      if (pending.length > MAX_LINE_BYTES) pending = "";
    });
  }

  const finished = new Promise<string>((resolve, reject) => {
    child.once("error", (error) => {
      reject(new TownError("unavailable", `${options.context}: ${error.message}`));
    });
    child.once("close", (code) => {
      if (code === 0 && stopped === undefined) {
        resolve(collected);
        return;
      }
      if (stopped !== undefined || tooMuch) {
        reject(new TownError("io", `${options.context}: ${program} ${stopped ?? "failed"}`));
        return;
      }
      const said = lastWords(stderr);
      reject(
        new TownError(
          options.failureCode?.(stderr) ?? "io",
          `${options.context}: ${said || `${program} exited with status ${String(code)}`}`,
        ),
      );
    });
  }).finally(() => {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  });
  return {
    child,
    finished,
    kill: () => {
      kill("was stopped");
    },
  };
}

/** Runs a program to its end: `startChild` then `finished`. */
export function runChild(
  program: string,
  args: readonly string[],
  options: ChildOptions,
): Promise<string> {
  return startChild(program, args, options).finished;
}

/** An open descriptor of a file holding `content`, whose name is already gone. */
function unlinkedFile(content: string): number {
  const dir = mkdtempSync(join(tmpdir(), "town-secret-"));
  try {
    const path = join(dir, "secret");
    writeFileSync(path, content, { mode: 0o600 });
    return openSync(path, "r");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The line of stderr that says what went wrong ("ERROR: …", "Fatal: …"), else its last line. */
function lastWords(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  const said = lines.filter((line) => /^(ERROR|Fatal)\b/.test(line)).at(-1) ?? lines.at(-1);
  return said ? printable(said, 300) : "";
}
