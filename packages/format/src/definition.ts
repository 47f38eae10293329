import type { Node as YamlNode } from "yaml";
import type { Issue, SourceLocation } from "./errors.js";
import { readOAuth, type OAuthDefinition, type OAuthReader } from "./oauth.js";
import { YamlSource } from "./yaml-source.js";
import {
  absolutePathProblem,
  DEPENDENCY_KEY,
  DNS_LABEL,
  ENV_KEY,
  findControlCharacter,
  hasMarker,
  IMAGE_REFERENCE,
  MAX_TEMPLATE_CONTENT_LENGTH,
  MAX_VALUE_LENGTH,
  PACKAGE_NAME,
  PORT_NAME,
  QUESTION_NAME,
  relativePathProblem,
  TEMPLATE_NAME,
  VOLUME_NAME,
} from "./rules.js";
import { parseByteSize } from "./units.js";

/**
 * A package definition as written, after shape validation. String fields keep
 * their `@markers@`: values that still hold one are checked after compile.
 */
export interface PackageDefinition {
  image?: { url: string; type: string };
  vm?: { image: string; memory: string; cpus: string };
  proton?: ReadonlyMap<string, string>;
  description: string;
  supplies: string[];
  entrypoint?: string[];
  command?: string[];
  environment: ReadonlyMap<string, string>;
  network: {
    external: PortEntry[];
    internal: PortEntry[];
    domains: string[];
  };
  volumes: ReadonlyMap<string, VolumeDefinition>;
  archives: ArchiveDefinition[];
  gitSources: GitSourceDefinition[];
  templates: ReadonlyMap<string, TemplateDefinition>;
  questions: ReadonlyMap<string, QuestionDefinition>;
  dependencies: ReadonlyMap<string, DependencyDefinition>;
  notes: ReadonlyMap<string, NoteDefinition>;
  postUpdate: string[];
  /** Dotted field path → source location, for errors found after parsing. */
  locations: ReadonlyMap<string, SourceLocation>;
}

/** `host: container` as written; either side may hold markers, the key may be a role name. */
export interface PortEntry {
  key: string;
  value: string;
}

export interface VolumeDefinition {
  mountpoint: string;
  quota?: string;
  uid?: string;
  gid?: string;
  archive?: string;
  git?: string;
}

export interface ArchiveDefinition {
  image: string;
  directory: string;
  volume: string;
}

export interface GitSourceDefinition {
  url: string;
  branch?: string;
  volume: string;
}

export interface TemplateDefinition {
  volume: string;
  path: string;
  content: string;
}

export const QUESTION_TYPES = [
  "",
  "port",
  "hostname",
  "secret",
  "bytes",
  "duration",
  "boolean",
  "volume",
  "archive",
  "oauth",
] as const;
export type QuestionType = (typeof QUESTION_TYPES)[number];

export interface QuestionDefinition {
  query: string;
  type: QuestionType;
  default?: string;
  optional: boolean;
  showIf?: string;
  /** The PIN/device flow the box runs to obtain the answer (oauth questions). */
  oauth?: OAuthDefinition;
}

export interface DependencyDefinition {
  package: string;
  repo?: string;
  version?: string;
  responses: ReadonlyMap<string, string>;
}

export const NOTE_TYPES = ["", "url", "phone", "email"] as const;
export type NoteType = (typeof NOTE_TYPES)[number];

export interface NoteDefinition {
  value: string;
  type: NoteType;
}

export interface ParseResult {
  /** Present when the file has no errors. */
  definition?: PackageDefinition;
  errors: Issue[];
  warnings: Issue[];
}

const KNOWN_FIELDS = new Set([
  "image",
  "vm",
  "proton",
  "description",
  "supplies",
  "entrypoint",
  "command",
  "environment",
  "network",
  "volumes",
  "archives",
  "git_sources",
  "templates",
  "questions",
  "dependencies",
  "notes",
  "post_update",
]);

const BUILTIN_MARKERS = new Set(["PACKAGE_DNS", "LOCAL_EXTERNAL_HOST", "LOCAL_INTERNAL_HOST"]);

/** Parses and validates one package file. Collects every problem it finds. */
export function parseDefinition(text: string): ParseResult {
  const source = new YamlSource(text);
  const root = source.root;
  if (source.issues.length > 0) return { errors: source.issues, warnings: source.warnings };
  if (!source.isMapping(root, "")) {
    source.error("", root, "a package file must be a YAML mapping");
    return { errors: source.issues, warnings: source.warnings };
  }
  const reader = new DefinitionReader(source);
  const definition = reader.read(root);
  return source.issues.length > 0
    ? { errors: source.issues, warnings: source.warnings }
    : { definition, errors: [], warnings: source.warnings };
}

