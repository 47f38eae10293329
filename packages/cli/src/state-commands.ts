import { constants, mkdir, open, readdir, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { Command } from "commander";
import type {
  StateApplyView,
  StateFile,
  StateObjectKind,
  StateProblem,
  StateStatus,
} from "@townos/client";
import {
  encryptAnswer,
  MAX_STATE_FILE_BYTES,
  MAX_STATE_FILES,
  parseCheckout,
} from "@townos/daemon";
import { TownError } from "@townos/format";
import { readPasswordFile } from "./backup-commands.js";
import { whenText } from "./backup-views.js";
import { clientKit, type JsonFlag } from "./client-kit.js";
import { confirm } from "./confirm.js";
import type { Io } from "./io.js";
import { oneLine, table } from "./text.js";
import { UsageError } from "./usage.js";

/** As much as the API takes for a secret's value. */
const MAX_SECRET_BYTES = 65_536;
/** The history `town state status` shows; the daemon keeps 20. */
const SHOWN_HISTORY = 5;

/** The kinds of managed objects, in the order the daemon applies them, as headings. */
const KIND_HEADINGS: Record<StateObjectKind, string> = {
  repository: "repositories",
  setting: "settings",
  volume: "volumes",
  app: "apps",
  page: "pages",
};

/** A commit as git shortens it. */
export function shortCommit(commit: string): string {
  return commit.slice(0, 7);
}

/** 300 → "5 min", 3600 → "1 h", 45 → "45 s". */
export function intervalText(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

function historyRow(entry: StateApplyView, now: number): string[] {
  const what =
    entry.error !== null
      ? oneLine(entry.error)
      : entry.changes.length === 0
        ? "no changes"
        : entry.changes.join("; ");
  return [
    shortCommit(entry.commit),
    entry.author ?? "-",
    whenText(entry.at, now),
    entry.result,
    what,
  ];
}

/** `town state status`: the setting, where the box is, what git manages, the last commits. */
export function statusText(status: StateStatus, now: number): string {
  if (!status.configured) {
    return "no state repository is set: everything on this box is managed by hand (town state set URL)";
  }
  const branch = status.branch === null ? "the remote's default branch" : `branch ${status.branch}`;
  const interval =
    status.intervalSeconds === null
      ? ""
      : `, checked every ${intervalText(status.intervalSeconds)}`;
  const lines = [`repository: ${status.url ?? "-"} (${branch})${interval}`];
  lines.push(
    status.commit === null
      ? "commit: none applied yet"
      : `commit: ${shortCommit(status.commit)}${status.appliedAt === null ? "" : `, applied ${whenText(status.appliedAt, now)}`}`,
  );
  if (status.lastSyncAt !== null || status.error !== null) {
    const when = status.lastSyncAt === null ? "" : `${whenText(status.lastSyncAt, now)}, `;
    lines.push(
      `last sync: ${when}${status.error === null ? "ok" : `failed: ${oneLine(status.error)}`}`,
    );
  }
  if (status.step !== null) lines.push(`syncing now: ${status.step}`);
  if (status.managed.length === 0) lines.push("managed from git: nothing yet");
  else {
    lines.push("managed from git:");
    for (const [kind, heading] of Object.entries(KIND_HEADINGS)) {
      const names = status.managed.filter((object) => object.kind === kind).map((o) => o.name);
      if (names.length > 0) lines.push(`  ${heading}: ${names.sort().join(", ")}`);
    }
  }
  if (status.history.length > 0) {
    lines.push(
      "",
      "HISTORY",
      table(
        ["COMMIT", "AUTHOR", "WHEN", "RESULT", "WHAT"],
        status.history.slice(0, SHOWN_HISTORY).map((entry) => historyRow(entry, now)),
      ),
    );
  }
  return lines.join("\n");
}

/**
 * What `town state sync` says, given the status before and after: the commit
 * applied with its changes, that the box was already there, or (failed:
 * true, printed on stderr) why the sync did not apply.
 */
export function syncText(
  before: StateStatus,
  after: StateStatus,
): { failed: boolean; text: string } {
  const on = after.commit === null ? "no commit yet" : shortCommit(after.commit);
  if (after.error !== null) {
    return { failed: true, text: `${oneLine(after.error)}; the box stays on ${on}` };
  }
  if (after.commit === before.commit) return { failed: false, text: `already on ${on}` };
  const entry = after.history.find((h) => h.commit === after.commit && h.result === "applied");
  const by = entry?.author == null ? "" : ` by ${entry.author}`;
  const message = entry?.message == null ? "" : `: ${entry.message}`;
  const changes =
    entry === undefined || entry.changes.length === 0 ? ["no changes"] : entry.changes;
  return {
    failed: false,
    text: [`applied ${on}${by}${message}`, ...changes.map((change) => `  ${change}`)].join("\n"),
  };
}

/**
 * Why a path the daemon exported may not be written under the target
 * directory, or null: only plain relative paths, never into `.git` (its
 * hooks run code).
 */
export function exportPathProblem(path: string): string | null {
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (/[\u0000-\u001f\u007f]/.test(path)) return "holds control characters";
  if (path.includes("\\")) return "holds a backslash";
  if (isAbsolute(path)) return "is absolute";
  const parts = path.split("/");
  if (parts.some((part) => part === "" || part === "." || part === "..")) {
    return "has an empty, . or .. part";
  }
  if (parts.includes(".git")) return "is inside .git";
  return null;
}

/** The secrets the exported files' answers name (`secretRef: NAME`), sorted. */
export function referencedSecrets(files: readonly StateFile[]): string[] {
  const names = new Set<string>();
  for (const file of files) {
    for (const match of file.text.matchAll(/secretRef["']?\s*:\s*["']?([A-Za-z0-9][\w.-]*)/g)) {
      if (match[1] !== undefined) names.add(match[1]);
    }
  }
  return [...names].sort();
}

/**
 * Writes an export into `dir`, which must be missing or empty; every path is
 * checked before anything is written, and no file is overwritten.
 */
export async function writeExport(dir: string, files: readonly StateFile[]): Promise<void> {
  const seen = new Set<string>();
  for (const file of files) {
    const problem = exportPathProblem(file.path);
    if (problem !== null) {
      throw new TownError(
        "invalid_argument",
        `the daemon's export names ${JSON.stringify(file.path)}, which ${problem}: nothing was written`,
      );
    }
    if (seen.has(file.path)) {
      throw new TownError(
        "invalid_argument",
        `the daemon's export names ${file.path} twice: nothing was written`,
      );
    }
    seen.add(file.path);
  }
  const entries = await readdir(dir).catch((error: unknown) => {
    const code = error instanceof Error && "code" in error ? error.code : undefined;
    if (code === "ENOENT") return [];
    if (code === "ENOTDIR") throw new UsageError(`${dir} is not a directory`);
    throw error;
  });
  if (entries.length > 0) throw new UsageError(`${dir} is not empty: export into a new directory`);
  for (const file of files) {
    const path = join(dir, ...file.path.split("/"));
    await mkdir(dirname(path), { recursive: true });
    // "wx": never replace or write through what is already there.
    await writeFile(path, file.text, { flag: "wx", mode: 0o644 });
  }
}

/** A secret from a pipe: at most as much as the API takes, one trailing newline dropped. */
export async function readSecretText(
  input: AsyncIterable<Buffer | string>,
  what: string,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    size += bytes.length;
    if (size > MAX_SECRET_BYTES) {
      throw new UsageError(`${what} on stdin is larger than ${MAX_SECRET_BYTES} bytes`);
    }
    chunks.push(bytes);
  }
  const text = Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
  if (text === "") throw new UsageError(`${what} on stdin is empty`);
  return text;
}

/**
 * An armored age file as the YAML of an answer, to paste under the
 * question's name in an app file's `answers`, indented.
 */
export function encryptedAnswerYaml(armored: string): string {
  const lines = armored
    .trimEnd()
    .split(/\r?\n/)
    .map((line) => `  ${line}`);
  return ["age: |", ...lines].join("\n");
}

/** The contents of a file, or null when it is larger than `max` bytes; a link is not opened. */
async function readBounded(path: string, max: number): Promise<string | null> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buffer = Buffer.alloc(max + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > max) return null;
    }
    return buffer.toString("utf8", 0, length);
  } finally {
    await handle.close();
  }
}

