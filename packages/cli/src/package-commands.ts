import { relative, resolve } from "node:path";
import type { Command } from "commander";
import {
  compilePackage,
  isTownError,
  loadRepository,
  PackageIndex,
  prefillAnswers,
  type CompiledPackage,
  type Issue,
  type SystemInfo,
} from "@townos/format";
import { systemInfo } from "@townos/daemon";
import { collect, parseAnswers } from "./answers.js";
import type { Io } from "./io.js";
import { readRepositoryDir } from "./repository-dir.js";

export function registerPackageCommands(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  const pkg = program.command("package").description("work with package repositories on disk");

  pkg
    .command("lint")
    .description("validate every package file of a repository directory")
    .argument("<dir>", "repository directory (holds packages/<name>/<version>.yaml)")
    .action(async (dir: string) => {
      setExit(await lint(resolve(io.cwd, dir), io));
    });

  pkg
    .command("compile")
    .description("compile one package and its dependencies with answers, as an install would")
    .argument("<dir>", "repository directory")
    .argument("<package>", "NAME@VERSION (or NAME for the latest version)")
    .option("--set <question=value>", "answer a question (repeatable)", collect, [])
    .option("--repo <name>", "repository name the package is installed from", "default")
    .option("--tld <tld>", "top-level domain of the box's names", "home")
    .option("--hostname <name>", "the box's host name", systemInfo().hostname)
    .option("--internal-ip <address>", "the box's LAN address", systemInfo().internalIP)
    .option(
      "--external-ip <address>",
      "the box's address as seen from the internet (default: LAN address)",
    )
    .option("--taken-port <port>", "a host port already in use (repeatable)", collect, [])
    .option("--json", "print the plan (or the errors) as JSON")
    .action(async (dir: string, spec: string, options: CompileFlags) => {
      setExit(await compile(resolve(io.cwd, dir), spec, options, io));
    });
}

interface CompileFlags {
  set: string[];
  repo: string;
  tld: string;
  hostname: string;
  internalIp: string;
  externalIp?: string;
  takenPort: string[];
  json?: boolean;
}

async function lint(dir: string, io: Io): Promise<number> {
  const repository = loadRepository(await readRepositoryDir(dir));
  const shown = (path: string): string => relative(io.cwd, resolve(dir, path)) || path;
  let errors = 0;
  let files = 0;
  for (const versions of repository.packages.values()) {
    for (const entry of versions.values()) {
      files += 1;
      for (const issue of entry.errors) io.stdout(formatIssue(shown(entry.path), issue, ""));
      for (const issue of entry.warnings)
        io.stdout(formatIssue(shown(entry.path), issue, "warning: "));
      errors += entry.errors.length;
    }
  }
  for (const problem of repository.problems)
    io.stdout(formatIssue(shown(problem.path), problem, ""));
  errors += repository.problems.length;
  io.stderr(`${files} package files, ${errors} problems\n`);
  return errors === 0 ? 0 : 1;
}

function formatIssue(path: string, issue: Issue, prefix: string): string {
  const { line, col } = issue.location ?? { line: 1, col: 1 };
  const where = issue.question
    ? `question ${issue.question}: `
    : issue.field
      ? `${issue.field}: `
      : "";
  return `${path}:${line}:${col}: ${prefix}${where}${issue.message}\n`;
}

async function compile(dir: string, spec: string, flags: CompileFlags, io: Io): Promise<number> {
  const fail = (issues: Issue[]): number => {
    if (flags.json) {
      io.stdout(`${JSON.stringify({ errors: issues.map(toJsonIssue) }, null, 2)}\n`);
    } else {
      for (const issue of issues)
        io.stderr(`town: ${toJsonIssue(issue).field ?? ""}${describe(issue)}\n`);
    }
    return 2;
  };
  const [name = "", version] = spec.split("@", 2);
  const answers = parseAnswers(flags.set);
  const takenPorts = flags.takenPort.map(Number);
  if (takenPorts.some((port) => !Number.isInteger(port) || port < 1 || port > 65535)) {
    return fail([{ field: "--taken-port", message: "ports are integers 1-65535" }]);
  }

  const repository = loadRepository(await readRepositoryDir(dir));
  const index = new PackageIndex([{ name: flags.repo, repository }]);
  const entry = repository.packages.get(name)?.get(version ?? "");
  if (entry && !entry.definition)
    return fail(entry.errors.map((issue) => ({ ...issue, field: entry.path })));
  const source = index.find(
    version === undefined ? { repo: flags.repo, name } : { repo: flags.repo, name, version },
  );
  if (!source)
    return fail([
      { field: "package", message: `${name}${version ? `@${version}` : ""} is not in ${dir}` },
    ]);

  const system: SystemInfo = {
    hostname: flags.hostname,
    internalIP: flags.internalIp,
    externalIP: flags.externalIp ?? flags.internalIp,
  };
  try {
    // Unanswered questions start from their defaults, as the install form does.
    const plan = compilePackage(
      source,
      { ...prefillAnswers(source.definition.questions), ...answers },
      {
        tld: flags.tld,
        system,
        takenPorts,
        resolveDependency: (request) => index.find(request),
      },
    );
    io.stdout(flags.json ? `${JSON.stringify(plan, null, 2)}\n` : summarize(plan));
    return 0;
  } catch (error) {
    if (isTownError(error) && error.issues.length > 0) return fail([...error.issues]);
    throw error;
  }
}

function toJsonIssue(issue: Issue): { field?: string; question?: string; message: string } {
  if (issue.question !== undefined && issue.field === undefined) {
    return { question: issue.question, message: issue.message };
  }
  return { field: issue.field ?? "", message: issue.message };
}

function describe(issue: Issue): string {
  const where =
    issue.question !== undefined && issue.field === undefined ? `question ${issue.question}` : "";
  return `${where ? `${where}: ` : issue.field ? ": " : ""}${issue.message}`;
}

function summarize(plan: CompiledPackage, indent = ""): string {
  const lines = [
    `${plan.repo}/${plan.name}@${plan.version} (${plan.runtime}) as ${plan.dnsName}`,
    `  image: ${plan.image ?? plan.vm?.image ?? "-"}`,
    ...plan.ports.map(
      (port) =>
        `  port ${port.name ?? ""}${port.name ? " " : ""}${port.host ?? "ingress"} → ${port.container} (${port.exposure})`,
    ),
    ...(plan.ingress
      ? [`  https://${plan.ingress.host}/ → container port ${plan.ingress.port}`]
      : []),
    ...plan.volumes.map(
      (volume) =>
        `  volume ${volume.name} at ${volume.mountpoint}${volume.quota ? ` (quota ${volume.quota} bytes)` : ""}`,
    ),
    ...plan.notes.map((note) => `  ${note.label}: ${note.value}`),
  ];
  const own = lines.map((line) => `${indent}${line}\n`).join("");
  return own + plan.dependencies.map((dependency) => summarize(dependency, `${indent}  `)).join("");
}
