import { createHash } from "node:crypto";
import { isDomainName, isGitUrl, parseId, type PackageDefinition } from "./definition.js";
import { TownError, type Issue } from "./errors.js";
import { normalizeImage } from "./image.js";
import {
  finishMarkers,
  markText,
  substituteMarkers,
  type MarkedText,
  type MarkerValues,
} from "./markers.js";
import {
  containerName,
  dependencyEnvPrefix,
  dependencyInstanceName,
  packageDnsName,
} from "./names.js";
import {
  compileAnswers,
  cryptoRandom,
  isSecretQuestion,
  portInUse,
  prefillAnswers,
  type RandomSource,
} from "./questions.js";
import { absolutePathProblem, findControlCharacter, relativePathProblem } from "./rules.js";
import { renderFileTemplate } from "./template-data.js";
import { parseByteSize } from "./units.js";

/** One package version, ready to compile. */
export interface PackageSource {
  repo: string;
  name: string;
  version: string;
  definition: PackageDefinition;
}

export interface DependencyRequest {
  repo: string;
  name: string;
  /** Absent: the latest version in that repository. */
  version?: string;
}

export interface SystemInfo {
  hostname: string;
  /** What `@LOCAL_EXTERNAL_HOST@` and `.System.ExternalIP` give: the box as seen from outside. */
  externalIP: string;
  /** What `@LOCAL_INTERNAL_HOST@` and `.System.InternalIP` give: the box on the LAN. */
  internalIP: string;
}

export interface CompileOptions {
  tld: string;
  system: SystemInfo;
  /** Host ports used by installed packages and the system. */
  takenPorts?: Iterable<number>;
  /** Who holds some of the taken ports (`default/gitea`, `a program on the host`), named in errors. */
  portHolders?: ReadonlyMap<number, string>;
  random?: RandomSource;
  /** Finds a dependency's definition; undefined when there is none. */
  resolveDependency?: (request: DependencyRequest) => PackageSource | undefined;
}

export type Exposure = "external" | "internal";

export interface CompiledPort {
  /** Role name (`http`, `sql`) or null for a plain number mapping. */
  name: string | null;
  /** Null for the `http` port served by the ingress instead. */
  host: number | null;
  container: number;
  exposure: Exposure;
}

export interface CompiledVolume {
  name: string;
  mountpoint: string;
  quota: number | null;
  uid: number | null;
  gid: number | null;
  archive: string | null;
  git: string | null;
}

export interface CompiledPackage {
  name: string;
  version: string;
  repo: string;
  /**
   * The repository the names (DNS, container, volumes) are made under: the
   * installed app's, for its dependencies too. Read it with `nameScope`
   * (plans stored before it existed lack it).
   */
  scope: string;
  /** Install-instance name: the package name, or `<parent>--<key>` for a dependency. */
  instance: string;
  dnsName: string;
  /** Container name and host name on the app's private network. */
  hostname: string;
  description: string;
  supplies: string[];
  runtime: "container" | "vm";
  image: string | null;
  vm: { image: string; memory: number; cpus: number } | null;
  entrypoint: string[] | null;
  command: string[] | null;
  environment: Record<string, string>;
  ports: CompiledPort[];
  ingress: { host: string; port: number } | null;
  domains: string[];
  volumes: CompiledVolume[];
  archives: { image: string; directory: string; volume: string }[];
  gitSources: { url: string; branch: string | null; volume: string }[];
  files: { volume: string; path: string; content: string }[];
  notes: { label: string; value: string; type: string }[];
  postUpdate: string[];
  answers: Record<string, string>;
  /** Names of the answers that are secrets (`secret` and `oauth` questions), sorted. */
  secrets: string[];
  dependencies: CompiledDependency[];
  /** sha256 of everything above: a changed hash means a changed plan. */
  hash: string;
}

export interface CompiledDependency extends CompiledPackage {
  key: string;
}

const MAX_DEPENDENCY_DEPTH = 8;

/**
 * The non-empty values of the secret answers of a plan and its dependencies,
 * longest first: what is masked for non-admins and redacted from steps,
 * errors and logs. A plan stored before `secrets` existed counts every
 * answer as secret, so that nothing it holds is shown.
 */