/**
 * A checkout's YAML files as the daemon would read them from git, without
 * `.git`: links are not followed (a YAML one is a problem, as the daemon
 * says; the others are listed in `skipped`), files past the daemon's size
 * limit are problems, and past its count the reading stops.
 */
export async function readCheckout(root: string): Promise<{
  files: StateFile[];
  problems: StateProblem[];
  skipped: string[];
}> {
  const files: StateFile[] = [];
  const problems: StateProblem[] = [];
  const skipped: string[] = [];
  const walk = async (parts: string[]): Promise<void> => {
    const entries = await readdir(join(root, ...parts), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = [...parts, entry.name].join("/");
      const yaml = /\.ya?ml$/i.test(entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== ".git") await walk([...parts, entry.name]);
        continue;
      }
      if (!yaml) {
        if (entry.isSymbolicLink()) skipped.push(path);
        continue;
      }
      if (files.length + problems.length >= MAX_STATE_FILES) {
        throw new UsageError(
          `${root} holds more than ${MAX_STATE_FILES} YAML files, more than the box reads`,
        );
      }
      if (!entry.isFile()) {
        problems.push({ path, message: "must be a regular file (links are not followed)" });
        continue;
      }
      const text = await readBounded(join(root, ...parts, entry.name), MAX_STATE_FILE_BYTES);
      if (text === null) {
        problems.push({
          path,
          message: `larger than ${MAX_STATE_FILE_BYTES} bytes, the most a file here may have`,
        });
      } else files.push({ path, text });
    }
  };
  await walk([]);
  return { files, problems, skipped };
}

