/** The shape of a package definition once parsed and validated (see parse.ts). */

import type { Issue, SourceLocation } from "../errors.js";
import type { OAuthDefinition } from "../oauth.js";
import type { QuiesceMode } from "../rules.js";

/**
 * A package definition as written, after shape validation. String fields keep
 * their `@markers@`: values that still hold one are checked after compile.
 */
export interface PackageDefinition {
  image?: { url: string; type: string };
  /** `sha256` is this project's extension: the image's checksum, checked after download. */
  vm?: { image: string; memory: string; cpus: string; sha256?: string };
  proton?: ReadonlyMap<string, string>;
  /** This project's extension: where the container serves Prometheus metrics (see metrics.ts). */
  metrics?: { port: string; path: string };
  /**
   * This project's extension: how the app is quiesced before a snapshot
   * (see backup.ts). `command` is empty for `stop`; `timeout` as written.
   */
  backup?: { quiesce: QuiesceMode; command: string[]; timeout?: string };
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
