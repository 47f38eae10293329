import type { Command } from "commander";
import { parseWhole } from "./arguments.js";
import { allPages } from "./connect.js";
import { table } from "./text.js";
import { clientKit, type JsonFlag } from "./client-kit.js";
import type { Io } from "./io.js";

/** `town repo …`: the package repositories, in their order. */
export function registerRepoCommands(program: Command, io: Io): void {
  const { client, print, json } = clientKit(program, io);
  const repo = program.command("repo").description("package repositories");
  repo
    .command("add")
    .argument("<name>")
    .argument("<url>")
    .option("--username <name>")
    .option("--password <password>")
    .action(async (name: string, url: string, flags: { username?: string; password?: string }) => {
      const added = await (
        await client()
      ).addRepository({
        name,
        url,
        ...(flags.username ? { username: flags.username } : {}),
        ...(flags.password ? { password: flags.password } : {}),
      });
      print(
        added.status.error
          ? `added ${name}, but fetching it failed: ${added.status.error}`
          : `added ${name}: ${added.status.packages} packages`,
      );
    });
  repo
    .command("ls")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const repos = await allPages((query) => client().then((api) => api.repositories(query)));
      if (flags.json) {
        json(repos);
        return;
      }
      print(
        table(
          ["#", "NAME", "URL", "PACKAGES", "REFRESHED", "ERROR"],
          repos.map((r) => [
            String(r.position),
            r.name,
            r.url,
            // Just after a start the daemon may still be reading the clone.
            r.status.loading ? "loading" : String(r.status.packages),
            r.status.refreshedAt ? new Date(r.status.refreshedAt).toISOString() : "never",
            r.status.error ?? "",
          ]),
        ),
      );
    });
  repo
    .command("rm")
    .argument("<name>")
    .action(async (name: string) => {
      await (await client()).removeRepository(name);
      print(`removed ${name}`);
    });
  repo
    .command("move")
    .argument("<name>")
    .argument("<position>", "0-based position; earlier repositories win ties")
    .action(async (name: string, position: string) => {
      const order = await (await client()).moveRepository(name, parseWhole(position, "position"));
      print(order.map((r) => `${r.position} ${r.name}`).join("\n"));
    });
  repo
    .command("refresh")
    .argument("[name]", "one repository (default: all)")
    .option("--json")
    .action(async (name: string | undefined, flags: JsonFlag) => {
      const api = await client();
      const repos = name ? [await api.refreshRepository(name)] : await api.refreshRepositories();
      if (flags.json) {
        json(repos);
        return;
      }
      for (const r of repos) {
        const changed =
          r.status.changedPackages.length > 0
            ? `, changed: ${r.status.changedPackages.join(", ")}`
            : "";
        print(
          r.status.error
            ? `${r.name}: ${r.status.error}`
            : `${r.name}: ${r.status.packages} packages${changed}`,
        );
      }
    });
}
