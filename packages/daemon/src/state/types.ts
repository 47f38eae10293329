/**
 * GitOps: what a state repository declares, what the box has, and the steps
 * that take the one to the other. `layout.ts` reads a checkout into a
 * `DesiredState` (pure), `plan.ts` compares it with the `CurrentState` into
 * ordered `StateStep`s (pure), `apply.ts` carries them out through the
 * box's services, and `service.ts` fetches, checks, records and schedules.
 *
 * A file absent from the repository means "not managed from git" for that
 * object, except for objects the previous applied commit declared: those
 * are removed (apps uninstalled keeping their data unless they said
 * `purge`; pages removed) or, for volumes and settings, only stop being
 * managed (data is never deleted because a file went away).
 */
import type {
  ManagedObject,
  StateAppFile,
  StatePageFile,
  StateProblem,
  StateRepositoriesFile,
  StateSettingsFile,
  StateVolumeFile,
} from "@townos/api";

/** An app file with the app it names (from its path `apps/<repo>/<name>.yaml`). */
export interface DesiredApp extends StateAppFile {
  repo: string;
  name: string;
}

/** What a checkout declares; null/empty: that file or directory is absent. */
export interface DesiredState {
  /** `repositories.yaml`; null when absent (repositories are then manual). */
  repositories: StateRepositoriesFile | null;
  /** By `repo/name`. */
  apps: Map<string, DesiredApp>;
  /** By the person's name of the volume (`photos` for `user.photos`). */
  volumes: Map<string, StateVolumeFile>;
  /** By page name. */
  pages: Map<string, StatePageFile>;
  /** `settings.yaml`; null when absent. */
  settings: StateSettingsFile | null;
}

/** A checkout read: what it declares, or why it cannot be applied. */
export interface ParsedCheckout {
  desired: DesiredState;
  /** Empty when the checkout is valid; a commit with problems is refused whole. */
  problems: StateProblem[];
}

/** The box now, as far as a state repository can declare it. */
export interface CurrentState {
  repositories: { name: string; url: string }[];
  apps: {
    repo: string;
    name: string;
    version: string;
    answers: Record<string, string>;
    /** Every published host port → who may reach it now (defaults included). */
    exposures: Record<string, "local" | "lan" | "internet">;
  }[];
  /** People's volumes, by their person's name; quota in bytes, null: none. */
  volumes: { name: string; quota: number | null }[];
  pages: {
    name: string;
    file: StatePageFile;
  }[];
  /** Every setting's value now, with its default. */
  settings: Record<
    string,
    { value: string | number | boolean; default: string | number | boolean }
  >;
  /** What the last applied commit declared. */
  managed: ManagedObject[];
  /** Apps (`repo/name`) whose file in the last applied commit said `purge`: removed with their data. */
  purgeOnRemoval: ReadonlySet<string>;
}

/**
 * One change, in the order applied: repositories added, settings, volumes,
 * apps uninstalled, apps installed or upgraded, exposures, pages, then
 * repositories removed (after the apps that came from them).
 */
export type StateStep =
  | { kind: "repository.add"; name: string; url: string }
  | { kind: "repository.remove"; name: string }
  | { kind: "setting.set"; key: string; value: string | number | boolean }
  | { kind: "volume.create"; name: string; quota: number | string | null | undefined }
  | { kind: "volume.quota"; name: string; quota: number | string | null }
  | { kind: "app.uninstall"; repo: string; name: string; purge: boolean }
  | {
      kind: "app.install";
      repo: string;
      name: string;
      /** Undefined: the newest the repository offers. */
      version: string | undefined;
      /** Secret references already resolved. */
      answers: Record<string, string>;
    }
  | {
      kind: "app.upgrade";
      repo: string;
      name: string;
      version: string | undefined;
      answers: Record<string, string>;
    }
  | {
      kind: "app.expose";
      repo: string;
      name: string;
      port: number;
      level: "local" | "lan" | "internet";
    }
  | { kind: "page.create"; name: string; file: StatePageFile }
  | { kind: "page.remove"; name: string };

/** "install main/wiki 1.2": a step as the history and progress show it. */
export type StepText = (step: StateStep) => string;