export function planSecrets(plan: CompiledPackage): string[] {
  const values = new Set<string>();
  const visit = (node: CompiledPackage): void => {
    const names = (node as { secrets?: readonly string[] }).secrets ?? Object.keys(node.answers);
    for (const name of names) {
      const value = node.answers[name];
      if (value !== undefined && value !== "") values.add(value);
    }
    for (const dependency of node.dependencies) visit(dependency);
  };
  visit(plan);
  return [...values].sort((a, b) => b.length - a.length || compareText(a, b));
}

/**
 * Compiles a package and its dependency tree with answers into a fully
 * resolved plan. Pure apart from randomness, which is injectable. Throws a
 * TownError (`invalid_answers`, `invalid_package`, `not_found`,
 * `dependency_cycle`) listing every problem found.
 */
export function compilePackage(
  source: PackageSource,
  answers: Readonly<Record<string, string>>,
  options: CompileOptions,
): CompiledPackage {
  const compiler = new Compiler(options);
  const compiled = compiler.compile(source, answers, {
    instance: source.name,
    scope: source.repo,
    field: "",
    chain: [],
  });
  compiler.throwIfFailed();
  if (!compiled) throw new TownError("internal", "compile produced no result without an error");
  return compiled;
}

interface Frame {
  instance: string;
  /** The installed app's repository: every node's names are made under it (`nameScope`). */
  scope: string;
  /** Prefix for issue fields, e.g. `dependencies.db.` for a dependency. */
  field: string;
  /** `repo/name` of every ancestor, to catch cycles. */
  chain: string[];
  /** Questions answered by nobody (a dependency's, outside its responses). */
  unseen?: ReadonlySet<string>;
}

class Compiler {
  private readonly issues: Issue[] = [];
  private readonly takenPorts: Set<number>;
  private readonly random: RandomSource;
  private code: "invalid_answers" | "invalid_package" | "not_found" | "dependency_cycle" =
    "invalid_answers";

  constructor(private readonly options: CompileOptions) {
    this.takenPorts = new Set(options.takenPorts ?? []);
    this.random = options.random ?? cryptoRandom;
  }

  throwIfFailed(): void {
    if (this.issues.length === 0) return;
    const first = this.issues[0];
    const summary = first ? describeIssue(first) : "";
    const more = this.issues.length > 1 ? ` (and ${this.issues.length - 1} more)` : "";
    throw new TownError(this.code, `${summary}${more}`, { issues: this.issues });
  }

  private fail(code: Compiler["code"], issue: Issue): void {
    // Answer problems are the most useful to show; a broken package outranks them.
    if (code !== "invalid_answers" && this.code === "invalid_answers") this.code = code;
    this.issues.push(issue);
  }

