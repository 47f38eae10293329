import type { Command } from "commander";
import {
  ApiError,
  type TownClient,
  type AppInstallPreview,
  type AppProgress,
  type AppView,
} from "@townos/client";
import { collect, parseAnswers } from "./answers.js";
import { DEFAULT_DATA_DIR, SETUP_CODE_FILE } from "@townos/daemon";
import { packageSpec, parseWhole } from "./arguments.js";
import { allPages, connect } from "./connect.js";
import { forgetToken, readSetupCode, saveToken } from "./credentials.js";
import type { Io } from "./io.js";
import { UsageError } from "./usage.js";
import { formatBytes, table } from "./text.js";
import { linkAccounts } from "./oauth-connect.js";

interface JsonFlag {
  json?: boolean;
}

/** The commands that talk to a running daemon. */
export function registerClientCommands(program: Command, io: Io): void {
  const client = (): Promise<TownClient> => connect(program, io);
  const print = (text: string): void => {
    io.stdout(text.endsWith("\n") ? text : `${text}\n`);
  };
  const json = (value: unknown): void => {
    print(JSON.stringify(value, null, 2));
  };
  /** Asks for what was not given, when there is a terminal to ask on. */
  const need = async (
    value: string | undefined,
    question: string,
    hidden = false,
  ): Promise<string> => {
    if (value !== undefined) return value;
    if (!io.interactive) throw usage(`${question.replace(/:\s*$/, "")} is required`);
    return io.ask(question, hidden);
  };
  /** An account's password: from the flag (with a warning), TOWN_PASSWORD, or the prompt. */
  const password = async (flag: string | undefined): Promise<string> => {
    if (flag !== undefined) {
      io.stderr(
        "town: warning: a password given with --password is visible to other users in the process list and stays in the shell history; leave it out to be asked, or set TOWN_PASSWORD\n",
      );
      return flag;
    }
    return need(io.env["TOWN_PASSWORD"] || undefined, "Password: ", true);
  };

  program
    .command("setup")
    .description("create the first administrator of a new box, and sign in")
    .option("--username <name>")
    .option("--password <password>")
    .option("--email <address>")
    .option(
      "--code <code>",
      `the setup code the daemon logged (default: read from ${SETUP_CODE_FILE} in TOWN_DATA_DIR, ${DEFAULT_DATA_DIR})`,
    )
    .action(
      async (flags: { username?: string; password?: string; email?: string; code?: string }) => {
        const api = await client();
        const setupCode =
          flags.code ??
          (await readSetupCode(io.env)) ??
          (io.interactive ? await io.ask("Setup code (in the daemon's log): ", false) : undefined);
        const signedIn = await api.setup({
          username: await need(flags.username, "Username: "),
          password: await password(flags.password),
          ...(flags.email ? { email: flags.email } : {}),
          ...(setupCode ? { setupCode } : {}),
        });
        await saveToken(io.env, signedIn.token);
        print(`Town OS is set up; signed in as ${signedIn.account.username} (administrator)`);
      },
    );

  program
    .command("login")
    .description("sign in and keep the session token for later commands")
    .option("--username <name>")
    .option("--password <password>")
    .action(async (flags: { username?: string; password?: string }) => {
      const api = await client();
      // A token saved before the daemon restarted is no longer valid: signing in must not send it.
      api.token = undefined;
      const signedIn = await api.login({
        username: await need(flags.username, "Username: "),
        password: await password(flags.password),
      });
      await saveToken(io.env, signedIn.token);
      print(`signed in as ${signedIn.account.username}`);
    });

  program
    .command("logout")
    .description("end this session")
    .action(async () => {
      const api = await client();
      if (api.token) {
        try {
          await api.logout();
        } catch (error) {
          // An expired session is already over; forgetting the token is all that is left.
          if (!(error instanceof ApiError && error.problem.code === "unauthenticated")) throw error;
        }
      }
      await forgetToken(io.env);
      print("signed out");
    });

  const user = program.command("user").description("accounts (administrators)");
  user
    .command("add")
    .option("--username <name>")
    .option("--password <password>")
    .option("--email <address>")
    .option("--admin", "make the account an administrator")
    .action(
      async (flags: { username?: string; password?: string; email?: string; admin?: boolean }) => {
        const account = await (
          await client()
        ).createAccount({
          username: await need(flags.username, "Username: "),
          password: await password(flags.password),
          role: flags.admin ? "admin" : "user",
          ...(flags.email ? { email: flags.email } : {}),
        });
        print(`added ${account.username} (${account.role})`);
      },
    );
  user
    .command("ls")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const page = await allPages((query) => client().then((api) => api.accounts(query)));
      if (flags.json) {
        json(page);
        return;
      }
      print(
        table(
          ["USERNAME", "ROLE", "STATE", "EMAIL"],
          page.map((a) => [a.username, a.role, a.disabled ? "disabled" : "active", a.email ?? ""]),
        ),
      );
    });
  for (const [name, disabled] of [
    ["disable", true],
    ["enable", false],
  ] as const) {
    user
      .command(name)
      .argument("<username>")
      .action(async (username: string) => {
        const account = await (await client()).updateAccount(username, { disabled });
        print(`${account.username} is ${account.disabled ? "disabled" : "enabled"}`);
      });
  }
  user
    .command("promote")
    .argument("<username>")
    .action(async (username: string) => {
      await (await client()).updateAccount(username, { role: "admin" });
      print(`${username} is an administrator`);
    });

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

  const app = program.command("app").description("apps and the package catalog");
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
    .description("an installed app: ports, volumes, notes, containers, last error")
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

