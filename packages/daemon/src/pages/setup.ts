/**
 * The pages service as the daemon runs it: made with the database, given
 * its content store once the ingress (where sites live) and the container
 * runtime (image sources and builds) are there, and refreshed on the
 * schedule of the `pages.refresh_interval` setting.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { LABEL_BOX } from "../apps/labels.js";
import type { Clock } from "../clock.js";
import type { HostRuntime } from "../runtime/workload.js";
import type { Db } from "../store/database.js";
import type { Settings } from "../store/settings.js";
import { PageContent } from "./content.js";
import { DeployLogBook } from "./deploy-log.js";
import { remoteHead } from "./git-head.js";
import { PAGE_LABEL, Pages, type PagesOptions } from "./service.js";
import { PageStore } from "./store.js";

/** Below the data directory: each page's last build log. */
const PAGE_LOGS_DIR = "pages";

export function createPages(
  db: Db,
  clock: Clock,
  dataDir: string,
  options: Omit<PagesOptions, "store" | "logs" | "remoteHead">,
): Pages {
  return new Pages({
    ...options,
    store: new PageStore(db, clock),
    logs: new DeployLogBook(join(dataDir, PAGE_LOGS_DIR), clock),
    remoteHead: (url, branch) => remoteHead(url, branch),
  });
}

/**
 * Pages can deploy: their content goes to the ingress's sites directory.
 * Without a runtime, archive and git pages work and image sources and
 * builds answer `unavailable`. Build and image containers a crash left
 * behind (this box's, labelled as a page's) are removed first.
 */
export async function attachPages(
  pages: Pages,
  dataDir: string,
  sitesDir: string,
  runtime: HostRuntime | undefined,
  insecureRegistries: () => readonly string[],
  clock: Clock,
): Promise<void> {
  await mkdir(join(dataDir, PAGE_LOGS_DIR), { recursive: true, mode: 0o700 });
  for (const leftover of (await runtime?.list({ [LABEL_BOX]: pages.box })) ?? []) {
    if (leftover.labels[PAGE_LABEL] !== undefined) await runtime?.remove(leftover.name);
  }
  await pages.attach(
    new PageContent({
      sitesDir,
      ...(runtime === undefined ? {} : { runtime }),
      insecureRegistries,
      clock,
    }),
  );
}

/** Git pages look for new commits every `pages.refresh_interval` seconds (0: never on their own). Returns a stop function. */
export function schedulePageRefreshes(pages: Pages, settings: Settings): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = (): void => {
    clearTimeout(timer);
    if (stopped) return;
    const interval = settings.number("pages.refresh_interval");
    // A zero interval is looked at again each minute, in case it is turned on.
    timer = setTimeout(
      () => {
        if (interval > 0) pages.refreshAll();
        schedule();
      },
      (interval > 0 ? interval : 60) * 1000,
    );
    timer.unref();
  };
  settings.onChange((key) => {
    if (key === "pages.refresh_interval") schedule();
  });
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