  compile(
    source: PackageSource,
    answers: Readonly<Record<string, string>>,
    frame: Frame,
  ): CompiledPackage | undefined {
    const { definition } = source;
    const before = this.issues.length;
    const locate = (field: string): Issue =>
      withLocation({ field: frame.field + field, message: "" }, definition, field);

    if (definition.proton) {
      this.fail("invalid_package", {
        ...locate("proton"),
        message: "Windows programs (proton) are not supported by this Town OS",
      });
      return undefined;
    }

    const answerResult = compileAnswers(definition.questions, answers, {
      packageName: frame.instance,
      takenPorts: this.takenPorts,
      ...(this.options.portHolders ? { portHolders: this.options.portHolders } : {}),
      random: this.random,
      ...(frame.unseen ? { unseen: frame.unseen } : {}),
    });
    for (const issue of answerResult.issues) {
      this.fail("invalid_answers", {
        ...issue,
        ...(frame.field ? { field: `${frame.field}responses.${issue.question ?? ""}` } : {}),
      });
    }
    // Everything else depends on the answers: its errors would only repeat theirs.
    if (answerResult.issues.length > 0) return undefined;
    const answerValues = answerResult.values;

    const dnsName = packageDnsName(frame.instance, frame.scope, this.options.tld);
    const builtins = new Map<string, string>([
      ["PACKAGE_DNS", dnsName],
      ["LOCAL_EXTERNAL_HOST", this.options.system.externalIP],
      ["LOCAL_INTERNAL_HOST", this.options.system.internalIP],
    ]);

    const field = new FieldCompiler(
      builtins,
      answerValues,
      (name, message) => {
        this.fail("invalid_package", { ...locate(name), message });
      },
      definition,
    );

    // Dependencies come first: the parent's environment and templates need them.
    const dependencies: CompiledDependency[] = [];
    const depMarkers = new Map<string, string>();
    const depEnvironment = new Map<string, string>();
    const depTemplateData: Record<
      string,
      { host: string; ports: Record<string, number>; volumes: Record<string, string> }
    > = {};
    const self = `${source.repo}/${source.name}`;
    for (const [key, dependency] of definition.dependencies) {
      const depField = `dependencies.${key}`;
      const chain = [...frame.chain, self];
      const repo = dependency.repo ?? source.repo;
      const target = `${repo}/${dependency.package}`;
      if (chain.includes(target)) {
        this.fail("dependency_cycle", {
          ...locate(depField),
          message: `dependency cycle: ${[...chain, target].join(" → ")}`,
        });
        continue;
      }
      if (chain.length >= MAX_DEPENDENCY_DEPTH) {
        this.fail("invalid_package", {
          ...locate(depField),
          message: "dependencies nest too deeply",
        });
        continue;
      }
      const request: DependencyRequest = { repo, name: dependency.package };
      if (dependency.version !== undefined) request.version = dependency.version;
      const resolved = this.options.resolveDependency?.(request);
      if (!resolved) {
        this.fail("not_found", {
          ...locate(depField),
          message: `package ${target}${dependency.version ? `@${dependency.version}` : ""} was not found`,
        });
        continue;
      }
      // Responses see the parent's answers, then the dependencies compiled before them.
      const responses: Record<string, string> = {};
      for (const [question, value] of dependency.responses) {
        responses[question] = finishMarkers(substituteMarkers(field.stage1(value), depMarkers));
      }
      const depAnswers = { ...prefillAnswers(resolved.definition.questions), ...responses };
      const unseen = new Set(
        [...resolved.definition.questions.keys()].filter((q) => !(q in responses)),
      );
      const compiled = this.compile(resolved, depAnswers, {
        instance: dependencyInstanceName(frame.instance, key),
        scope: frame.scope,
        field: `${frame.field}${depField}.`,
        chain,
        unseen,
      });
      if (!compiled) continue;
      dependencies.push({ key, ...compiled });
      const ports: Record<string, number> = {};
      for (const port of compiled.ports) {
        ports[String(port.container)] = port.container;
        if (port.host !== null) ports[String(port.host)] = port.container;
        if (port.name !== null) ports[port.name] = port.container;
      }
      const prefix = dependencyEnvPrefix(key);
      depMarkers.set(`dep_${key}_host`, compiled.hostname);
      depEnvironment.set(`${prefix}HOST`, compiled.hostname);
      for (const [portKey, port] of Object.entries(ports)) {
        depMarkers.set(`dep_${key}_port_${portKey}`, String(port));
        depEnvironment.set(`${prefix}PORT_${portKey.toUpperCase()}`, String(port));
      }
      depTemplateData[key] = {
        host: compiled.hostname,
        ports,
        volumes: Object.fromEntries(compiled.volumes.map((v) => [v.name, v.mountpoint])),
      };
    }

    // Stage 1 everywhere, stage 2 (dependency values) for the environment only.
    const environment: Record<string, string> = {};
    for (const [key, value] of [...definition.environment].sort(([a], [b]) => compareText(a, b))) {
      environment[key] = field.text(
        `environment.${key}`,
        substituteMarkers(field.stage1(value), depMarkers),
      );
    }
    for (const [key, value] of depEnvironment) {
      if (!Object.hasOwn(environment, key)) environment[key] = value;
    }

    const image = definition.image ? field.image("image", definition.image.url) : null;
    const vm = definition.vm ? field.vm(definition.vm) : null;
    const entrypoint = definition.entrypoint
      ? definition.entrypoint.map((arg, i) => field.text(`entrypoint.${i}`, field.stage1(arg)))
      : null;
    const command = definition.command
      ? definition.command.map((arg, i) => field.text(`command.${i}`, field.stage1(arg)))
      : null;
    const { ports, ingress } = field.ports(dnsName);
    const answeredPorts = new Set(
      [...definition.questions]
        .filter(([, question]) => question.type === "port")
        .map(([name]) => Number(answerValues.get(name))),
    );
    this.claimPorts(ports, answeredPorts, (message) => {
      this.fail("invalid_answers", { ...locate("network"), message });
    });
    const domains = definition.network.domains.map((domain, i) =>
      field.domain(`network.domains.${i}`, domain),
    );
    const volumes = field.volumes();
    const volumeNames = new Set(volumes.map((volume) => volume.name));
    const archives = definition.archives.map((archive, i) => ({
      image: field.image(`archives.${i}.image`, archive.image) ?? "",
      directory: field.path(`archives.${i}.directory`, archive.directory, "absolute"),
      volume: field.volumeRef(`archives.${i}.volume`, archive.volume, volumeNames),
    }));
    const gitSources = definition.gitSources.map((git, i) => ({
      url: field.gitUrl(`git_sources.${i}.url`, git.url),
      branch:
        git.branch === undefined
          ? null
          : field.text(`git_sources.${i}.branch`, field.stage1(git.branch)),
      volume: field.volumeRef(`git_sources.${i}.volume`, git.volume, volumeNames),
    }));
    const notes = [...definition.notes].map(([label, note]) => ({
      label,
      value: field.note(`notes.${label}`, note.value, note.type),
      type: note.type,
    }));
    const postUpdate = definition.postUpdate.map((line, i) =>
      field.text(`post_update.${i}`, field.stage1(line)),
    );

    const responses = Object.fromEntries([...answerValues].sort(([a], [b]) => compareText(a, b)));
    const files = [...definition.templates]
      .map(([name, template]) => {
        const templateField = `templates.${name}`;
        const volume = field.volumeRef(`${templateField}.volume`, template.volume, volumeNames);
        const path = field.path(`${templateField}.path`, template.path, "relative");
        let content = "";
        try {
          content = renderFileTemplate(name, finishMarkers(field.stage1(template.content)), {
            responses,
            package: {
              name: source.name,
              version: source.version,
              repo: source.repo,
              image: image ?? "",
              description: definition.description,
            },
            system: this.options.system,
            dep: depTemplateData,
          });
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          this.fail("invalid_package", { ...locate(`${templateField}.content`), message });
        }
        return { volume, path, content };
      })
      .sort((a, b) => compareText(`${a.volume}/${a.path}`, `${b.volume}/${b.path}`));
    const seenFiles = new Set<string>();
    for (const file of files) {
      const key = `${file.volume}/${file.path}`;
      if (seenFiles.has(key)) {
        this.fail("invalid_package", {
          ...locate("templates"),
          message: `two templates write ${key}`,
        });
      }
      seenFiles.add(key);
    }

    if (this.issues.length > before) return undefined;
    const plan: Omit<CompiledPackage, "hash"> = {
      name: source.name,
      version: source.version,
      repo: source.repo,
      scope: frame.scope,
      instance: frame.instance,
      dnsName,
      hostname: containerName(frame.scope, frame.instance),
      description: definition.description,
      supplies: [...definition.supplies],
      runtime: vm ? "vm" : "container",
      image,
      vm,
      entrypoint,
      command,
      environment,
      ports,
      ingress,
      domains,
      volumes,
      archives,
      gitSources,
      files,
      notes,
      postUpdate,
      answers: responses,
      secrets: [...definition.questions]
        .filter(([, question]) => isSecretQuestion(question))
        .map(([name]) => name)
        .sort(compareText),
      dependencies,
    };
    return { ...plan, hash: hashPlan(plan) };
  }

