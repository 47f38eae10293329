/**
 * The shapes the pages service, its content store and its network inputs
 * share. A page is a static website served by the ingress from one
 * directory (a *version*) under the sites directory; a deploy makes a new
 * version beside the live one, and pointing the ingress at it is the swap.
 */
import type { Readable } from "node:stream";
import type { PageBuild } from "@townos/api";

/** Where a page's content comes from, as stored (a git URL keeps its credentials: never shown). */
export type PageSource =
  | { type: "archive"; dir: string | null }
  | { type: "git"; url: string; branch: string | null; dir: string | null }
  | { type: "image"; image: string; path: string };

/** What one deploy starts from: the source with its bytes when they come by upload. */
export type DeployInput =
  | { type: "archive"; dir: string | null; input: Readable; declaredBytes?: number }
  | { type: "git"; url: string; branch: string | null; dir: string | null }
  | { type: "image"; image: string; path: string };

/** A step of a deploy, shown while it runs. */
export type DeployStep =
  "receiving" | "cloning" | "pulling" | "extracting" | "building" | "publishing";

export interface DeployLog {
  step(step: DeployStep): void;
  /** A line for the build log (`town`: the daemon's own words). */
  line(stream: "stdout" | "stderr" | "town", text: string): void;
}

/** A version made and moved into place, not yet served. */
export interface PreparedVersion {
  /** Sortable by time: `YYYYMMDDTHHMMSSmmmZ-<hex>`. */
  id: string;
  /** ms since the epoch: when it was made (the time in its id). */
  createdAt: number;
  files: number;
  bytes: number;
  /** git: the commit checked out. */
  commit: string | null;
  /** Paths of links and special files left out (the first few hundred). */
  skipped: string[];
}

export interface DeployOptions {
  log: DeployLog;
  signal: AbortSignal;
  build: PageBuild | null;
  /** Labels of the build container and of a container an image is read through (so a crash's leftovers can be found). */
  labels: Readonly<Record<string, string>>;
}

/** What the network plan needs of a page. */
export interface NetworkPage {
  name: string;
  /** `<page>.<tld>`. */
  host: string;
  /** Public domains: ACME certificates, served to any source. */
  domains: string[];
  /** The live version's directory relative to the sites directory (`<page>/<version>`); null before the first deploy. */
  root: string | null;
}
