/**
 * What Podman says about this box's app containers, as a source of app
 * keys: one listing of every container for a resync (kept as a snapshot so
 * the passes it starts need not list again), and the container events that
 * show a change made by hand.
 */
import type { WorkloadRuntime } from "../runtime/workload.js";
import type { WorkloadList } from "./controller.js";
import { appFromLabel, appKey, LABEL_APP, LABEL_BOX } from "./labels.js";

const EVENT_RETRY_MS = 5_000;

export interface WatchOptions {
  /** This install's id: only containers carrying it are looked at (`LABEL_BOX`). */
  box: string;
  log?: (message: string, fields: Record<string, unknown>) => void;
}

export class ContainerWatch {
  /** Podman events seen: a listing taken before the latest one may be out of date. */
  private events = 0;
  private snapshot:
    { events: number; pending: Set<string>; byKey: Map<string, WorkloadList> } | undefined;

  constructor(private readonly options: WatchOptions) {}

  /**
   * Lists every container of this box once, adds the keys of their apps to
   * `keys` (containers of apps nobody installed go too), and keeps the
   * listing for one pass of each key. A failed listing is logged: the
   * passes then list for themselves.
   */
  async resync(runtime: Pick<WorkloadRuntime, "list">, keys: Set<string>): Promise<void> {
    try {
      const events = this.events;
      const byKey = new Map<string, WorkloadList>();
      for (const container of await runtime.list({ [LABEL_BOX]: this.options.box })) {
        const app = appFromLabel(container.labels[LABEL_APP]);
        if (!app) continue;
        const key = appKey(app.repo, app.name);
        // Containers of apps nobody installed (a crash between steps, a hand-made copy) go too.
        keys.add(key);
        byKey.set(key, [...(byKey.get(key) ?? []), container]);
      }
      if (events === this.events) this.snapshot = { events, pending: new Set(keys), byKey };
    } catch (error) {
      this.options.log?.("listing containers failed", {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /**
   * The app's containers from the last resync's listing, once, while no
   * Podman event has come in since (an event means the listing may be old).
   */
  take(key: string): WorkloadList | undefined {
    const snapshot = this.snapshot;
    if (!snapshot || snapshot.events !== this.events || !snapshot.pending.delete(key)) {
      return undefined;
    }
    return snapshot.byKey.get(key) ?? [];
  }

  /** Enqueues the app of every container event carrying the app label; reconnects after failures. */
  async watch(
    events: WorkloadRuntime["events"],
    signal: AbortSignal,
    enqueue: (key: string) => void,
  ): Promise<void> {
    while (!signal.aborted) {
      try {
        for await (const event of await events({ signal })) {
          if (event.attributes[LABEL_BOX] !== this.options.box) continue;
          this.events += 1;
          const app = appFromLabel(event.attributes[LABEL_APP]);
          if (app) enqueue(appKey(app.repo, app.name));
        }
      } catch {
        // The service restarted or went away: the periodic resync covers the gap.
      }
      await delay(EVENT_RETRY_MS, signal);
    }
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(resolve, ms);
    timer.unref();
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