  /**
   * Host ports must be unique across the whole tree and free on the box.
   * Ports from this package's own port answers were claimed when answered.
   */
  private claimPorts(
    ports: CompiledPort[],
    answeredPorts: ReadonlySet<number>,
    report: (message: string) => void,
  ): void {
    const seen = new Set<number>();
    for (const port of ports) {
      if (port.host === null) continue;
      if (seen.has(port.host)) report(`host port ${port.host} is published twice`);
      else if (this.takenPorts.has(port.host) && !answeredPorts.has(port.host)) {
        report(`host ${portInUse(port.host, this.options.portHolders)}`);
      }
      seen.add(port.host);
    }
    for (const host of seen) this.takenPorts.add(host);
  }
}

/** Compiles the fields of one package after its answers are known. */
class FieldCompiler {
  constructor(
    private readonly builtins: MarkerValues,
    private readonly answers: MarkerValues,
    private readonly report: (field: string, message: string) => void,
    private readonly definition: PackageDefinition,
  ) {}

  /** Built-ins first, then answers, as the format defines. */
  stage1(text: string): MarkedText {
    return substituteMarkers(substituteMarkers(markText(text), this.builtins), this.answers);
  }

  /** Final value of a field that reaches a command line, environment or path. */
  text(field: string, substituted: MarkedText): string {
    const value = finishMarkers(substituted);
    const control = findControlCharacter(value);
    if (control) this.report(field, `contains a control character (${control}) after substitution`);
    return value;
  }

