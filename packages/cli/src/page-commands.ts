import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import type { CreatePageBody, PageInfo, PageLogLine, TownClient } from "@townos/client";
import { collect } from "./answers.js";
import { clientKit, type JsonFlag } from "./client-kit.js";
import type { Io } from "./io.js";
import { logLineText, pageLines, pageTable, stateText } from "./page-views.js";
import { counted, progressLine } from "./upload-progress.js";
import { UsageError } from "./usage.js";

/** How often a deploy under way is asked about. */
const POLL_MS = 500;

export interface CreateFlags extends JsonFlag {
  archive?: string;
  git?: string;
  image?: string;
  branch?: string;
  dir?: string;
  path?: string;
  buildImage?: string;
  buildCommand?: string;
  output?: string;
  domain: string[];
}

/**
 * `town page create`'s flags as the API's body, and the archive to upload
 * after it: exactly one source, each flag only with the source it belongs to.
 */
export function createRequest(
  name: string,
  flags: CreateFlags,
): { body: CreatePageBody; archive: string | undefined } {
  const sources = (["archive", "git", "image"] as const).filter(
    (type) => flags[type] !== undefined,
  );
  const [type] = sources;
  if (type === undefined) {
    throw new UsageError(
      "give the page's source: --archive FILE, --git URL or --image IMAGE --path DIR",
    );
  }
  if (sources.length > 1) {
    throw new UsageError(
      `give one source, not ${sources.map((s) => `--${s}`).join(" and ")}: --archive FILE, --git URL or --image IMAGE --path DIR`,
    );
  }
  if (flags.branch !== undefined && type !== "git") {
    throw new UsageError("--branch is for --git pages");
  }
  if (flags.dir !== undefined && type === "image") {
    throw new UsageError(
      "--dir is for --archive and --git pages; an --image page names its directory with --path",
    );
  }
  if (flags.path !== undefined && type !== "image") {
    throw new UsageError(
      "--path is for --image pages (the directory in the image); --dir serves a sub-directory of an archive or git repository",
    );
  }
  if (type === "image" && flags.path === undefined) {
    throw new UsageError("--image needs --path DIR: the directory inside the image to serve");
  }
  const build = { image: flags.buildImage, command: flags.buildCommand, output: flags.output };
  const given = Object.values(build).filter((value) => value !== undefined).length;
  if (given !== 0 && given !== 3) {
    const missing = [
      build.image === undefined ? "--build-image" : "",
      build.command === undefined ? "--build-command" : "",
      build.output === undefined ? "--output" : "",
    ].filter((flag) => flag !== "");
    throw new UsageError(
      `--build-image, --build-command and --output go together (or none of them): missing ${missing.join(" and ")}`,
    );
  }
  const body: CreatePageBody = {
    name,
    source: {
      type,
      ...(type === "git" ? { url: flags.git } : {}),
      ...(type === "image" ? { image: flags.image, path: flags.path } : {}),
      ...(flags.branch === undefined ? {} : { branch: flags.branch }),
      ...(flags.dir === undefined ? {} : { dir: flags.dir }),
    },
    ...(build.image !== undefined && build.command !== undefined && build.output !== undefined
      ? { build: { image: build.image, command: build.command, output: build.output } }
      : {}),
    ...(flags.domain.length > 0 ? { domains: flags.domain } : {}),
  };
  return { body, archive: flags.archive };
}

/** Whether a git URL carries a user or password (which the process list shows to everyone). */
export function hasCredentials(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.username !== "" || parsed.password !== "";
  } catch {
    return false;
  }
}

