/**
 * The box as a state repository's files (`town state export`), so that a
 * person starts from what they have. Pure: the caller stores the secrets
 * listed and writes the files. Applied to the same box, the files change
 * nothing.
 */
import { createHash } from "node:crypto";
import { NameParam, type StateAppFile, type StateFile } from "@townos/api";
import { stringify } from "yaml";
import type { CurrentState } from "./types.js";

export interface ExportOptions {
  /** The questions of an installed app whose answers are secrets: written as secretRefs. */
  secretQuestions: (repo: string, name: string) => readonly string[];
}

/** A secret an export refers to: the caller stores the app's answer under `name`. */
export interface ExportedSecret {
  name: string;
  /** `repo/name`. */
  app: string;
  question: string;
}

export interface StateExportResult {
  files: StateFile[];
  secrets: ExportedSecret[];
}

const README = `# Town OS state repository

This repository declares a Town OS box: the box reads it and makes itself
so. Push a change to change the box.

- \`repositories.yaml\`: package repositories, in priority order
- \`settings.yaml\`: settings that differ from their default
- \`apps/<repository>/<app>.yaml\`: installed apps (version, answers, exposure)
- \`volumes/<name>.yaml\`: people's volumes (quota)
- \`pages/<name>.yaml\`: pages

Answers that are secrets are not written here: they are \`secretRef\`s to
secrets kept on the box (\`town state secret ls\`). See docs/STATE.md in
Town OS for the layout and what each change does.
`;

const MAX_NAME = NameParam.maxLength ?? 64;
const SECRET_NAME_CHARS = /[^a-zA-Z0-9._-]/g;

/** `wiki-admin password` → `wiki-admin-password`, fitted to a name's length, and unique. */
function secretName(wanted: string, taken: Set<string>): string {
  const clean = wanted.replace(SECRET_NAME_CHARS, "-");
  const fitted =
    clean.length <= MAX_NAME
      ? clean
      : `${clean.slice(0, MAX_NAME - 9)}-${createHash("sha256").update(wanted).digest("hex").slice(0, 8)}`;
  let name = fitted;
  for (let n = 2; taken.has(name); n++) {
    const suffix = `-${n}`;
    name = `${fitted.slice(0, MAX_NAME - suffix.length)}${suffix}`;
  }
  taken.add(name);
  return name;
}

const SIZE_UNITS = [
  ["tb", 1024 ** 4],
  ["gb", 1024 ** 3],
  ["mb", 1024 ** 2],
  ["kb", 1024],
] as const;

/** 10737418240 → `10gb`; sizes that are no whole unit stay bytes. */
function sizeText(bytes: number): string | number {
  const unit = SIZE_UNITS.find(([, size]) => bytes > 0 && bytes % size === 0);
  return unit ? `${bytes / unit[1]}${unit[0]}` : bytes;
}

function yamlFile(path: string, value: unknown): StateFile {
  return { path, text: stringify(value, { lineWidth: 0 }) };
}

/** Writes `current` as a state repository's files, and the secrets its answers refer to. */
export function exportState(current: CurrentState, options: ExportOptions): StateExportResult {
  const files: StateFile[] = [{ path: "README.md", text: README }];
  const secrets: ExportedSecret[] = [];
  const secretNames = new Set<string>();

  files.push(
    yamlFile(
      "repositories.yaml",
      current.repositories.map(({ name, url }) => ({ name, url })),
    ),
  );
  const changedSettings = Object.entries(current.settings)
    .filter(([, setting]) => setting.value !== setting.default)
    .map(([key, setting]) => [key, setting.value] as const);
  files.push(yamlFile("settings.yaml", Object.fromEntries(changedSettings)));

  for (const app of current.apps) {
    const secretQuestions = new Set(options.secretQuestions(app.repo, app.name));
    type Answer = NonNullable<StateAppFile["answers"]>[string];
    const answers = Object.entries(app.answers).map(([question, answer]): [string, Answer] => {
      if (!secretQuestions.has(question)) return [question, answer];
      const name = secretName(`${app.repo}-${app.name}-${question}`, secretNames);
      secrets.push({ name, app: `${app.repo}/${app.name}`, question });
      return [question, { secretRef: name }];
    });
    const file: StateAppFile = { version: app.version };
    if (answers.length > 0) file.answers = Object.fromEntries(answers);
    if (Object.keys(app.exposures).length > 0) file.exposure = { ...app.exposures };
    files.push(yamlFile(`apps/${app.repo}/${app.name}.yaml`, file));
  }

  for (const volume of current.volumes) {
    const quota = volume.quota === null ? null : sizeText(volume.quota);
    files.push(yamlFile(`volumes/${volume.name}.yaml`, { quota }));
  }
  for (const page of current.pages) files.push(yamlFile(`pages/${page.name}.yaml`, page.file));
  return { files, secrets };
}
