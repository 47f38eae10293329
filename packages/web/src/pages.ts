import type {
  CreatePageBody,
  PageInfo,
  PageSourceType,
  PageSourceView,
  PageVersion,
} from "@townos/client";
import { formatBytes, formatTime, t, type MessageKey } from "./messages.js";

// Pages (static websites) in words for the Pages screen, and its create form as the API's body.

/** The badge's colour class (as the apps' badges) and its word. */
export type PageBadge = "running" | "starting" | "failed" | "empty";

export interface PageStatus {
  badge: PageBadge;
  label: string;
  /** The step under way, the failure's reason, or what an empty page waits for. */
  detail: string | null;
}

export function pageStatus(page: PageInfo): PageStatus {
  switch (page.state) {
    case "online":
      return { badge: "running", label: t("pages.state.online"), detail: null };
    case "deploying":
      return {
        badge: "starting",
        label: t("pages.state.deploying"),
        detail: page.step === null ? null : t("pages.step", { step: page.step }),
      };
    case "failed":
      return { badge: "failed", label: t("pages.state.failed"), detail: page.error };
    case "empty":
      return {
        badge: "empty",
        label: t("pages.state.empty"),
        detail: page.source.type === "archive" ? t("pages.waitingUpload") : null,
      };
  }
}

/** "Git: https://host/site.git (branch main, folder docs)", "Archive upload", "Image localhost/s:1, folder /srv". */
export function pageSourceText(source: PageSourceView): string {
  const details = [
    source.branch === null ? "" : t("pages.branch", { branch: source.branch }),
    source.dir === null ? "" : t("pages.folder", { dir: source.dir }),
  ].filter((part) => part !== "");
  const head =
    source.type === "git"
      ? t("pages.source.gitOf", { url: source.url ?? "" })
      : source.type === "image"
        ? t("pages.source.imageOf", { image: source.image ?? "", path: source.path ?? "" })
        : t("pages.source.archiveOf");
  return details.length === 0 ? head : `${head} (${details.join(", ")})`;
}

/** "12 files, 4 KB, commit 1a2b3c, <time>". */
export function pageVersionText(version: PageVersion): string {
  const parts = [
    t(version.files === 1 ? "pages.file" : "pages.files", { count: version.files }),
    formatBytes(version.bytes),
  ];
  if (version.commit !== null) parts.push(t("pages.commit", { commit: version.commit }));
  parts.push(formatTime(version.createdAt));
  return parts.join(", ");
}

/** A page's facts as its card lists them: a label and its text, in order. */
export function pageFactRows(page: PageInfo): [label: string, value: string][] {
  const rows: [string, string][] = [[t("pages.source"), pageSourceText(page.source)]];
  if (page.build) {
    rows.push([
      t("pages.build"),
      t("pages.buildOf", {
        command: page.build.command,
        image: page.build.image,
        output: page.build.output,
      }),
    ]);
  }
  rows.push([
    t("pages.current"),
    page.current ? pageVersionText(page.current) : t("pages.noVersion"),
  ]);
  if (page.previous) rows.push([t("pages.previous"), pageVersionText(page.previous)]);
  if (page.skipped.length > 0) rows.push([t("pages.skipped"), page.skipped.join(", ")]);
  return rows;
}

/** What the create dialog holds; every text as typed. */
export interface PageForm {
  name: string;
  type: PageSourceType;
  url: string;
  branch: string;
  dir: string;
  image: string;
  path: string;
  build: boolean;
  buildImage: string;
  buildCommand: string;
  output: string;
  /** Public domains, separated by spaces or commas. */
  domains: string;
}

export const EMPTY_PAGE_FORM: PageForm = {
  name: "",
  type: "archive",
  url: "",
  branch: "",
  dir: "",
  image: "",
  path: "",
  build: false,
  buildImage: "",
  buildCommand: "",
  output: "",
  domains: "",
};

/**
 * The form as the API's body, or the first thing missing (the daemon checks
 * names, URLs and paths again). Fields of the other source types are left out.
 */
export function createPageBody(form: PageForm): { body: CreatePageBody } | { missing: MessageKey } {
  const name = form.name.trim();
  if (name === "") return { missing: "pages.missing.name" };
  const url = form.url.trim();
  const image = form.image.trim();
  const path = form.path.trim();
  if (form.type === "git" && url === "") return { missing: "pages.missing.url" };
  if (form.type === "image" && image === "") return { missing: "pages.missing.image" };
  if (form.type === "image" && path === "") return { missing: "pages.missing.path" };
  const body: CreatePageBody = {
    name,
    source: {
      type: form.type,
      ...(form.type === "git" ? { url, ...optional("branch", form.branch) } : {}),
      ...(form.type === "image" ? { image, path } : optional("dir", form.dir)),
    },
  };
  if (form.build) {
    const build = {
      image: form.buildImage.trim(),
      command: form.buildCommand.trim(),
      output: form.output.trim(),
    };
    if (build.image === "" || build.command === "" || build.output === "") {
      return { missing: "pages.missing.build" };
    }
    body.build = build;
  }
  const domains = form.domains.split(/[\s,]+/).filter((domain) => domain !== "");
  if (domains.length > 0) body.domains = domains;
  return { body };
}

/** `{key: value}` for a field typed in, nothing for a blank one. */
function optional<K extends string>(key: K, value: string): Partial<Record<K, string>> {
  const trimmed = value.trim();
  return trimmed === "" ? {} : ({ [key]: trimmed } as Record<K, string>);
}
