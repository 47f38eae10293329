import type { Command } from "commander";
import type { TownClient } from "@townos/client";
import { packageSpec } from "./arguments.js";
import { restorePointTable, rollbackText } from "./backup-views.js";
import type { ClientKit, JsonFlag } from "./client-kit.js";
import { confirm } from "./confirm.js";
import type { Io } from "./io.js";
import { UsageError } from "./usage.js";

/** `town app snapshots|snapshot|rollback`: an app's restore points and returning to one. */
export function registerRestorePointCommands(app: Command, kit: ClientKit, io: Io): void {
  const { client, print, json } = kit;

  app
    .command("snapshots")
    .description(
      "an app's restore points, newest first: taken before upgrades, on schedules, by hand",
    )
    .argument("<app>", "REPO/NAME")
    .option("--json")
    .action(async (spec: string, flags: JsonFlag) => {
      const { repo, name } = appSpec(spec);
      const points = await (await client()).restorePoints(repo, name);
      if (flags.json) json(points);
      else print(restorePointTable(points, Date.now()));
    });

  app
    .command("snapshot")
    .description("take a restore point of an app now (quiesced as its package says)")
    .argument("<app>", "REPO/NAME")
    .option("--json")
    .action(async (spec: string, flags: JsonFlag) => {
      const { repo, name } = appSpec(spec);
      const point = await (await client()).takeRestorePoint(repo, name);
      if (flags.json) json(point);
      else {
        const volumes = point.volumes.length;
        print(
          `took restore point ${point.id} of ${repo}/${name} (${volumes} volume${volumes === 1 ? "" : "s"}, quiesce: ${point.quiesce})`,
        );
      }
    });

  app
    .command("rollback")
    .description(
      "return an app to the version, answers and data of a restore point (default: the newest taken before an upgrade); the current state is kept as a restore point first",
    )
    .argument("<app>", "REPO/NAME")
    .option("--to <id>", "the restore point (see `town app snapshots`)")
    .option("--yes", "do not ask for confirmation")
    .option("--json")
    .action(async (spec: string, flags: JsonFlag & { to?: string; yes?: boolean }) => {
      const { repo, name } = appSpec(spec);
      const api = await client();
      const question = `Roll ${repo}/${name} back to ${await pointText(api, repo, name, flags)} (its data now is kept as a restore point first)`;
      await confirm(io, question, flags.yes);
      const result = await api.rollback(repo, name, flags.to);
      if (flags.json) json(result);
      else print(rollbackText(`${repo}/${name}`, result));
    });
}

/** What a rollback returns to, for the question; the list is only read when asking. */
async function pointText(
  api: TownClient,
  repo: string,
  name: string,
  flags: { to?: string; yes?: boolean },
): Promise<string> {
  if (flags.yes === true) return flags.to ?? "before its last upgrade";
  const points = await api.restorePoints(repo, name);
  const point =
    flags.to === undefined
      ? points.find((p) => p.reason === "upgrade")
      : points.find((p) => p.id === flags.to);
  if (!point) return flags.to ?? "before its last upgrade";
  return `${point.version ?? "?"} from ${point.id}`;
}

export function appSpec(spec: string): { repo: string; name: string } {
  const { repo, name, version } = packageSpec(spec);
  if (version !== undefined) throw new UsageError("give the app as REPO/NAME, without a version");
  return { repo, name };
}
