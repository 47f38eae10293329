import type { Command } from "commander";
import { ApiError, type AppProgress, type AppView } from "@townos/client";
import { collect, parseAnswers } from "./answers.js";
import { packageSpec, parseWhole } from "./arguments.js";
import { allPages } from "./connect.js";
import { table } from "./text.js";
import { linkAccounts } from "./oauth-connect.js";
import { appLines, previewLines } from "./app-views.js";
import { clientKit, usage, type JsonFlag } from "./client-kit.js";
import type { Io } from "./io.js";
import { registerCatalogCommands } from "./catalog-commands.js";
import { registerRestorePointCommands } from "./restore-point-commands.js";

/** `town app …`: the catalog, and installing, changing and removing apps. */
export function registerAppCommands(program: Command, io: Io): void {
  const kit = clientKit(program, io);
  const { client, print, json } = kit;
  const app = program.command("app").description("apps and the package catalog");
  registerCatalogCommands(app, kit);
  registerRestorePointCommands(app, kit, io);

  /** Progress lines of a change on stderr, so stdout stays the result (and --json stays JSON). */
  const showProgress = (progress: AppProgress): void => {
    if (progress.state === "started" && progress.detail === undefined)
      io.stderr(`… ${progress.step}\n`);
    else if (progress.detail !== undefined) io.stderr(`  ${progress.detail}\n`);
  };
  const finish = (result: { app: AppView; settled: boolean }, flags: JsonFlag): void => {
    if (flags.json) {
      json(result.app);
      return;
    }
    const lines = appLines(result.app);
    if (!result.settled) lines.push("  (still converging: see `town app info`)");
    print(lines.join("\n"));
  };

  app
    .command("install")
    .description("install a package and wait for it to run, showing each step")
    .argument("<package>", "REPO/NAME[@VERSION]")
    .option("--set <answer>", "QUESTION=VALUE (repeatable)", collect, [])
    .option("--preview", "show what the install would do, and change nothing")
    .option("--no-reuse", "make new volumes instead of taking back ones an uninstall kept")
    .option("--import-from <version>", "take back the volumes kept from this version")
    .option(
      "--connect <question>",
      "link an account for an oauth question: prints the page to open, waits for the approval (repeatable)",
      collect,
      [],
    )
    .option("--json")
    .action(
      async (
        spec: string,
        flags: JsonFlag & {
          set: string[];
          preview?: boolean;
          reuse: boolean;
          importFrom?: string;
          connect: string[];
        },
      ) => {
        const { repo, name, version } = packageSpec(spec);
        const api = await client();
        // Questions start from their defaults, then the answers given last time, as in the install form.
        const chosen = version ?? (await api.package(repo, name)).latestVersion;
        if (chosen === null) throw usage(`${repo}/${name} has no valid version to install`);
        const { questions } = await api.packageVersion(repo, name, chosen);
        const last = await api.lastAnswers(repo, name).catch((error: unknown) => {
          if (error instanceof ApiError && error.problem.code === "not_found") return undefined;
          throw error;
        });
        const known = new Set(questions.map((q) => q.name));
        const answers = {
          ...Object.fromEntries(questions.map((q) => [q.name, q.default ?? ""])),
          ...Object.fromEntries(
            Object.entries(last?.answers ?? {}).filter(([question]) => known.has(question)),
          ),
          ...parseAnswers(flags.set),
        };
        const request = {
          repo,
          name,
          version: chosen,
          answers,
          reuseVolumes: flags.reuse,
          ...(flags.importFrom === undefined ? {} : { importFromVersion: flags.importFrom }),
        };
        if (flags.preview) {
          const preview = await api.previewInstall(request);
          if (flags.json) json(preview);
          else print(previewLines(preview).join("\n"));
          return;
        }
        // With --json, stdout is for the result alone.
        const oauthFlows = await linkAccounts(api, { repo, name, version: chosen }, flags.connect, {
          stdout: flags.json ? io.stderr : io.stdout,
          stderr: io.stderr,
        });
        finish(
          await api.changeApp(
            { action: "install", request: { ...request, oauthFlows } },
            showProgress,
          ),
          flags,
        );
      },
    );
  app
    .command("upgrade")
    .description("upgrade an app (default: to the latest version), keeping its data and answers")
    .argument("<app>", "REPO/NAME[@VERSION]")
    .option("--set <answer>", "change an answer: QUESTION=VALUE (repeatable)", collect, [])
    .option(
      "--connect <question>",
      "link an account for an oauth question anew (as for install; repeatable)",
      collect,
      [],
    )
    .option("--json")
    .action(async (spec: string, flags: JsonFlag & { set: string[]; connect: string[] }) => {
      const { repo, name, version } = packageSpec(spec);
      const answers = parseAnswers(flags.set);
      const api = await client();
      const oauthFlows = await linkAccounts(
        api,
        { repo, name, ...(version === undefined ? {} : { version }) },
        flags.connect,
        { stdout: flags.json ? io.stderr : io.stdout, stderr: io.stderr },
      );
      const result = await api.changeApp(
        {
          action: "upgrade",
          repo,
          name,
          ...(version === undefined ? {} : { version }),
          ...(Object.keys(answers).length === 0 ? {} : { answers }),
          ...(flags.connect.length === 0 ? {} : { oauthFlows }),
        },
        showProgress,
      );
      finish(result, flags);
    });
  app
    .command("expose")
    .description(
      "set who can reach a published port: local (this box), lan (home network), internet (router forward too)",
    )
    .argument("<app>", "REPO/NAME")
    .argument("<port>", "a host port the app publishes")
    .argument("<exposure>", "local, lan or internet")
    .option("--json")
    .action(async (spec: string, portText: string, exposure: string, flags: JsonFlag) => {
      const { repo, name, version } = packageSpec(spec);
      if (version !== undefined) throw usage(`give the app as REPO/NAME, without a version`);
      if (exposure !== "local" && exposure !== "lan" && exposure !== "internet") {
        throw usage(`exposure must be local, lan or internet, not "${exposure}"`);
      }
      const port = parseWhole(portText, "port");
      finish(
        await (
          await client()
        ).changeApp({ action: "expose", repo, name, port, exposure }, showProgress),
        flags,
      );
    });
  app
    .command("dns")
    .description("publish (on) or hide (off) an app's names in the box's DNS")
    .argument("<app>", "REPO/NAME")
    .argument("<state>", "on or off")
    .action(async (spec: string, state: string) => {
      const { repo, name, version } = packageSpec(spec);
      if (version !== undefined) throw usage(`give the app as REPO/NAME, without a version`);
      if (state !== "on" && state !== "off") throw usage(`give on or off, not "${state}"`);
      await (await client()).publishAppNames(repo, name, state === "on");
      print(`${repo}/${name}: names ${state === "on" ? "published" : "hidden"}`);
    });
  for (const [action, description] of [
    ["start", "start an app and its dependencies"],
    ["stop", "stop an app and its dependencies (it stays stopped until started)"],
    ["restart", "stop and start an app's containers"],
    ["enable", "keep an app running, also after the box starts"],
    ["disable", "stop an app and keep it stopped, also after the box starts"],
  ] as const) {
    app
      .command(action)
      .description(description)
      .argument("<app>", "REPO/NAME")
      .option("--json")
      .action(async (spec: string, flags: JsonFlag) => {
        const { repo, name, version } = packageSpec(spec);
        if (version !== undefined) throw usage(`give the app as REPO/NAME, without a version`);
        finish(await (await client()).changeApp({ action, repo, name }, showProgress), flags);
      });
  }
  app
    .command("ls")
    .description("installed apps")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const apps = await allPages((query) => client().then((api) => api.apps(query)));
      if (flags.json) {
        json(apps);
        return;
      }
      print(
        apps.length === 0
          ? "no apps are installed"
          : table(
              ["APP", "VERSION", "CONTAINERS", "ERROR"],
              apps.map((a) => [
                `${a.repo}/${a.name}`,
                a.version,
                a.containers.map((c) => c.state).join(","),
                a.lastError ?? "",
              ]),
            ),
      );
    });
  app
    .command("info")
    .description(
      "an installed app: ports, volumes, notes, containers, last error; for a VM its accelerator, memory, CPUs, disk and forwarded ports",
    )
    .argument("<app>", "REPO/NAME")
    .option("--json")
    .action(async (spec: string, flags: JsonFlag) => {
      const { repo, name, version } = packageSpec(spec);
      if (version !== undefined) throw usage(`give the app as REPO/NAME, without a version`);
      const view = await (await client()).app(repo, name);
      if (flags.json) {
        json(view);
        return;
      }
      print(appLines(view).join("\n"));
    });
  app
    .command("uninstall")
    .description("uninstall an app; its volumes are kept aside unless --purge")
    .argument("<app>", "REPO/NAME")
    .option("--purge", "delete the app's volumes")
    .action(async (spec: string, flags: { purge?: boolean }) => {
      const { repo, name, version } = packageSpec(spec);
      if (version !== undefined) throw usage(`give the app as REPO/NAME, without a version`);
      await (await client()).uninstallApp(repo, name, { purge: flags.purge === true });
      print(
        `${repo}/${name} is uninstalled${flags.purge ? " and its volumes deleted" : "; its volumes are kept aside"}`,
      );
    });
}
