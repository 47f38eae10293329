/**
 * Holds keep an app stopped while one of its package volumes is worked on
 * (an upload or a restore into it, a snapshot that needs it still), whatever its desired state; the
 * controller asks `isHeld` on every pass.
 */
import { nameScope } from "@townos/format";
import { parseVolumeName } from "../storage/names.js";
import type { Installs } from "../store/installs.js";
import { appKey } from "./labels.js";
import { flattenPlan } from "./names.js";

/** Reconciles the app and waits for it (or gives up after a while). */
export type AppRequest = (repo: string, name: string) => Promise<unknown>;

export class VolumeHolds {
  /** Per key: how many holds keep the app stopped. */
  private readonly holds = new Map<string, number>();

  constructor(private readonly installs: Installs) {}

  /** True while a hold keeps the app stopped. */
  isHeld(repo: string, name: string): boolean {
    return (this.holds.get(appKey(repo, name)) ?? 0) > 0;
  }

  /**
   * Stops the installed app that owns a package volume (through `request`),
   * and keeps it stopped until the returned release is called (which starts
   * it again if it should run). For anything else (user volumes, no such
   * app, no runtime to reconcile with) a no-op.
   */
  async hold(volumeName: string, request: AppRequest | undefined): Promise<() => Promise<void>> {
    const parsed = parseVolumeName(volumeName);
    const owner =
      parsed?.kind === "package" && request
        ? this.installs
            .list()
            .find((install) =>
              install.plan
                ? flattenPlan(install.plan).some(
                    ({ plan }) =>
                      nameScope(plan) === parsed.repo && plan.instance === parsed.instance,
                  )
                : false,
            )
        : undefined;
    if (!owner || !request) return () => Promise.resolve();
    return this.holdApp(owner.repo, owner.name, request);
  }

  /**
   * Stops the app (through `request`) and keeps it stopped until the
   * returned release is called, which starts it again if it should run.
   * `stop`, when given, stops it first, once the hold keeps it from starting.
   */
  async holdApp(
    repo: string,
    name: string,
    request: AppRequest,
    stop?: () => Promise<void>,
  ): Promise<() => Promise<void>> {
    const key = appKey(repo, name);
    this.holds.set(key, (this.holds.get(key) ?? 0) + 1);
    await stop?.();
    await request(repo, name);
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      const left = (this.holds.get(key) ?? 1) - 1;
      if (left > 0) this.holds.set(key, left);
      else this.holds.delete(key);
      await request(repo, name);
    };
  }
}
