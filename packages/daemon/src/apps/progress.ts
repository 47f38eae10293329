/**
 * Who follows the progress of an app's reconciles (the API streams it while
 * an install runs): listeners per app, told each step as it happens.
 */
import { appKey } from "./labels.js";
import type { ReconcileProgress } from "./steps.js";

/** One line of an install's (or any change's) progress, as the API streams it. */
export interface AppProgress extends ReconcileProgress {
  at: number;
}

export class ProgressFollowers {
  /** Per key: who follows the progress of its reconciles. */
  private readonly followers = new Map<string, Set<(progress: AppProgress) => void>>();

  /** Calls `listener` with each progress line of the app's reconciles until the returned function is called. */
  follow(repo: string, name: string, listener: (progress: AppProgress) => void): () => void {
    const key = appKey(repo, name);
    const set = this.followers.get(key) ?? new Set();
    set.add(listener);
    this.followers.set(key, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.followers.delete(key);
    };
  }

  /** Tells the followers of the app with this key. */
  tell(key: string, progress: AppProgress): void {
    for (const listener of this.followers.get(key) ?? []) listener(progress);
  }
}
