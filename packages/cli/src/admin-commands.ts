import type { Command } from "commander";
import { parseWhole } from "./arguments.js";
import { allPages } from "./connect.js";
import { table } from "./text.js";
import { clientKit, usage, type JsonFlag } from "./client-kit.js";
import type { Io } from "./io.js";

/** `town audit` and `town settings …` (administrators). */
export function registerAdminCommands(program: Command, io: Io): void {
  const { client, print, json } = clientKit(program, io);
  program
    .command("audit")
    .description("the audit log (administrators)")
    .option("--search <text>")
    .option("--user <username>")
    .option("--limit <n>", "entries to show", "50")
    .option("--json")
    .action(async (flags: JsonFlag & { search?: string; user?: string; limit: string }) => {
      const page = await (
        await client()
      ).audit({
        limit: parseWhole(flags.limit, "limit"),
        ...(flags.search ? { q: flags.search } : {}),
        ...(flags.user ? { username: flags.user } : {}),
      });
      if (flags.json) {
        json(page);
        return;
      }
      print(
        table(
          ["WHEN", "WHO", "ACTION", "TARGET", "OUTCOME"],
          page.items.map((e) => [
            new Date(e.at).toISOString(),
            e.username ?? "-",
            e.action,
            e.target,
            e.error ? `${e.outcome}: ${e.error}` : e.outcome,
          ]),
        ),
      );
    });

  const settings = program.command("settings").description("box settings");
  settings
    .command("get")
    .argument("[key]")
    .option("--json")
    .action(async (key: string | undefined, flags: JsonFlag) => {
      const all = await allPages((query) => client().then((api) => api.settings(query)));
      const chosen = key === undefined ? all : all.filter((s) => s.key === key);
      if (key !== undefined && chosen.length === 0) throw usage(`there is no setting "${key}"`);
      if (flags.json) {
        json(key === undefined ? chosen : chosen[0]);
        return;
      }
      print(
        table(
          ["KEY", "VALUE", "DEFAULT", "ABOUT"],
          chosen.map((s) => [s.key, String(s.value), String(s.default), s.description]),
        ),
      );
    });
  settings
    .command("set")
    .argument("<key>")
    .argument("<value>")
    .action(async (key: string, value: string) => {
      const typed =
        value === "true"
          ? true
          : value === "false"
            ? false
            : /^[0-9]+$/.test(value)
              ? Number(value)
              : value;
      const setting = await (await client()).setSetting(key, typed);
      print(`${setting.key} = ${String(setting.value)}`);
    });
}
