import type { Command } from "commander";
import type { AppHealth, LogEntry, TownClient } from "@townos/client";
import { packageSpec, parseWhole } from "./arguments.js";
import { clientKit } from "./client-kit.js";
import { table } from "./text.js";
import type { Io } from "./io.js";
import { UsageError } from "./usage.js";

interface LogFlags {
  follow?: boolean;
  search?: string;
  tail: string;
  instance?: string;
  json?: boolean;
}

/** The daemon's largest log page. */
const PAGE_LIMIT = 1000;

/** `town app logs` and `town app health`, added to the `app` command. */
export function registerLogCommands(program: Command, io: Io): void {
  const app = program.commands.find((command) => command.name() === "app");
  if (!app) throw new Error("the app command must be registered first");
  const { client, print } = clientKit(program, io);

  app
    .command("logs")
    .description("an app's logs, all its containers merged (stderr lines go to stderr)")
    .argument("<app>", "REPO/NAME")
    .option("-f, --follow", "keep printing new lines until Ctrl-C")
    .option("--search <text>", "only lines containing this (any case)")
    .option("--tail <n>", "lines of history to show", "100")
    .option("--instance <instance>", "only this package of the app's tree")
    .option("--json", "one JSON object per line")
    .action(async (spec: string, flags: LogFlags) => {
      const { repo, name } = appSpec(spec);
      const tail = parseWhole(flags.tail, "tail");
      const api = await client();
      const filter = {
        ...(flags.search === undefined ? {} : { search: flags.search }),
        ...(flags.instance === undefined ? {} : { instance: flags.instance }),
      };
      const show = (entry: LogEntry): void => {
        if (flags.json) print(JSON.stringify(entry));
        else if (entry.stream === "stderr") io.stderr(`${logLine(entry)}\n`);
        else print(logLine(entry));
      };
      if (!flags.follow) {
        for (const entry of await history(api, repo, name, tail, filter)) show(entry);
        return;
      }
      if (tail > PAGE_LIMIT) throw new UsageError(`--tail with --follow is at most ${PAGE_LIMIT}`);
      // Ctrl-C ends the stream (and the daemon's following) instead of killing the process mid-line.
      const stop = new AbortController();
      const interrupt = (): void => {
        stop.abort();
      };
      process.once("SIGINT", interrupt);
      try {
        for await (const event of api.followAppLogs(repo, name, { ...filter, tail }, stop.signal)) {
          if (event.type === "line") show(event);
          else if (flags.json) print(JSON.stringify(event));
          else if (event.state !== "attached") io.stderr(`-- ${event.instance} ${event.state}\n`);
        }
      } finally {
        process.off("SIGINT", interrupt);
      }
    });

  app
    .command("health")
    .description("each container of an app: state, exit code, restarts, healthcheck")
    .argument("<app>", "REPO/NAME")
    .option("--json")
    .action(async (spec: string, flags: { json?: boolean }) => {
      const { repo, name } = appSpec(spec);
      const health = await (await client()).appHealth(repo, name);
      if (flags.json) {
        print(JSON.stringify(health, null, 2));
        return;
      }
      print(healthTable(health));
    });
}

function appSpec(spec: string): { repo: string; name: string } {
  const { repo, name, version } = packageSpec(spec);
  if (version !== undefined) throw new UsageError("give the app as REPO/NAME, without a version");
  return { repo, name };
}

/** The newest `count` lines, oldest first, in as many pages as that takes. */
async function history(
  api: TownClient,
  repo: string,
  name: string,
  count: number,
  filter: { search?: string; instance?: string },
): Promise<LogEntry[]> {
  const pages: LogEntry[][] = [];
  let left = count;
  let before: string | undefined;
  while (left > 0) {
    const page = await api.appLogs(repo, name, {
      ...filter,
      limit: Math.min(left, PAGE_LIMIT),
      ...(before === undefined ? {} : { before }),
    });
    pages.unshift(page.items);
    left -= page.items.length;
    if (page.before === null) break;
    before = page.before;
  }
  return pages.flat();
}

function logLine(entry: LogEntry): string {
  const time = new Date(entry.time).toISOString().replace(/\.000Z$/, "Z");
  return `${time} ${entry.instance} ${entry.text}${entry.truncated ? " […]" : ""}`;
}

function healthTable(health: AppHealth): string {
  const rows = health.containers.map((c) => [
    c.container,
    c.state,
    c.exitCode === null ? "-" : String(c.exitCode),
    String(c.restartCount),
    c.health.status === "none"
      ? "-"
      : `${c.health.status}${c.health.failingStreak > 0 ? ` (${c.health.failingStreak} failed)` : ""}`,
    (c.health.lastOutput ?? c.error ?? "").replace(/\s+/g, " ").trim().slice(0, 80),
  ]);
  const title = `${health.repo}/${health.name}${health.enabled ? "" : " (disabled)"}`;
  return `${title}\n${table(["CONTAINER", "STATE", "EXIT", "RESTARTS", "HEALTH", "LAST CHECK"], rows)}`;
}