function appLines(view: AppView): string[] {
  const state = [
    view.enabled ? "" : "disabled",
    view.running ? "" : "stopped",
    view.held ? "held for a volume upload" : "",
    view.postUpdatePending ? "post_update pending" : "",
  ].filter((part) => part !== "");
  const lines = [
    `${view.repo}/${view.name} ${view.version}${state.length > 0 ? ` (${state.join(", ")})` : ""}`,
  ];
  for (const url of view.urls) lines.push(`  ${url}`);
  for (const p of view.ports) {
    const role = p.name === null ? "" : ` ${p.name}`;
    lines.push(`  port${role} ${p.host} → ${p.container} (${p.exposure})`);
  }
  for (const v of view.volumes) lines.push(`  volume ${v.instance}/${v.name} at ${v.mountpoint}`);
  for (const n of view.notes) {
    const hidden = n.secret && n.value === "";
    lines.push(`  ${n.label}: ${hidden ? "(secret: only administrators see it)" : n.value}`);
  }
  for (const c of view.containers) lines.push(`  container ${c.name}: ${c.state}`);
  if (view.lastError) lines.push(`  last error: ${view.lastError}`);
  return lines;
}

function previewLines(preview: AppInstallPreview): string[] {
  const lines = [`${preview.repo}/${preview.name} ${preview.version} (${preview.runtime})`];
  for (const image of preview.images) lines.push(`  image ${image}`);
  for (const v of preview.volumes) {
    const size = v.quota === null ? "no quota" : formatBytes(v.quota);
    lines.push(
      `  volume ${v.instance}/${v.name} at ${v.mountpoint}, ${size}: ${v.action === "reuse" ? `taken back from ${v.from ?? "?"}` : "new"}`,
    );
  }
  for (const p of preview.ports) {
    lines.push(
      `  port ${p.name ?? ""} ${String(p.host ?? "ingress")} → ${String(p.container)} (${p.exposure})`,
    );
  }
  const { disk } = preview;
  const free = disk.freeBytes === null ? "unknown" : formatBytes(disk.freeBytes);
  lines.push(
    `  disk: up to ${formatBytes(disk.quotaBytes)} in quotas${disk.unboundedVolumes > 0 ? ` and ${disk.unboundedVolumes} volume(s) without one` : ""}; ${free} free${disk.quotasEnforced ? "" : " (quotas are not enforced on this storage)"}${disk.fits ? "" : " — NOT ENOUGH SPACE"}`,
  );
  if (preview.questionsToAnswer.length > 0) {
    lines.push(`  needs answers: ${preview.questionsToAnswer.join(", ")}`);
  }
  for (const problem of preview.problems) {
    lines.push(`  problem: ${problem.field ? `${problem.field}: ` : ""}${problem.message}`);
  }
  return lines;
}

function usage(message: string): UsageError {
  return new UsageError(message);
}