class DefinitionReader {
  constructor(private readonly source: YamlSource) {}

  read(root: YamlNode | null | undefined): PackageDefinition {
    const s = this.source;
    const fields = new Map(s.map(root, "").map(([key, node]) => [key, node]));
    for (const [key] of fields) {
      if (!KNOWN_FIELDS.has(key)) {
        s.warnings.push({
          field: key,
          message: `unknown top-level field "${key}" is ignored`,
          ...this.at(key),
        });
      }
    }
    const definition: PackageDefinition = {
      description: this.text(fields.get("description"), "description") ?? "",
      supplies: s.strings(fields.get("supplies"), "supplies"),
      environment: this.environment(fields.get("environment")),
      network: this.network(fields.get("network")),
      volumes: this.volumes(fields.get("volumes")),
      archives: this.archives(fields.get("archives")),
      gitSources: this.gitSources(fields.get("git_sources")),
      templates: this.templates(fields.get("templates")),
      questions: this.questions(fields.get("questions")),
      dependencies: this.dependencies(fields.get("dependencies")),
      notes: this.notes(fields.get("notes")),
      postUpdate: this.commandList(fields.get("post_update"), "post_update"),
      locations: s.locations,
    };
    const image = this.image(fields.get("image"));
    if (image) definition.image = image;
    const vm = this.vm(fields.get("vm"));
    if (vm) definition.vm = vm;
    if (fields.has("proton") && fields.get("proton") != null) {
      definition.proton = this.stringMap(fields.get("proton"), "proton");
    }
    if (fields.has("entrypoint")) {
      definition.entrypoint = this.commandList(fields.get("entrypoint"), "entrypoint");
    }
    if (fields.has("command")) {
      definition.command = this.commandList(fields.get("command"), "command");
    }
    this.checkRuntime(definition, root);
    this.checkReferences(definition);
    return definition;
  }

  private at(field: string): { location?: SourceLocation } {
    const location = this.source.locations.get(field);
    return location ? { location } : {};
  }

  /** A string with the checks every package string gets: bounded, no control characters. */
  private text(
    node: YamlNode | null | undefined,
    field: string,
    options: { multiline?: boolean; max?: number } = {},
  ): string | undefined {
    const value = this.source.string(node, field);
    if (value === undefined) return undefined;
    const max = options.max ?? MAX_VALUE_LENGTH;
    if (value.length > max) {
      this.source.error(field, node, `is longer than ${max} characters`);
      return undefined;
    }
    const checked = options.multiline ? value.replace(/[\n\r]/g, "") : value;
    const control = findControlCharacter(checked);
    if (control) {
      this.source.error(field, node, `contains a control character (${control})`);
      return undefined;
    }
    return value;
  }

  private required(node: YamlNode | null | undefined, field: string): string {
    const before = this.source.issues.length;
    const value = this.text(node, field);
    if (value === undefined && this.source.issues.length === before) {
      const [parent, name] = splitField(field);
      this.source.keyError(parent, `${name} is required`);
    } else if (value === "") {
      this.source.error(field, node, "must not be empty");
    }
    return value ?? "";
  }

  private stringMap(node: YamlNode | null | undefined, field: string): Map<string, string> {
    const result = new Map<string, string>();
    for (const [key, value] of this.source.map(node, field)) {
      result.set(key, this.text(value, `${field}.${key}`) ?? "");
    }
    return result;
  }

  private fieldsOf(
    node: YamlNode | null | undefined,
    field: string,
    known: readonly string[],
  ): Map<string, YamlNode | null> {
    const entries = new Map(this.source.map(node, field));
    for (const [key, value] of entries) {
      if (!known.includes(key))
        this.source.warn(`${field}.${key}`, value, `unknown field "${key}" is ignored`);
    }
    return entries;
  }

  private commandList(node: YamlNode | null | undefined, field: string): string[] {
    return this.source
      .list(node, field)
      .map((item, index) => this.text(item, `${field}.${index}`) ?? "");
  }

  private image(node: YamlNode | null | undefined): { url: string; type: string } | undefined {
    if (node == null) return undefined;
    let url: string | undefined;
    let type = "";
    if (this.source.isMapping(node, "image")) {
      const fields = this.fieldsOf(node, "image", ["url", "type"]);
      url = this.required(fields.get("url"), "image.url");
      type = this.text(fields.get("type"), "image.type") ?? "";
      if (type !== "" && type !== "oci") {
        this.source.error(
          "image.type",
          fields.get("type"),
          `unsupported image type "${type}" (use oci)`,
        );
      }
    } else {
      url = this.text(node, "image");
    }
    if (url === undefined || url === "") return undefined;
    this.checkImage(url, "image", node);
    return { url, type };
  }

