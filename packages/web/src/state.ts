/**
 * The State repository screen's and the other screens' view of GitOps: what
 * the box follows, what it manages, what each commit did, and the form that sets it.
 */
import type {
  ManagedObject,
  SetStateBody,
  StateApplyView,
  StateObjectKind,
  StateStatus,
  VolumeView,
} from "@townos/client";
import { t, type MessageKey } from "./messages.js";

/** Whether the state repository declares the object: the daemon refuses changing it by hand. */
export function isManaged(
  status: StateStatus | undefined,
  kind: StateObjectKind,
  name: string,
): boolean {
  return status?.managed.some((object) => object.kind === kind && object.name === name) ?? false;
}

/** The name git declares a volume by: a person's volume without `user.`; other volumes cannot be declared. */
export function declaredVolumeName(volume: Pick<VolumeView, "name" | "kind">): string | undefined {
  return volume.kind === "user" ? volume.name.slice("user.".length) : undefined;
}

/** Each kind's heading, in the order a sync applies them. */
const KIND_TITLES: Record<StateObjectKind, MessageKey> = {
  repository: "state.kind.repository",
  setting: "state.kind.setting",
  volume: "state.kind.volume",
  app: "state.kind.app",
  page: "state.kind.page",
};

/** Managed objects by kind, kinds in apply order, names sorted; kinds with none left out. */
export function managedGroups(
  managed: readonly ManagedObject[],
): { kind: StateObjectKind; title: string; names: string[] }[] {
  return (Object.keys(KIND_TITLES) as StateObjectKind[]).flatMap((kind) => {
    const names = managed
      .filter((object) => object.kind === kind)
      .map((object) => object.name)
      .sort();
    return names.length === 0 ? [] : [{ kind, title: t(KIND_TITLES[kind]), names }];
  });
}

/** A commit id as git shows it short. */
export function shortCommit(commit: string): string {
  return commit.slice(0, 7);
}

/** 300 → "5m", 90 → "90s": the largest unit that divides it, as the interval field takes it. */
export function intervalText(seconds: number): string {
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
  ] as const) {
    if (seconds >= size && seconds % size === 0) return `${String(seconds / size)}${unit}`;
  }
  return `${String(seconds)}s`;
}

/** A commit's badge and words: the changes it made, or why it was refused or failed. */
export function applyResult(apply: StateApplyView): {
  badge: "running" | "failed";
  label: string;
  detail: string;
} {
  if (apply.result === "applied") {
    return {
      badge: "running",
      label: t("state.result.applied"),
      detail: apply.changes.length === 0 ? t("state.noChanges") : apply.changes.join("; "),
    };
  }
  return {
    badge: "failed",
    label: t(apply.result === "refused" ? "state.result.refused" : "state.result.failed"),
    detail: apply.error ?? "",
  };
}

/** The set-repository form's fields. */
export interface StateForm {
  url: string;
  /** Empty: the remote's default branch. */
  branch: string;
  username: string;
  password: string;
  /** Empty: the daemon's default (5 minutes). */
  interval: string;
}

/** The form for `status`: its repository and settings, credentials to type again (never shown). */
export function stateForm(status: StateStatus | undefined): StateForm {
  return {
    url: status?.url ?? "",
    branch: status?.branch ?? "",
    username: "",
    password: "",
    interval:
      status?.intervalSeconds === null || status?.intervalSeconds === undefined
        ? ""
        : intervalText(status.intervalSeconds),
  };
}

/** The form as the API's body, or the first thing to fix (the daemon checks again). */
export function stateBody(form: StateForm): SetStateBody | { missing: MessageKey } {
  const url = form.url.trim();
  if (url === "") return { missing: "state.missing.url" };
  const branch = form.branch.trim();
  const username = form.username.trim();
  const interval = form.interval.trim();
  if (form.password !== "" && username === "") return { missing: "state.missing.username" };
  return {
    url,
    ...(branch === "" ? {} : { branch }),
    ...(username === "" ? {} : { username }),
    ...(form.password === "" ? {} : { password: form.password }),
    ...(interval === "" ? {} : { interval }),
  };
}