  image(field: string, written: string): string | null {
    const reference = this.text(field, this.stage1(written));
    const normalized = normalizeImage(reference);
    if (normalized === undefined) {
      this.report(field, `"${reference}" is not a valid image reference`);
      return null;
    }
    return normalized;
  }

  vm(vm: NonNullable<PackageDefinition["vm"]>): CompiledPackage["vm"] {
    const image = this.text("vm.image", this.stage1(vm.image));
    if (!isGitUrl(image) && !/^[a-zA-Z0-9][a-zA-Z0-9._-]*$/.test(image)) {
      this.report("vm.image", `"${image}" is neither an http(s) URL nor a file name`);
    }
    const memoryText = this.text("vm.memory", this.stage1(vm.memory));
    const memory = parseByteSize(memoryText);
    if (memory === undefined || memory === 0)
      this.report("vm.memory", `"${memoryText}" is not a byte size`);
    const cpusText = this.text("vm.cpus", this.stage1(vm.cpus));
    if (!/^[1-9][0-9]{0,2}$/.test(cpusText))
      this.report("vm.cpus", `"${cpusText}" is not a CPU count`);
    return { image, memory: memory ?? 0, cpus: Number(cpusText) || 0 };
  }

  private port(field: string, written: string): number {
    const text = this.text(field, this.stage1(written)).trim();
    const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
    if (!(port >= 1 && port <= 65535)) {
      this.report(field, `"${text}" is not a port number (1-65535)`);
      return 0;
    }
    return port;
  }

  ports(dnsName: string): { ports: CompiledPort[]; ingress: CompiledPackage["ingress"] } {
    const ports: CompiledPort[] = [];
    let ingress: CompiledPackage["ingress"] = null;
    for (const exposure of ["external", "internal"] as const) {
      for (const entry of this.definition.network[exposure]) {
        const field = `network.${exposure}.${entry.key}`;
        const key = this.text(field, this.stage1(entry.key)).trim();
        const container = this.port(field, entry.value);
        if (/^[0-9]+$/.test(key)) {
          ports.push({ name: null, host: this.port(field, key), container, exposure });
        } else if (exposure === "internal" && key === "http") {
          ingress = { host: dnsName, port: container };
          ports.push({ name: key, host: null, container, exposure });
        } else {
          ports.push({ name: key, host: container, container, exposure });
        }
      }
    }
    ports.sort((a, b) => (a.host ?? 0) - (b.host ?? 0) || a.container - b.container);
    return { ports, ingress };
  }

  domain(field: string, written: string): string {
    const domain = this.text(field, this.stage1(written)).toLowerCase();
    if (!isDomainName(domain)) this.report(field, `"${domain}" is not a domain name`);
    return domain;
  }