  private checkImage(reference: string, field: string, node: YamlNode | null | undefined): void {
    if (!hasMarker(reference) && !IMAGE_REFERENCE.test(reference)) {
      this.source.error(field, node, `"${reference}" is not a valid image reference`);
    }
  }

  private vm(node: YamlNode | null | undefined): PackageDefinition["vm"] {
    if (node == null) return undefined;
    const fields = this.fieldsOf(node, "vm", ["image", "memory", "cpus"]);
    const image = this.required(fields.get("image"), "vm.image");
    const memory = this.text(fields.get("memory"), "vm.memory") ?? "1gb";
    const cpus = this.text(fields.get("cpus"), "vm.cpus") ?? "1";
    if (!hasMarker(memory) && parseByteSize(memory) === undefined) {
      this.source.error("vm.memory", fields.get("memory"), `"${memory}" is not a byte size`);
    }
    if (!hasMarker(cpus) && !/^[1-9][0-9]{0,2}$/.test(cpus)) {
      this.source.error("vm.cpus", fields.get("cpus"), `"${cpus}" is not a CPU count (1-999)`);
    }
    return { image, memory, cpus };
  }

  private environment(node: YamlNode | null | undefined): Map<string, string> {
    const environment = this.stringMap(node, "environment");
    for (const key of environment.keys()) {
      if (!ENV_KEY.test(key)) {
        this.source.keyError(
          `environment.${key}`,
          `"${key}" is not a valid environment variable name`,
        );
      }
    }
    return environment;
  }

  private network(node: YamlNode | null | undefined): PackageDefinition["network"] {
    const fields = this.fieldsOf(node, "network", ["external", "internal", "domains"]);
    const ports = (kind: "external" | "internal"): PortEntry[] =>
      [...this.stringMap(fields.get(kind), `network.${kind}`)].map(([key, value]) => {
        const field = `network.${kind}.${key}`;
        if (!hasMarker(key) && !/^[0-9]+$/.test(key) && !PORT_NAME.test(key)) {
          this.source.keyError(field, `"${key}" is neither a port number nor a port name`);
        }
        return { key, value };
      });
    const domains = this.source.strings(fields.get("domains"), "network.domains");
    domains.forEach((domain, index) => {
      if (!hasMarker(domain) && !isDomainName(domain)) {
        this.source.error(`network.domains.${index}`, null, `"${domain}" is not a domain name`);
      }
    });
    return { external: ports("external"), internal: ports("internal"), domains };
  }

  private volumes(node: YamlNode | null | undefined): Map<string, VolumeDefinition> {
    const volumes = new Map<string, VolumeDefinition>();
    for (const [name, value] of this.source.map(node, "volumes")) {
      const field = `volumes.${name}`;
      if (!VOLUME_NAME.test(name))
        this.source.keyError(field, `"${name}" is not a valid volume name`);
      const fields = this.fieldsOf(value, field, [
        "mountpoint",
        "quota",
        "uid",
        "gid",
        "archive",
        "git",
      ]);
      const mountpoint = this.required(fields.get("mountpoint"), `${field}.mountpoint`);
      const problem =
        hasMarker(mountpoint) || mountpoint === "" ? undefined : absolutePathProblem(mountpoint);
      if (problem) this.source.error(`${field}.mountpoint`, fields.get("mountpoint"), problem);
      const volume: VolumeDefinition = { mountpoint };
      for (const key of ["quota", "uid", "gid", "archive", "git"] as const) {
        const text = this.text(fields.get(key), `${field}.${key}`);
        if (text !== undefined && text !== "") volume[key] = text;
      }
      if (
        volume.quota !== undefined &&
        !hasMarker(volume.quota) &&
        parseByteSize(volume.quota) === undefined
      ) {
        this.source.error(
          `${field}.quota`,
          fields.get("quota"),
          `"${volume.quota}" is not a byte size`,
        );
      }
      for (const key of ["uid", "gid"] as const) {
        const id = volume[key];
        if (id !== undefined && !hasMarker(id) && parseId(id) === undefined) {
          this.source.error(
            `${field}.${key}`,
            fields.get(key),
            `"${id}" is not a ${key} (0-4294967294)`,
          );
        }
      }
      volumes.set(name, volume);
    }
    return volumes;
  }