/** `town page …`: static websites served from an archive, a git repository or an image. */
export function registerPageCommands(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  const { client, print, json } = clientKit(program, io);

  const show = (page: PageInfo, flags: JsonFlag): void => {
    if (flags.json) json(page);
    else print(pageLines(page).join("\n"));
  };
  /** A deploy's page as the result, on stdout; its failure's reason on stderr and exit code 1. */
  const finish = (page: PageInfo, flags: JsonFlag): void => {
    show(page, flags);
    if (page.state === "failed") {
      io.stderr(`town: deploying ${page.name} failed: ${page.error ?? "no reason given"}\n`);
      setExit(1);
    }
  };

  /** Waits out a deploy under way, showing its steps on stderr (redrawn in place on a terminal). */
  const settle = async (api: TownClient, started: PageInfo): Promise<PageInfo> => {
    let page = started;
    let shown = "";
    while (page.state === "deploying") {
      const state = `${page.name}: ${stateText(page)}`;
      if (state !== shown) {
        io.stderr(io.interactive ? `\r${state.padEnd(shown.length)}` : `${state}\n`);
        shown = state;
      }
      await sleep(POLL_MS);
      page = await api.page(page.name);
    }
    if (io.interactive && shown !== "") io.stderr("\n");
    return page;
  };

  /** Streams an archive as the page's new version, with progress on a terminal. */
  const upload = async (
    api: TownClient,
    name: string,
    file: { path: string; size: number },
  ): Promise<PageInfo> => {
    const { path, size: total } = file;
    const progress = io.interactive ? progressLine(io, total) : undefined;
    const page = await api.uploadPage(name, counted(createReadStream(path), progress));
    progress?.(total, true);
    return page;
  };

  const page = program
    .command("page")
    .description("pages: static websites from an archive, a git repository or a container image");

  page
    .command("ls")
    .description("every page with its state, URL, source and last update")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const list = await (await client()).pages();
      if (flags.json) json(list);
      else print(pageTable(list.items));
    });

  page
    .command("show")
    .description("a page: state, URLs, source, build, current and previous versions")
    .argument("<name>")
    .option("--json")
    .action(async (name: string, flags: JsonFlag) => {
      show(await (await client()).page(name), flags);
    });

  page
    .command("create")
    .description("create a page from one source and wait until it is online")
    .addHelpText(
      "after",
      [
        "",
        "Sources (exactly one):",
        "  --archive FILE [--dir SUBDIR]          upload a tar, tar.gz, tar.xz or zip",
        "  --git URL [--branch B] [--dir SUBDIR]  a git repository, refreshed on a schedule",
        "                                         and by its webhook (town page hook NAME)",
        "  --image IMAGE --path DIR               a directory of a container image",
        "Build (optional, all three or none):",
        "  --build-image IMAGE --build-command CMD --output DIR",
        "                                         CMD runs in IMAGE over the source; DIR is served",
      ].join("\n"),
    )
    .argument("<name>", "the page's name: its address is https://NAME.<tld>/")
    .option("--archive <file>", "an archive to serve")
    .option("--git <url>", "a git repository (http or https; credentials are kept secret)")
    .option("--branch <branch>", "git: the branch (default: the remote's default)")
    .option("--dir <subdir>", "archive or git: the sub-directory to serve (or build)")
    .option("--image <image>", "a container image to take the site from")
    .option("--path <dir>", "image: the directory inside the image to serve")
    .option("--build-image <image>", "build: the image the build command runs in")
    .option("--build-command <cmd>", "build: a shell command run in the source's directory")
    .option("--output <dir>", "build: the directory it writes, relative to the source's")
    .option("--domain <domain>", "a public domain too (repeatable)", collect, [])
    .option("--json")
    .action(async (name: string, flags: CreateFlags) => {
      const { body, archive } = createRequest(name, flags);
      if (body.source.url !== undefined && hasCredentials(body.source.url)) {
        io.stderr(
          "town: warning: credentials in the --git URL are visible to other users in the process list and stay in the shell history\n",
        );
      }
      // Checked before the page exists, so a typo leaves nothing behind.
      const file = archive === undefined ? undefined : await readable(resolve(io.cwd, archive));
      const api = await client();
      let created = await api.createPage(body);
      if (file !== undefined) {
        try {
          created = await upload(api, name, file);
        } catch (error) {
          io.stderr(
            `town: ${name} was created; its content was not: send it again with \`town page upload ${name} FILE\`\n`,
          );
          throw error;
        }
      }
      finish(await settle(api, created), flags);
    });

  page
    .command("upload")
    .description("upload a new version of an archive page (tar, tar.gz, tar.xz, zip)")
    .argument("<name>")
    .argument("<file>")
    .option("--json")
    .action(async (name: string, file: string, flags: JsonFlag) => {
      const archive = await readable(resolve(io.cwd, file));
      const api = await client();
      finish(await settle(api, await upload(api, name, archive)), flags);
    });

  page
    .command("rebuild")
    .description("deploy a page again from its source (a git page fetches its branch)")
    .argument("<name>")
    .option("--json")
    .action(async (name: string, flags: JsonFlag) => {
      const api = await client();
      finish(await settle(api, await api.rebuildPage(name)), flags);
    });

  page
    .command("rollback")
    .description("serve the previous version again")
    .argument("<name>")
    .option("--json")
    .action(async (name: string, flags: JsonFlag) => {
      // No deploy: a failure the page still shows is an earlier one's, not this command's.
      show(await (await client()).rollbackPage(name), flags);
    });

  page
    .command("rm")
    .description("delete a page and its content")
    .argument("<name>")
    .action(async (name: string) => {
      await (await client()).deletePage(name);
      print(`deleted ${name}`);
    });

  page
    .command("logs")
    .description(
      "the last deploy's log: fetching, building, publishing (stderr lines go to stderr)",
    )
    .argument("<name>")
    .option("-f, --follow", "follow a deploy under way to its end; exit 1 if it failed")
    .action(async (name: string, flags: { follow?: boolean }) => {
      const api = await client();
      const show = (line: PageLogLine): void => {
        const text = logLineText(line);
        if (line.stream === "stderr") io.stderr(`${text}\n`);
        else print(text);
      };
      if (!flags.follow) {
        const log = await api.pageLog(name);
        if (log.truncated) io.stderr("town: earlier lines were dropped to keep the log bounded\n");
        for (const line of log.items) show(line);
        return;
      }
      // Ctrl-C ends the stream (and the daemon's following) instead of killing the process mid-line.
      const stop = new AbortController();
      const interrupt = (): void => {
        stop.abort();
      };
      process.once("SIGINT", interrupt);
      try {
        for await (const event of api.followPageLog(name, stop.signal)) {
          if (event.type === "line") {
            show(event);
            continue;
          }
          if (event.state === "failed") {
            io.stderr(`town: deploying ${name} failed: ${event.error ?? "no reason given"}\n`);
            setExit(1);
          } else io.stderr(`-- ${name}: ${event.state}\n`);
          break;
        }
      } finally {
        process.off("SIGINT", interrupt);
      }
    });

  page
    .command("domain")
    .description("add or remove a public domain (its certificate comes through the ingress)")
    .argument("<name>")
    .argument("<action>", "add or rm")
    .argument("<domain>")
    .option("--json")
    .action(async (name: string, action: string, domain: string, flags: JsonFlag) => {
      if (action !== "add" && action !== "rm") {
        throw new UsageError(`the action is add or rm, not "${action}"`);
      }
      const api = await client();
      show(
        action === "add"
          ? await api.addPageDomain(name, domain)
          : await api.removePageDomain(name, domain),
        flags,
      );
    });

  page
    .command("hook")
    .description("the webhook URL a git host calls on a push (it holds a secret: keep it private)")
    .argument("<name>")
    .action(async (name: string) => {
      print((await (await client()).pageHook(name)).url);
    });
}

/** A clear refusal for an archive that cannot be read, before anything is sent. */
async function readable(path: string): Promise<{ path: string; size: number }> {
  const info = await stat(path).catch((error: unknown) => {
    throw new UsageError(
      `cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
  });
  if (!info.isFile()) throw new UsageError(`${path} is not a file`);
  return { path, size: info.size };
}
