/**
 * Compiles a package and its dependency tree into a plan. Each node goes
 * through the same steps in a fixed order (answers, dependencies, then the
 * package's own fields: the order problems are reported in); the steps live
 * in dependencies.ts, fields.ts, ports.ts, volumes.ts, files.ts and
 * runtime.ts, the plan's hash in plan.ts.
 */

import type { PackageDefinition } from "../definition/types.js";
import { TownError, type Issue } from "../errors.js";
import { substituteMarkers } from "../markers.js";
import { containerName, packageDnsName } from "../names.js";
import { compileAnswers, cryptoRandom, isSecretQuestion, type RandomSource } from "../questions.js";
import { compileDependencies, type Frame } from "./dependencies.js";
import { FieldCompiler } from "./fields.js";
import { renderFiles } from "./files.js";
import { compareText, hashPlan } from "./plan.js";
import { compilePorts, PortClaims } from "./ports.js";
import { compileBackup, compileMetrics, compileVm, vmVolumes } from "./runtime.js";
import type { CompiledPackage, CompileOptions, PackageSource } from "./types.js";
import { compileArchives, compileGitSources, compileVolumes } from "./volumes.js";

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

type FailureCode = "invalid_answers" | "invalid_package" | "not_found" | "dependency_cycle";

/** One compile: the problems found in every node, and the host ports claimed so far. */
class Compiler {
  private readonly issues: Issue[] = [];
  private readonly ports: PortClaims;
  private readonly random: RandomSource;
  private code: FailureCode = "invalid_answers";
  readonly resolveDependency: CompileOptions["resolveDependency"];

  constructor(private readonly options: CompileOptions) {
    this.ports = new PortClaims(options.takenPorts, options.portHolders);
    this.random = options.random ?? cryptoRandom;
    this.resolveDependency = options.resolveDependency;
  }

  throwIfFailed(): void {
    if (this.issues.length === 0) return;
    const first = this.issues[0];
    const summary = first ? describeIssue(first) : "";
    const more = this.issues.length > 1 ? ` (and ${this.issues.length - 1} more)` : "";
    throw new TownError(this.code, `${summary}${more}`, { issues: this.issues });
  }

  fail(code: FailureCode, issue: Issue): void {
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

    const answerValues = this.answers(definition, answers, frame);
    // Everything else depends on the answers: its errors would only repeat theirs.
    if (!answerValues) return undefined;

    const dnsName = packageDnsName(frame.instance, frame.scope, this.options.tld);
    const builtins = new Map<string, string>([
      ["PACKAGE_DNS", dnsName],
      ["LOCAL_EXTERNAL_HOST", this.options.system.externalIP],
      ["LOCAL_INTERNAL_HOST", this.options.system.internalIP],
    ]);
    const field = new FieldCompiler(builtins, answerValues, (name, message) => {
      this.fail("invalid_package", { ...locate(name), message });
    });

    // Dependencies come first: the parent's environment and templates need them.
    const deps = compileDependencies(this, source, frame, field, locate);

    // Stage 1 everywhere, stage 2 (dependency values) for the environment only.
    const environment: Record<string, string> = {};
    for (const [key, value] of [...definition.environment].sort(([a], [b]) => compareText(a, b))) {
      environment[key] = field.text(
        `environment.${key}`,
        substituteMarkers(field.stage1(value), deps.markers),
      );
    }
    for (const [key, value] of deps.environment) {
      if (!Object.hasOwn(environment, key)) environment[key] = value;
    }

    const image = definition.image ? field.image("image", definition.image.url) : null;
    const vm = definition.vm ? compileVm(field, definition.vm) : null;
    const metrics = compileMetrics(field, definition.metrics);
    const backup = compileBackup(field, definition.backup);
    const entrypoint = definition.entrypoint
      ? definition.entrypoint.map((arg, i) => field.text(`entrypoint.${i}`, field.stage1(arg)))
      : null;
    const command = definition.command
      ? definition.command.map((arg, i) => field.text(`command.${i}`, field.stage1(arg)))
      : null;
    const { ports, ingress } = compilePorts(field, definition.network, dnsName);
    const answeredPorts = new Set(
      [...definition.questions]
        .filter(([, question]) => question.type === "port")
        .map(([name]) => Number(answerValues.get(name))),
    );
    this.ports.claim(ports, answeredPorts, (message) => {
      this.fail("invalid_answers", { ...locate("network"), message });
    });
    const domains = definition.network.domains.map((domain, i) =>
      field.domain(`network.domains.${i}`, domain),
    );
    const declaredVolumes = compileVolumes(field, definition);
    const volumes = vm ? vmVolumes(field, definition, declaredVolumes) : declaredVolumes;
    const volumeNames = new Set(volumes.map((volume) => volume.name));
    const archives = compileArchives(field, definition, volumeNames);
    const gitSources = compileGitSources(field, definition, volumeNames);
    const notes = [...definition.notes].map(([label, note]) => ({
      label,
      value: field.note(`notes.${label}`, note.value, note.type),
      type: note.type,
    }));
    const postUpdate = definition.postUpdate.map((line, i) =>
      field.text(`post_update.${i}`, field.stage1(line)),
    );

    const responses = Object.fromEntries([...answerValues].sort(([a], [b]) => compareText(a, b)));
    const files = renderFiles(field, definition.templates, volumeNames, {
      responses,
      package: {
        name: source.name,
        version: source.version,
        repo: source.repo,
        image: image ?? "",
        description: definition.description,
      },
      system: this.options.system,
      dep: deps.templateData,
    });

    if (this.issues.length > before) return undefined;
    // The field order is part of the hash: keep it.
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
      dependencies: deps.dependencies,
      metrics,
      backup,
    };
    return { ...plan, hash: hashPlan(plan) };
  }

  /** The node's answers checked and completed; undefined when any is wrong. */
  private answers(
    definition: PackageDefinition,
    answers: Readonly<Record<string, string>>,
    frame: Frame,
  ): ReadonlyMap<string, string> | undefined {
    const result = compileAnswers(definition.questions, answers, {
      packageName: frame.instance,
      takenPorts: this.ports.taken,
      ...(this.options.portHolders ? { portHolders: this.options.portHolders } : {}),
      random: this.random,
      ...(frame.unseen ? { unseen: frame.unseen } : {}),
    });
    for (const issue of result.issues) {
      this.fail("invalid_answers", {
        ...issue,
        ...(frame.field ? { field: `${frame.field}responses.${issue.question ?? ""}` } : {}),
      });
    }
    return result.issues.length > 0 ? undefined : result.values;
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
