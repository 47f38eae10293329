/**
 * What a checkout declares against what the box has → the ordered steps
 * between them, the objects now managed from git, and the problems that
 * refuse the commit whole. Pure: secrets and the newest versions come in
 * through `options`.
 */
import type { ManagedObject, StateObjectKind, StateProblem } from "@townos/api";
import { compareVersions, parseByteSize, parseDuration } from "@townos/format";
import { canonicalJson } from "../canonical-json.js";
import { redactUrl } from "../redact.js";
import { quotaBytes } from "./layout.js";
import type { CurrentState, DesiredApp, DesiredState, StateStep } from "./types.js";

export interface PlanOptions {
  /** A secret's value (`town state secret set NAME`); undefined when none is set. */
  secret: (name: string) => string | undefined;
  /** The newest version the box's repositories offer of an app; undefined when none does. */
  latest: (repo: string, name: string) => string | undefined;
}

export interface StatePlan {
  steps: StateStep[];
  managed: ManagedObject[];
  problems: StateProblem[];
}

type Exposure = "local" | "lan" | "internet";
type CurrentApp = CurrentState["apps"][number];

/** The file that declares an app. */
export const appPath = (app: { repo: string; name: string }) => `apps/${app.repo}/${app.name}.yaml`;

/** Sizes and durations may be written `20gb` or `5m`: they equal the number they stand for. */
function sameSetting(wanted: string | number | boolean, now: string | number | boolean): boolean {
  if (typeof wanted === "string" && typeof now === "number") {
    return parseByteSize(wanted) === now || parseDuration(wanted) === now;
  }
  return wanted === now;
}

/** Whether a value fits a setting whose default is `standard` (numbers may be written with units). */
function fitsSetting(wanted: string | number | boolean, standard: string | number | boolean) {
  if (typeof standard === "number") return typeof wanted !== "boolean";
  return typeof wanted === typeof standard;
}

function byName<T extends { name: string }>(items: readonly T[]): Map<string, T> {
  return new Map(items.map((item) => [item.name, item]));
}

