/**
 * The daemon's periodic chores: repository refreshes, page refreshes,
 * session sweeps and audit pruning.
 */
import type { FastifyInstance } from "fastify";
import { schedulePageRefreshes } from "./pages/setup.js";
import type { Services } from "./services.js";

/** Drops audit entries past the retention setting. */
export function pruneAudit(services: Services, app: FastifyInstance): void {
  const dropped = services.audit.prune(services.settings.number("audit.retention") * 1000);
  if (dropped > 0) app.log.info({ dropped }, "audit: old entries dropped");
}

/** Root's console password into /etc/shadow at boot; when that fails, root stays as the image left it (locked). */
export async function applyConsolePassword(
  services: Services,
  app: FastifyInstance,
): Promise<void> {
  try {
    await services.consolePassword.apply();
  } catch (error) {
    app.log.warn({ err: error }, "console login: root's password is not applied");
  }
}

/**
 * Repository refreshes on the configured interval, session sweeps, and audit
 * pruning (which also writes the summaries of anonymous requests not recorded
 * one by one); once, the saved network settings. Returns a stop function.
 */
export function startBackgroundWork(services: Services, app: FastifyInstance): () => void {
  let stopped = false;
  // networkctl may be slow, and a failure is shown in the settings: the boot goes on.
  services.osNetwork.apply().catch((error: unknown) => {
    app.log.error({ err: error }, "network: the saved settings are not applied");
  });
  let refreshTimer: NodeJS.Timeout | undefined;
  const scheduleRefresh = (delayMs: number): void => {
    refreshTimer = setTimeout(() => {
      const interval = services.settings.number("repositories.refresh_interval");
      const run = interval > 0 ? services.catalog.refreshAll() : Promise.resolve([]);
      void run
        .then((outcomes) => {
          for (const outcome of outcomes.filter((o) => !o.ok)) {
            app.log.warn(
              { repository: outcome.name, error: outcome.error },
              "repository refresh failed",
            );
          }
        })
        .finally(() => {
          // A zero interval is looked at again each minute, in case it is turned on.
          if (!stopped) scheduleRefresh(Math.max(interval, 60) * 1000);
        });
    }, delayMs);
    refreshTimer.unref();
  };
  scheduleRefresh(1000);
  const stopPageRefreshes = schedulePageRefreshes(services.pages, services.settings);
  const sweep = setInterval(() => services.sessions.sweep(), 3600_000);
  sweep.unref();
  const audit = setInterval(() => {
    pruneAudit(services, app);
  }, 60_000);
  audit.unref();
  return () => {
    stopped = true;
    stopPageRefreshes();
    clearTimeout(refreshTimer);
    clearInterval(sweep);
    clearInterval(audit);
  };
}