interface SetFlags extends JsonFlag {
  branch?: string;
  username?: string;
  password?: string;
  passwordFile?: string;
  passwordStdin?: boolean;
  interval?: string;
}

/** A URL's own password would be in the process list and shell history like a flag's. */
function refuseUrlPassword(url: string): void {
  let password = "";
  try {
    password = new URL(url).password;
  } catch {
    // scp-like `git@host:path` is no URL, and holds no password.
  }
  if (password !== "") {
    throw new UsageError(
      "the URL holds a password: give it with --password-file or --password-stdin instead",
    );
  }
}

/** `town state …`: the git repository that declares the box (GitOps). */
export function registerStateCommands(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  const { client, print, json } = clientKit(program, io);
  const state = program
    .command("state")
    .description("GitOps: a git repository declares the box's apps, pages, volumes and settings");

  /** A secret typed on a terminal (not echoed), else read from stdin. */
  async function secretFromStdin(what: string): Promise<string> {
    if (!io.interactive) return readSecretText(process.stdin, what);
    const answer = await io.ask(`${what}: `, true);
    if (answer === "") throw new UsageError(`${what} is empty`);
    return answer;
  }

  state
    .command("set")
    .description(
      "follow a state repository: the box syncs now, then every interval and on its webhook",
    )
    .argument("<url>", "the repository (https://…, or a path or ssh URL git understands)")
    .option("--branch <branch>", "default: the remote's default branch")
    .option("--username <name>", "for a repository that needs signing in")
    .option(
      "--password <password>",
      "the password or token (seen by other users in the process list: prefer the next two)",
    )
    .option("--password-file <file>", "the password or token, from a file only you can read")
    .option("--password-stdin", "the password or token, from stdin (asked for on a terminal)")
    .option("--interval <duration>", "how often to look for new commits, e.g. 5m (at least 30s)")
    .option("--json")
    .action(async (url: string, flags: SetFlags) => {
      refuseUrlPassword(url);
      const given = [flags.password, flags.passwordFile, flags.passwordStdin].filter(
        (option) => option !== undefined,
      );
      if (given.length > 1) {
        throw new UsageError("give one of --password, --password-file and --password-stdin");
      }
      if (flags.password !== undefined) {
        io.stderr(
          "town: warning: a password on the command line is seen by other users of this machine in its process list and stays in the shell's history; --password-file or --password-stdin keep it out\n",
        );
      }
      const password =
        flags.password ??
        (flags.passwordFile !== undefined
          ? await readPasswordFile(resolve(io.cwd, flags.passwordFile))
          : flags.passwordStdin === true
            ? await secretFromStdin("Password")
            : undefined);
      const status = await (
        await client()
      ).setState({
        url,
        ...(flags.branch === undefined ? {} : { branch: flags.branch }),
        ...(flags.username === undefined ? {} : { username: flags.username }),
        ...(password === undefined ? {} : { password }),
        ...(flags.interval === undefined ? {} : { interval: flags.interval }),
      });
      if (flags.json) json(status);
      else print(statusText(status, Date.now()));
    });

  state
    .command("status")
    .description("the repository, the commit the box is on, what git manages, the last commits")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const status = await (await client()).stateStatus();
      if (flags.json) json(status);
      else print(statusText(status, Date.now()));
    });

  state
    .command("sync")
    .description("look for a new commit now and apply it; exit 1 when it is refused or fails")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const api = await client();
      const before = await api.stateStatus();
      io.stderr("… syncing with the state repository\n");
      const after = await api.syncState();
      const result = syncText(before, after);
      if (flags.json) json(after);
      else if (!result.failed) print(result.text);
      if (result.failed) {
        io.stderr(`town: ${result.text}\n`);
        setExit(1);
      }
    });

  state
    .command("unset")
    .description("stop following the state repository (what it made stays, managed by hand)")
    .option("--yes", "do not ask first")
    .action(async (flags: { yes?: boolean }) => {
      const api = await client();
      const { configured, url } = await api.stateStatus();
      if (!configured) {
        print("no state repository is set: there is nothing to stop following");
        return;
      }
      await confirm(
        io,
        `Stop following ${url ?? "the state repository"} (the apps, pages, volumes, repositories and settings it made stay, managed by hand from now on)`,
        flags.yes,
      );
      await api.unsetState();
      print(
        "stopped following the state repository; what it made stays and is managed by hand from now on",
      );
    });

  state
    .command("hook")
    .description("the webhook URL to give the git host: a push makes the box sync at once")
    .action(async () => {
      print((await (await client()).stateHook()).url);
    });

  state
    .command("export")
    .description("write the box as a state repository's files, to start one from what it has")
    .argument("<dir>", "a new or empty directory")
    .action(async (dir: string) => {
      const target = resolve(io.cwd, dir);
      const { files } = await (await client()).exportState();
      await writeExport(target, files);
      print(`wrote ${files.length} file(s) to ${target}:`);
      for (const file of files) print(`  ${file.path}`);
      const secrets = referencedSecrets(files);
      if (secrets.length > 0) {
        print(
          `the answers name secrets (${secrets.join(", ")}): their values are stored on this box already and are not in the files; another box needs them set with town state secret set NAME`,
        );
      }
    });

  state
    .command("lint")
    .description("check a checkout of a state repository as the box would; exit 1 on problems")
    .argument("<dir>", "the checkout")
    .action(async (dir: string) => {
      const root = resolve(io.cwd, dir);
      const read = await readCheckout(root);
      for (const path of read.skipped) io.stderr(`town: skipped ${path}: a link, not followed\n`);
      const { desired, problems } = parseCheckout(read.files);
      const all = [...read.problems, ...problems].sort((a, b) =>
        a.path < b.path ? -1 : a.path > b.path ? 1 : 0,
      );
      if (all.length > 0) {
        for (const problem of all) print(`${problem.path}: ${problem.message}`);
        io.stderr(`town: ${all.length} problem(s): the box would refuse this commit whole\n`);
        setExit(1);
        return;
      }
      const declared = [
        desired.repositories === null ? "" : `${desired.repositories.length} repositories`,
        desired.settings === null ? "" : `${Object.keys(desired.settings).length} settings`,
        `${desired.volumes.size} volumes`,
        `${desired.apps.size} apps`,
        `${desired.pages.size} pages`,
      ].filter((part) => part !== "");
      print(`${root} is a valid state repository: ${declared.join(", ")}`);
    });

  state
    .command("key")
    .description("the box's public key (age1…): answers encrypted to it can be committed")
    .action(async () => {
      print((await (await client()).stateKey()).publicKey);
    });

  state
    .command("encrypt")
    .description(
      "encrypt an answer to the box's key, here, and print it as YAML for an app file's answers",
    )
    .option("--key <recipient>", "the box's public key (town state key), instead of asking the box")
    .option("--value-file <file>", "the value, from a file only you can read (default: stdin)")
    .action(async (flags: { key?: string; valueFile?: string }) => {
      // The key first: a value typed in is not asked for when the box cannot be reached.
      const recipient = flags.key ?? (await (await client()).stateKey()).publicKey;
      const value =
        flags.valueFile !== undefined
          ? await readPasswordFile(resolve(io.cwd, flags.valueFile))
          : await secretFromStdin("Value");
      print(encryptedAnswerYaml(await encryptAnswer(value, recipient)));
      io.stderr("town: put this under the question's name in the app file's answers, indented\n");
    });

  const secret = state
    .command("secret")
    .description("values that answers name with secretRef, kept on the box instead of in git");
  secret
    .command("set")
    .description("store a secret (from stdin, asked for on a terminal, or from --value-file)")
    .argument("<name>")
    .option("--value-file <file>", "the value, from a file only you can read")
    .action(async (name: string, flags: { valueFile?: string }) => {
      const value =
        flags.valueFile !== undefined
          ? await readPasswordFile(resolve(io.cwd, flags.valueFile))
          : await secretFromStdin(`Value of ${name}`);
      await (await client()).setStateSecret(name, value);
      print(`stored secret ${name}; answers use it as {secretRef: ${name}}`);
    });
  secret
    .command("rm")
    .description("forget a secret")
    .argument("<name>")
    .action(async (name: string) => {
      await (await client()).removeStateSecret(name);
      print(`removed secret ${name}`);
    });
  secret
    .command("ls")
    .description("the secrets' names (their values are never shown)")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const { names } = await (await client()).stateSecrets();
      if (flags.json) json(names);
      else print(names.length === 0 ? "no secrets" : names.join("\n"));
    });
}
