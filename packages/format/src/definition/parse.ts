/**
 * Parses and validates one package file into a PackageDefinition. Each section
 * has its reader (runtime.ts, network.ts, volumes.ts, questions.ts,
 * dependencies.ts, notes.ts; metrics.ts and backup.ts for this project's
 * extensions); this file reads the top level and checks what spans sections.
 * The order of the reads is the order problems are reported in.
 */

import type { Node as YamlNode } from "yaml";
import { YamlSource } from "../yaml-source.js";
import { readBackup } from "./backup.js";
import { readDependencies } from "./dependencies.js";
import { readMetrics } from "./metrics.js";
import { readEnvironment, readNetwork } from "./network.js";
import { readNotes } from "./notes.js";
import { readQuestions } from "./questions.js";
import { FieldReader } from "./reader.js";
import { readImage, readVm } from "./runtime.js";
import type { PackageDefinition, ParseResult } from "./types.js";
import {
  checkVolumeReferences,
  readArchives,
  readGitSources,
  readTemplates,
  readVolumes,
} from "./volumes.js";

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
  "metrics",
  "backup",
]);

/** Parses and validates one package file. Collects every problem it finds. */
export function parseDefinition(text: string): ParseResult {
  const source = new YamlSource(text);
  const root = source.root;
  if (source.issues.length > 0) return { errors: source.issues, warnings: source.warnings };
  if (!source.isMapping(root, "")) {
    source.error("", root, "a package file must be a YAML mapping");
    return { errors: source.issues, warnings: source.warnings };
  }
  const definition = readDefinition(new FieldReader(source), root);
  return source.issues.length > 0
    ? { errors: source.issues, warnings: source.warnings }
    : { definition, errors: [], warnings: source.warnings };
}

function readDefinition(r: FieldReader, root: YamlNode | null | undefined): PackageDefinition {
  const s = r.source;
  const fields = new Map(s.map(root, "").map(([key, node]) => [key, node]));
  for (const [key] of fields) {
    if (!KNOWN_FIELDS.has(key)) {
      s.warnings.push({
        field: key,
        message: `unknown top-level field "${key}" is ignored`,
        ...r.at(key),
      });
    }
  }
  const definition: PackageDefinition = {
    description: r.text(fields.get("description"), "description") ?? "",
    supplies: s.strings(fields.get("supplies"), "supplies"),
    environment: readEnvironment(r, fields.get("environment")),
    network: readNetwork(r, fields.get("network")),
    volumes: readVolumes(r, fields.get("volumes")),
    archives: readArchives(r, fields.get("archives")),
    gitSources: readGitSources(r, fields.get("git_sources")),
    templates: readTemplates(r, fields.get("templates")),
    questions: readQuestions(r, fields.get("questions")),
    dependencies: readDependencies(r, fields.get("dependencies")),
    notes: readNotes(r, fields.get("notes")),
    postUpdate: r.commandList(fields.get("post_update"), "post_update"),
    locations: s.locations,
  };
  const image = readImage(r, fields.get("image"));
  if (image) definition.image = image;
  const vm = readVm(r, fields.get("vm"));
  if (vm) definition.vm = vm;
  const metrics = readMetrics(r, fields.get("metrics"));
  if (metrics) {
    definition.metrics = metrics;
    // A VM's ports are forwarded to the host, not on the app's network Prometheus scrapes through.
    if (vm)
      r.source.error(
        "metrics",
        fields.get("metrics"),
        "a virtual machine cannot declare metrics (only containers can)",
      );
  }
  const backup = readBackup(r, fields.get("backup"), { vm: vm !== undefined });
  if (backup) definition.backup = backup;
  if (fields.has("proton") && fields.get("proton") != null) {
    definition.proton = r.stringMap(fields.get("proton"), "proton");
  }
  if (fields.has("entrypoint")) {
    definition.entrypoint = r.commandList(fields.get("entrypoint"), "entrypoint");
  }
  if (fields.has("command")) {
    definition.command = r.commandList(fields.get("command"), "command");
  }
  checkRuntime(r, definition, root);
  checkVolumeReferences(r, definition);
  return definition;
}

/** Exactly one of image, vm and proton. */
function checkRuntime(
  r: FieldReader,
  definition: PackageDefinition,
  root: YamlNode | null | undefined,
): void {
  const runtimes = [definition.image, definition.vm, definition.proton].filter(
    (runtime) => runtime !== undefined,
  );
  if (runtimes.length === 0) {
    r.source.error("", root, "exactly one runtime is required: image, vm or proton");
  } else if (runtimes.length > 1) {
    r.source.error("", root, "only one runtime may be given: image, vm or proton");
  }
}
