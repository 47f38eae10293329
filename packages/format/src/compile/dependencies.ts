/**
 * A package's dependencies, compiled before the package itself: each is
 * resolved, compiled as a child node with the responses it is given, and
 * bound into the parent's markers, environment and template data.
 */

import type { Issue } from "../errors.js";
import { finishMarkers, substituteMarkers } from "../markers.js";
import { dependencyEnvPrefix, dependencyInstanceName } from "../names.js";
import { prefillAnswers } from "../questions.js";
import type { TownTemplateInput } from "../template-data.js";
import type { FieldCompiler } from "./fields.js";
import type {
  CompiledDependency,
  CompiledPackage,
  DependencyRequest,
  PackageSource,
} from "./types.js";

const MAX_DEPENDENCY_DEPTH = 8;

/** Where in the dependency tree a node is compiled. */
export interface Frame {
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

/** What compiling dependencies needs from the compile it is part of. */
export interface NodeCompiler {
  resolveDependency: ((request: DependencyRequest) => PackageSource | undefined) | undefined;
  fail(code: "invalid_package" | "not_found" | "dependency_cycle", issue: Issue): void;
  compile(
    source: PackageSource,
    answers: Readonly<Record<string, string>>,
    frame: Frame,
  ): CompiledPackage | undefined;
}

/** The compiled dependencies and what the parent sees of them. */
export interface DependencyBindings {
  dependencies: CompiledDependency[];
  /** Stage 2 markers: `@dep_<key>_host@`, `@dep_<key>_port_<port>@`. */
  markers: Map<string, string>;
  /** `TOWNOS_DEP_<KEY>_HOST`, `TOWNOS_DEP_<KEY>_PORT_<PORT>`. */
  environment: Map<string, string>;
  /** `.Dep.<key>` in file templates. */
  templateData: Record<string, TownTemplateInput["dep"][string]>;
}

export function compileDependencies(
  compiler: NodeCompiler,
  source: PackageSource,
  frame: Frame,
  field: FieldCompiler,
  locate: (field: string) => Issue,
): DependencyBindings {
  const bindings: DependencyBindings = {
    dependencies: [],
    markers: new Map(),
    environment: new Map(),
    templateData: {},
  };
  const self = `${source.repo}/${source.name}`;
  for (const [key, dependency] of source.definition.dependencies) {
    const depField = `dependencies.${key}`;
    const chain = [...frame.chain, self];
    const repo = dependency.repo ?? source.repo;
    const target = `${repo}/${dependency.package}`;
    if (chain.includes(target)) {
      compiler.fail("dependency_cycle", {
        ...locate(depField),
        message: `dependency cycle: ${[...chain, target].join(" → ")}`,
      });
      continue;
    }
    if (chain.length >= MAX_DEPENDENCY_DEPTH) {
      compiler.fail("invalid_package", {
        ...locate(depField),
        message: "dependencies nest too deeply",
      });
      continue;
    }
    const request: DependencyRequest = { repo, name: dependency.package };
    if (dependency.version !== undefined) request.version = dependency.version;
    const resolved = compiler.resolveDependency?.(request);
    if (!resolved) {
      compiler.fail("not_found", {
        ...locate(depField),
        message: `package ${target}${dependency.version ? `@${dependency.version}` : ""} was not found`,
      });
      continue;
    }
    // Responses see the parent's answers, then the dependencies compiled before them.
    const responses: Record<string, string> = {};
    for (const [question, value] of dependency.responses) {
      responses[question] = finishMarkers(substituteMarkers(field.stage1(value), bindings.markers));
    }
    const depAnswers = { ...prefillAnswers(resolved.definition.questions), ...responses };
    const unseen = new Set(
      [...resolved.definition.questions.keys()].filter((q) => !(q in responses)),
    );
    const compiled = compiler.compile(resolved, depAnswers, {
      instance: dependencyInstanceName(frame.instance, key),
      scope: frame.scope,
      field: `${frame.field}${depField}.`,
      chain,
      unseen,
    });
    if (!compiled) continue;
    bindings.dependencies.push({ key, ...compiled });
    bind(bindings, key, compiled);
  }
  return bindings;
}

/** Makes one compiled dependency's host, ports and volumes visible to its parent. */
function bind(bindings: DependencyBindings, key: string, compiled: CompiledPackage): void {
  const ports: Record<string, number> = {};
  for (const port of compiled.ports) {
    ports[String(port.container)] = port.container;
    if (port.host !== null) ports[String(port.host)] = port.container;
    if (port.name !== null) ports[port.name] = port.container;
  }
  const prefix = dependencyEnvPrefix(key);
  bindings.markers.set(`dep_${key}_host`, compiled.hostname);
  bindings.environment.set(`${prefix}HOST`, compiled.hostname);
  for (const [portKey, port] of Object.entries(ports)) {
    bindings.markers.set(`dep_${key}_port_${portKey}`, String(port));
    bindings.environment.set(`${prefix}PORT_${portKey.toUpperCase()}`, String(port));
  }
  bindings.templateData[key] = {
    host: compiled.hostname,
    ports,
    volumes: Object.fromEntries(compiled.volumes.map((v) => [v.name, v.mountpoint])),
  };
}
