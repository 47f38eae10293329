/** Test helpers for planning a state repository against a box. */
import type { PlanOptions } from "../src/state/plan.js";
import type { CurrentState } from "../src/state/types.js";

/** A box with nothing on it: no repositories, apps, volumes, pages or settings. */
export function emptyBox(): CurrentState {
  return {
    repositories: [],
    apps: [],
    volumes: [],
    pages: [],
    settings: {},
    managed: [],
    purgeOnRemoval: new Set(),
  };
}

/** Planning that finds no secret and no newer version of any package. */
export const noLookups: PlanOptions = { secret: () => undefined, latest: () => undefined };
