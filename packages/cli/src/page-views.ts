import type { PageInfo, PageLogLine, PageSourceView, PageVersion } from "@townos/client";
import { formatBytes, table, timeText, oneLine } from "./text.js";

// Pages (static websites) as `town page` prints them.

/** "online", "deploying (building)", "failed: …", "empty (waiting for an upload)". */
export function stateText(page: PageInfo): string {
  switch (page.state) {
    case "deploying":
      return page.step === null ? "deploying" : `deploying (${page.step})`;
    case "failed":
      return page.error === null ? "failed" : `failed: ${oneLine(page.error)}`;
    case "empty":
      return page.source.type === "archive" ? "empty (waiting for an upload)" : "empty";
    case "online":
      return "online";
  }
}

/** "git https://host/site.git (branch main, dir docs)", "archive", "image localhost/site:1 path /srv/www". */
export function sourceText(source: PageSourceView): string {
  const details = [
    source.branch === null ? "" : `branch ${source.branch}`,
    source.dir === null ? "" : `dir ${source.dir}`,
  ].filter((part) => part !== "");
  const head =
    source.type === "git"
      ? `git ${source.url ?? "?"}`
      : source.type === "image"
        ? `image ${source.image ?? "?"} path ${source.path ?? "?"}`
        : "archive";
  return details.length === 0 ? head : `${head} (${details.join(", ")})`;
}

/** `town page ls`: one row a page; the failure's reason is `show`'s, to keep rows short. */
export function pageTable(pages: readonly PageInfo[]): string {
  if (pages.length === 0) return "there are no pages";
  return table(
    ["NAME", "STATE", "UPDATED", "URL", "SOURCE"],
    pages.map((page) => [
      page.name,
      page.state === "failed" ? "failed" : stateText(page),
      page.updatedAt === null ? "-" : timeText(page.updatedAt),
      page.urls[0] ?? "-",
      sourceText(page.source),
    ]),
  );
}

/** `town page show`: every fact of a page, first line its name and state. */
export function pageLines(page: PageInfo): string[] {
  const lines = [`${page.name}: ${stateText(page)}`];
  for (const url of page.urls) lines.push(`  url ${url}`);
  if (page.domains.length > 0) lines.push(`  domains: ${page.domains.join(", ")}`);
  lines.push(`  source: ${sourceText(page.source)}`);
  if (page.build) {
    lines.push(
      `  build: ${page.build.command} (image ${page.build.image}), serving ${page.build.output}`,
    );
  }
  lines.push(`  current: ${page.current ? versionText(page.current) : "none"}`);
  if (page.previous) lines.push(`  previous (rollback): ${versionText(page.previous)}`);
  lines.push(`  created ${timeText(page.createdAt)}`);
  if (page.skipped.length > 0) {
    lines.push(`  left out (links and special files): ${page.skipped.length}`);
    for (const path of page.skipped) lines.push(`    ${path}`);
  }
  return lines;
}

/** "v3, 12 files, 4.0 KiB, commit 1a2b…, 2026-01-02T03:04:05Z". */
export function versionText(version: PageVersion): string {
  const parts = [
    version.id,
    `${version.files} file${version.files === 1 ? "" : "s"}`,
    formatBytes(version.bytes),
  ];
  if (version.commit !== null) parts.push(`commit ${version.commit}`);
  parts.push(timeText(version.createdAt));
  return parts.join(", ");
}

/** A build log line: its time, and `--` before the daemon's own words. */
export function logLineText(line: PageLogLine): string {
  return `${timeText(line.time)} ${line.stream === "town" ? "-- " : ""}${line.text}`;
}