  path(field: string, written: string, kind: "absolute" | "relative"): string {
    const path = this.text(field, this.stage1(written));
    const problem = kind === "absolute" ? absolutePathProblem(path) : relativePathProblem(path);
    if (problem) this.report(field, `"${path}" ${problem}`);
    return path;
  }

  volumeRef(field: string, written: string, volumes: ReadonlySet<string>): string {
    const volume = this.text(field, this.stage1(written));
    if (!volumes.has(volume))
      this.report(field, `names volume "${volume}", which this package does not define`);
    return volume;
  }

  gitUrl(field: string, written: string): string {
    const url = this.text(field, this.stage1(written));
    if (!isGitUrl(url)) this.report(field, `"${url}" is not an http(s) git URL`);
    return url;
  }

  volumes(): CompiledVolume[] {
    const volumes: CompiledVolume[] = [];
    const mountpoints = new Map<string, string>();
    for (const [name, volume] of this.definition.volumes) {
      const field = `volumes.${name}`;
      const mountpoint = this.path(`${field}.mountpoint`, volume.mountpoint, "absolute");
      const other = mountpoints.get(mountpoint);
      if (other !== undefined)
        this.report(
          `${field}.mountpoint`,
          `${mountpoint} is also the mountpoint of volume "${other}"`,
        );
      mountpoints.set(mountpoint, name);
      volumes.push({
        name,
        mountpoint,
        quota: this.optional(`${field}.quota`, volume.quota, (text) => {
          const bytes = parseByteSize(text);
          return bytes === undefined || bytes === 0 ? `"${text}" is not a byte size` : bytes;
        }),
        uid: this.optional(
          `${field}.uid`,
          volume.uid,
          (text) => parseId(text) ?? `"${text}" is not a uid`,
        ),
        gid: this.optional(
          `${field}.gid`,
          volume.gid,
          (text) => parseId(text) ?? `"${text}" is not a gid`,
        ),
        archive:
          volume.archive === undefined
            ? null
            : this.text(`${field}.archive`, this.stage1(volume.archive)),
        git: volume.git === undefined ? null : this.text(`${field}.git`, this.stage1(volume.git)),
      });
    }
    return volumes.sort((a, b) => compareText(a.name, b.name));
  }

  /** A field that may be absent, or substitute to blank (an optional answer left empty). */
  private optional(
    field: string,
    written: string | undefined,
    parse: (text: string) => number | string,
  ): number | null {
    if (written === undefined) return null;
    const text = this.text(field, this.stage1(written)).trim();
    if (text === "") return null;
    const parsed = parse(text);
    if (typeof parsed === "string") {
      this.report(field, parsed);
      return null;
    }
    return parsed;
  }

  note(field: string, written: string, type: string): string {
    const value = finishMarkers(this.stage1(written));
    const control = findControlCharacter(value);
    if (control) this.report(field, `contains a control character (${control}) after substitution`);
    const problem = noteProblem(value, type);
    if (problem) this.report(field, `"${value}" ${problem}`);
    return value;
  }
}

function noteProblem(value: string, type: string): string | undefined {
  switch (type) {
    case "url":
      try {
        const url = new URL(value);
        return url.protocol.length > 1 ? undefined : "is not a URL";
      } catch {
        return "is not a URL";
      }
    case "phone":
      return /^\+?[0-9][0-9 ().-]{2,30}$/.test(value) ? undefined : "is not a phone number";
    case "email":
      return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value) ? undefined : "is not an email address";
    default:
      return undefined;
  }
}

function withLocation(issue: Issue, definition: PackageDefinition, field: string): Issue {
  const location = definition.locations.get(field);
  return location ? { ...issue, location } : issue;
}

function describeIssue(issue: Issue): string {
  const where = issue.question ?? issue.field;
  return where ? `${where}: ${issue.message}` : issue.message;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function hashPlan(plan: Omit<CompiledPackage, "hash">): string {
  return createHash("sha256").update(JSON.stringify(plan)).digest("hex");
}