  private archives(node: YamlNode | null | undefined): ArchiveDefinition[] {
    return this.source.list(node, "archives").map((item, index) => {
      const field = `archives.${index}`;
      const fields = this.fieldsOf(item, field, ["image", "directory", "volume"]);
      const archive = {
        image: this.required(fields.get("image"), `${field}.image`),
        directory: this.required(fields.get("directory"), `${field}.directory`),
        volume: this.required(fields.get("volume"), `${field}.volume`),
      };
      if (archive.image !== "")
        this.checkImage(archive.image, `${field}.image`, fields.get("image"));
      const problem =
        archive.directory === "" || hasMarker(archive.directory)
          ? undefined
          : absolutePathProblem(archive.directory);
      if (problem) this.source.error(`${field}.directory`, fields.get("directory"), problem);
      return archive;
    });
  }

  private gitSources(node: YamlNode | null | undefined): GitSourceDefinition[] {
    return this.source.list(node, "git_sources").map((item, index) => {
      const field = `git_sources.${index}`;
      const fields = this.fieldsOf(item, field, ["url", "branch", "volume"]);
      const source: GitSourceDefinition = {
        url: this.required(fields.get("url"), `${field}.url`),
        volume: this.required(fields.get("volume"), `${field}.volume`),
      };
      const branch = this.text(fields.get("branch"), `${field}.branch`);
      if (branch) source.branch = branch;
      if (source.url !== "" && !hasMarker(source.url) && !isGitUrl(source.url)) {
        this.source.error(
          `${field}.url`,
          fields.get("url"),
          `"${source.url}" is not an http(s) git URL`,
        );
      }
      return source;
    });
  }

  private templates(node: YamlNode | null | undefined): Map<string, TemplateDefinition> {
    const templates = new Map<string, TemplateDefinition>();
    for (const [name, value] of this.source.map(node, "templates")) {
      const field = `templates.${name}`;
      if (!TEMPLATE_NAME.test(name))
        this.source.keyError(field, `"${name}" is not a valid template name`);
      const fields = this.fieldsOf(value, field, ["volume", "path", "content"]);
      const template = {
        volume: this.required(fields.get("volume"), `${field}.volume`),
        path: this.required(fields.get("path"), `${field}.path`),
        content:
          this.text(fields.get("content"), `${field}.content`, {
            multiline: true,
            max: MAX_TEMPLATE_CONTENT_LENGTH,
          }) ?? "",
      };
      const problem =
        template.path === "" || hasMarker(template.path)
          ? undefined
          : relativePathProblem(template.path);
      if (problem) this.source.error(`${field}.path`, fields.get("path"), problem);
      templates.set(name, template);
    }
    return templates;
  }

  private questions(node: YamlNode | null | undefined): Map<string, QuestionDefinition> {
    const questions = new Map<string, QuestionDefinition>();
    for (const [name, value] of this.source.map(node, "questions")) {
      const field = `questions.${name}`;
      if (!QUESTION_NAME.test(name) || BUILTIN_MARKERS.has(name)) {
        this.source.keyError(field, `"${name}" is not a valid question name`);
      }
      const fields = this.fieldsOf(value, field, [
        "query",
        "type",
        "default",
        "optional",
        "show_if",
        "oauth",
      ]);
      const type = this.text(fields.get("type"), `${field}.type`) ?? "";
      if (!isQuestionType(type)) {
        this.source.error(`${field}.type`, fields.get("type"), `unknown question type "${type}"`);
      }
      const question: QuestionDefinition = {
        query: this.text(fields.get("query"), `${field}.query`) ?? "",
        type: isQuestionType(type) ? type : "",
        optional: this.source.boolean(fields.get("optional"), `${field}.optional`) ?? false,
      };
      const defaultValue = this.text(fields.get("default"), `${field}.default`);
      if (defaultValue !== undefined) question.default = defaultValue;
      const showIf = this.text(fields.get("show_if"), `${field}.show_if`);
      if (showIf) question.showIf = showIf;
      if (fields.get("oauth") != null) {
        const oauth = readOAuth(this.oauthReader(), fields.get("oauth"), `${field}.oauth`);
        if (oauth) question.oauth = oauth;
      }
      questions.set(name, question);
    }
    for (const [name, question] of questions) {
      if (question.showIf === undefined) continue;
      const target = questions.get(question.showIf);
      if (!target || target.type !== "boolean") {
        this.source.error(
          `questions.${name}.show_if`,
          null,
          `"${question.showIf}" must name a boolean question of this package`,
        );
      }
    }
    return questions;
  }

  /** The checked-string helpers the oauth reader (oauth.ts) borrows. */
  private oauthReader(): OAuthReader {
    return {
      source: this.source,
      text: (node, field) => this.text(node, field),
      fieldsOf: (node, field, known) => this.fieldsOf(node, field, known),
    };
  }