function sorted<T>(map: ReadonlyMap<string, T>): [string, T][] {
  return [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Answers with their secret references looked up; problems for secrets not
 * set. Encrypted answers are decrypted before planning (`age-key.ts`):
 * one still encrypted here is a problem, never an answer.
 */
function resolveAnswers(
  app: DesiredApp,
  options: PlanOptions,
  problems: StateProblem[],
): Record<string, string> {
  const answers: [string, string][] = [];
  for (const [question, answer] of Object.entries(app.answers ?? {})) {
    if (typeof answer === "string") {
      answers.push([question, answer]);
      continue;
    }
    if (!("secretRef" in answer)) {
      problems.push({ path: appPath(app), message: `answer ${question}: was not decrypted` });
      continue;
    }
    const value = options.secret(answer.secretRef);
    if (value === undefined) {
      problems.push({
        path: appPath(app),
        message: `answer ${question}: secret ${answer.secretRef} is not set on the box (town state secret set ${answer.secretRef})`,
      });
    } else {
      answers.push([question, value]);
    }
  }
  return Object.fromEntries(answers);
}

/** The install or upgrade that brings an app to its file; none when it is there. */
function appStep(
  app: DesiredApp,
  installed: CurrentApp | undefined,
  answers: Record<string, string>,
  options: PlanOptions,
): StateStep | undefined {
  const { repo, name } = app;
  if (!installed) return { kind: "app.install", repo, name, version: app.version, answers };
  const latest = options.latest(repo, name);
  const newer =
    latest !== undefined && compareVersions(latest, installed.version) > 0 ? latest : undefined;
  // No version declared: follow the newest, never step back to it.
  const version = app.version ?? newer ?? installed.version;
  const answersChanged = Object.entries(answers).some(
    ([question, answer]) =>
      !Object.hasOwn(installed.answers, question) || installed.answers[question] !== answer,
  );
  if (compareVersions(version, installed.version) === 0 && !answersChanged) return undefined;
  return {
    kind: "app.upgrade",
    repo,
    name,
    version,
    answers: Object.fromEntries([...Object.entries(installed.answers), ...Object.entries(answers)]),
  };
}

/** Declared exposures that differ from the app's; a new app's ports are known only once installed. */
function exposeSteps(
  app: DesiredApp,
  installed: CurrentApp | undefined,
  problems: StateProblem[],
): StateStep[] {
  const steps: StateStep[] = [];
  for (const [port, level] of Object.entries(app.exposure ?? {}) as [string, Exposure][]) {
    if (installed && !Object.hasOwn(installed.exposures, port)) {
      problems.push({
        path: appPath(app),
        message: `exposure ${port}: ${app.repo}/${app.name} publishes no port ${port}`,
      });
      continue;
    }
    if (installed?.exposures[port] === level) continue;
    steps.push({ kind: "app.expose", repo: app.repo, name: app.name, port: Number(port), level });
  }
  return steps;
}

/** What every kind's planning reads and adds to. */
interface Planning {
  current: CurrentState;
  problems: StateProblem[];
  managed: ManagedObject[];
}

function wasManaged({ current }: Planning, kind: StateObjectKind, name: string): boolean {
  return current.managed.some((object) => object.kind === kind && object.name === name);
}

/** Repositories: added first, removed last (after the apps that came from them). */
function planRepositories(declared: DesiredState["repositories"], planning: Planning) {
  const add: StateStep[] = [];
  const remove: StateStep[] = [];
  if (declared === null) return { add, remove };
  const existing = byName(planning.current.repositories);
  for (const { name, url } of declared) {
    planning.managed.push({ kind: "repository", name });
    const repository = existing.get(name);
    if (!repository) {
      add.push({ kind: "repository.add", name, url });
    } else if (repository.url !== url) {
      planning.problems.push({
        path: "repositories.yaml",
        message: `repository ${name} is ${redactUrl(repository.url)} on the box, not ${redactUrl(url)}: remove it by hand first, or give this one another name`,
      });
    }
  }
  const names = new Set(declared.map(({ name }) => name));
  for (const { name } of planning.current.repositories) {
    if (!names.has(name) && wasManaged(planning, "repository", name)) {
      remove.push({ kind: "repository.remove", name });
    }
  }
  return { add, remove };
}

function planSettings(declared: DesiredState["settings"], planning: Planning): StateStep[] {
  const steps: StateStep[] = [];
  const { current, problems } = planning;
  for (const [key, value] of Object.entries(declared ?? {})) {
    planning.managed.push({ kind: "setting", name: key });
    const setting = Object.hasOwn(current.settings, key) ? current.settings[key] : undefined;
    if (!setting) {
      problems.push({ path: "settings.yaml", message: `there is no setting ${key}` });
    } else if (!fitsSetting(value, setting.default)) {
      const expected =
        typeof setting.default === "boolean" ? "true or false" : `a ${typeof setting.default}`;
      problems.push({ path: "settings.yaml", message: `${key}: expected ${expected}` });
    } else if (!sameSetting(value, setting.value)) {
      steps.push({ kind: "setting.set", key, value });
    }
  }
  return steps;
}

/** Volumes: made or resized, never deleted because their file went away. */
function planVolumes(declared: DesiredState["volumes"], planning: Planning): StateStep[] {
  const steps: StateStep[] = [];
  const volumes = byName(planning.current.volumes);
  for (const [name, { quota }] of sorted(declared)) {
    planning.managed.push({ kind: "volume", name });
    const bytes = quota === undefined ? undefined : quotaBytes(quota);
    if (quota !== undefined && bytes === undefined) {
      planning.problems.push({
        path: `volumes/${name}.yaml`,
        message: `quota ${String(quota)} is not a size such as 10gb`,
      });
      continue;
    }
    const volume = volumes.get(name);
    if (!volume) steps.push({ kind: "volume.create", name, quota });
    else if (quota !== undefined && bytes !== volume.quota) {
      steps.push({ kind: "volume.quota", name, quota });
    }
  }
  return steps;
}

function planApps(declared: DesiredState["apps"], planning: Planning, options: PlanOptions) {
  const { current } = planning;
  const installed = new Map(current.apps.map((app) => [`${app.repo}/${app.name}`, app]));
  const uninstall: StateStep[] = [];
  for (const [key, app] of installed) {
    if (!declared.has(key) && wasManaged(planning, "app", key)) {
      const purge = current.purgeOnRemoval.has(key);
      uninstall.push({ kind: "app.uninstall", repo: app.repo, name: app.name, purge });
    }
  }
  const install: StateStep[] = [];
  const expose: StateStep[] = [];
  for (const [key, app] of sorted(declared)) {
    planning.managed.push({ kind: "app", name: key });
    const answers = resolveAnswers(app, options, planning.problems);
    const step = appStep(app, installed.get(key), answers, options);
    if (step) install.push(step);
    expose.push(...exposeSteps(app, installed.get(key), planning.problems));
  }
  return { uninstall, install, expose };
}

/** Pages: a changed file makes the page anew (remove, then create). */
function planPages(declared: DesiredState["pages"], planning: Planning): StateStep[] {
  const steps: StateStep[] = [];
  for (const { name } of planning.current.pages) {
    if (!declared.has(name) && wasManaged(planning, "page", name)) {
      steps.push({ kind: "page.remove", name });
    }
  }
  const pages = byName(planning.current.pages);
  for (const [name, file] of sorted(declared)) {
    planning.managed.push({ kind: "page", name });
    const page = pages.get(name);
    if (page && canonicalJson(page.file) === canonicalJson(file)) continue;
    if (page) steps.push({ kind: "page.remove", name });
    steps.push({ kind: "page.create", name, file });
  }
  return steps;
}

/**
 * The steps from `current` to `desired`, in the order they are applied
 * (see `StateStep`). Any problem refuses the commit whole: the steps are
 * then not to be applied.
 */
export function planChanges(
  desired: DesiredState,
  current: CurrentState,
  options: PlanOptions,
): StatePlan {
  const planning: Planning = { current, problems: [], managed: [] };
  const repositories = planRepositories(desired.repositories, planning);
  const settings = planSettings(desired.settings, planning);
  const volumes = planVolumes(desired.volumes, planning);
  const apps = planApps(desired.apps, planning, options);
  const pages = planPages(desired.pages, planning);
  const steps = [
    ...repositories.add,
    ...settings,
    ...volumes,
    ...apps.uninstall,
    ...apps.install,
    ...apps.expose,
    ...pages,
    ...repositories.remove,
  ];
  return { steps, managed: planning.managed, problems: planning.problems };
}

const quotaText = (quota: number | string | null | undefined) =>
  quota === null ? "no quota" : `quota ${String(quota)}`;

/** "install main/wiki 1.2": a step for the history and the progress. Answers are never shown (secrets). */
export function stepText(step: StateStep): string {
  switch (step.kind) {
    case "repository.add":
      return `add repository ${step.name} (${redactUrl(step.url)})`;
    case "repository.remove":
      return `remove repository ${step.name}`;
    case "setting.set":
      return `set ${step.key} = ${String(step.value)}`;
    case "volume.create":
      return step.quota === undefined
        ? `create volume ${step.name}`
        : `create volume ${step.name} with ${quotaText(step.quota)}`;
    case "volume.quota":
      return `set volume ${step.name} to ${quotaText(step.quota)}`;
    case "app.uninstall":
      return `uninstall ${step.repo}/${step.name}${step.purge ? " and delete its data" : ""}`;
    case "app.install":
      return `install ${step.repo}/${step.name}${step.version === undefined ? "" : ` ${step.version}`}`;
    case "app.upgrade":
      return `update ${step.repo}/${step.name}${step.version === undefined ? "" : ` to ${step.version}`}`;
    case "app.expose":
      return `expose ${step.repo}/${step.name} port ${step.port} to ${step.level}`;
    case "page.create":
      return `create page ${step.name}`;
    case "page.remove":
      return `remove page ${step.name}`;
  }
}
