import type { Command } from "commander";
import { packageSpec } from "./arguments.js";
import { allPages } from "./connect.js";
import { table } from "./text.js";
import type { ClientKit, JsonFlag } from "./client-kit.js";

/** `town app search`, `show` and `upgrades`: the package catalog, under `app`. */
export function registerCatalogCommands(app: Command, kit: ClientKit): void {
  const { client, print, json } = kit;
  app
    .command("search")
    .argument("[term]")
    .option("--json")
    .action(async (term: string | undefined, flags: JsonFlag) => {
      const found = await allPages((query) =>
        client().then((api) => api.catalog({ ...query, ...(term ? { q: term } : {}) })),
      );
      if (flags.json) {
        json(found);
        return;
      }
      print(
        table(
          ["PACKAGE", "LATEST", "DESCRIPTION"],
          found.map((p) => [
            `${p.repo}/${p.name}${p.featured ? " *" : ""}`,
            p.latestVersion ?? "(invalid)",
            p.installed
              ? `[installed ${p.installedVersion ?? ""}] ${p.description}`
              : p.description,
          ]),
        ),
      );
    });
  app
    .command("show")
    .argument("<package>", "REPO/NAME[@VERSION]")
    .option("--json")
    .action(async (spec: string, flags: JsonFlag) => {
      const { repo, name, version: asked } = packageSpec(spec);
      const api = await client();
      const detail = await api.package(repo, name);
      const version = asked ?? detail.latestVersion ?? detail.versions[0]?.version;
      const chosen =
        version === undefined ? undefined : await api.packageVersion(repo, name, version);
      if (flags.json) {
        json({ ...detail, version: chosen });
        return;
      }
      const lines = [
        `${detail.repo}/${detail.name}: ${detail.description}`,
        `versions: ${detail.versions.map((v) => (v.valid ? v.version : `${v.version} (invalid)`)).join(", ")}`,
      ];
      if (chosen) {
        lines.push(`${chosen.version}:`);
        for (const error of chosen.errors)
          lines.push(`  error: ${error.field ? `${error.field}: ` : ""}${error.message}`);
        for (const q of chosen.questions) {
          lines.push(
            `  ? ${q.name} (${q.type || "text"}${q.optional ? ", optional" : ""}): ${q.query}${q.default ? ` [${q.default}]` : ""}`,
          );
        }
        const preview = chosen.preview;
        if (preview) {
          lines.push(`  runtime: ${preview.runtime}${preview.image ? ` ${preview.image}` : ""}`);
          for (const v of preview.volumes) lines.push(`  volume ${v.name} at ${v.mountpoint}`);
          for (const p of preview.ports)
            lines.push(
              `  port ${p.name ?? ""} ${String(p.host ?? "ingress")} → ${String(p.container)} (${p.exposure})`,
            );
          if (preview.ingress) lines.push(`  https://${preview.ingress.host}/`);
          if (preview.questionsToAnswer.length > 0)
            lines.push(`  needs answers: ${preview.questionsToAnswer.join(", ")}`);
          for (const problem of preview.problems) {
            lines.push(`  problem: ${problem.field ? `${problem.field}: ` : ""}${problem.message}`);
          }
        }
      }
      print(lines.join("\n"));
    });
  app
    .command("upgrades")
    .option("--all", "include dismissed offers")
    .option("--json")
    .action(async (flags: JsonFlag & { all?: boolean }) => {
      const offers = await allPages((query) =>
        client().then((api) => api.upgrades({ ...query, all: flags.all === true })),
      );
      if (flags.json) {
        json(offers);
        return;
      }
      print(
        offers.length === 0
          ? "everything is up to date"
          : table(
              ["APP", "INSTALLED", "OFFER", "WHY"],
              offers.map((o) => [
                `${o.repo}/${o.name}`,
                o.installedVersion,
                `${o.offerRepo}/${o.name}@${o.offerVersion}`,
                o.reason === "newer-version" ? "newer version" : "package file changed",
              ]),
            ),
      );
    });
}