  private dependencies(node: YamlNode | null | undefined): Map<string, DependencyDefinition> {
    const dependencies = new Map<string, DependencyDefinition>();
    for (const [key, value] of this.source.map(node, "dependencies")) {
      const field = `dependencies.${key}`;
      if (!DEPENDENCY_KEY.test(key)) {
        this.source.keyError(
          field,
          `"${key}" is not a valid dependency key (lower-case letters, digits, -); no "--", no - at the end`,
        );
      }
      const fields = this.fieldsOf(value, field, ["package", "repo", "version", "responses"]);
      const dependency: DependencyDefinition = {
        package: this.required(fields.get("package"), `${field}.package`),
        responses: this.stringMap(fields.get("responses"), `${field}.responses`),
      };
      if (dependency.package !== "" && !PACKAGE_NAME.test(dependency.package)) {
        this.source.error(
          `${field}.package`,
          fields.get("package"),
          `"${dependency.package}" is not a package name`,
        );
      }
      const repo = this.text(fields.get("repo"), `${field}.repo`);
      if (repo && !DNS_LABEL.test(repo)) {
        this.source.error(
          `${field}.repo`,
          fields.get("repo"),
          `"${repo}" is not a repository name`,
        );
      }
      if (repo) dependency.repo = repo;
      const version = this.text(fields.get("version"), `${field}.version`);
      if (version) dependency.version = version;
      dependencies.set(key, dependency);
    }
    return dependencies;
  }

  private notes(node: YamlNode | null | undefined): Map<string, NoteDefinition> {
    const notes = new Map<string, NoteDefinition>();
    for (const [label, value] of this.source.map(node, "notes")) {
      const field = `notes.${label}`;
      // A bare string is what an author would expect to mean a plain note.
      if (!this.source.isMapping(value, field)) {
        notes.set(label, { value: this.text(value, field) ?? "", type: "" });
        continue;
      }
      const fields = this.fieldsOf(value, field, ["value", "type"]);
      const type = this.text(fields.get("type"), `${field}.type`) ?? "";
      if (!isNoteType(type)) {
        this.source.error(
          `${field}.type`,
          fields.get("type"),
          `unknown note type "${type}" (url, phone, email)`,
        );
      }
      notes.set(label, {
        value: this.text(fields.get("value"), `${field}.value`) ?? "",
        type: isNoteType(type) ? type : "",
      });
    }
    return notes;
  }

  private checkRuntime(definition: PackageDefinition, root: YamlNode | null | undefined): void {
    const runtimes = [definition.image, definition.vm, definition.proton].filter(
      (r) => r !== undefined,
    );
    if (runtimes.length === 0) {
      this.source.error("", root, "exactly one runtime is required: image, vm or proton");
    } else if (runtimes.length > 1) {
      this.source.error("", root, "only one runtime may be given: image, vm or proton");
    }
  }

  private checkReferences(definition: PackageDefinition): void {
    const check = (volume: string, field: string): void => {
      if (volume !== "" && !hasMarker(volume) && !definition.volumes.has(volume)) {
        this.source.error(
          field,
          null,
          `names volume "${volume}", which this package does not define`,
        );
      }
    };
    definition.archives.forEach((archive, index) => {
      check(archive.volume, `archives.${index}.volume`);
    });
    definition.gitSources.forEach((source, index) => {
      check(source.volume, `git_sources.${index}.volume`);
    });
    for (const [name, template] of definition.templates)
      check(template.volume, `templates.${name}.volume`);
  }
}

/** `volumes.data.mountpoint` → [`volumes.data`, `mountpoint`]. */
function splitField(field: string): [string, string] {
  const dot = field.lastIndexOf(".");
  return dot === -1 ? ["", field] : [field.slice(0, dot), field.slice(dot + 1)];
}

function isQuestionType(type: string): type is QuestionType {
  return (QUESTION_TYPES as readonly string[]).includes(type);
}

function isNoteType(type: string): type is NoteType {
  return (NOTE_TYPES as readonly string[]).includes(type);
}

export function isDomainName(name: string): boolean {
  return (
    name.length <= 253 &&
    name.split(".").length >= 2 &&
    name.split(".").every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(label))
  );
}

export function isGitUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return (parsed.protocol === "https:" || parsed.protocol === "http:") && parsed.hostname !== "";
  } catch {
    return false;
  }
}

/** uid/gid as an integer; 4294967295 is (uid_t)-1 and means "no change" to chown, so it is refused. */
export function parseId(text: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const value = Number(text);
  return value <= 4294967294 ? value : undefined;
}
