/**
 * Objects declared in the state repository, as the screens that change them
 * mark them: a badge, and their edit controls disabled (the daemon refuses
 * those changes with 409 anyway; this says why before anyone tries).
 */
import type { StateObjectKind } from "@townos/client";
import { client, useLoad } from "./api.js";
import { t } from "./messages.js";
import { useSession } from "./session.js";
import { isManaged } from "./state.js";

/**
 * Whether git declares an object. Only administrators may read the state
 * repository's status, and only they change these objects: for anyone else
 * nothing is managed (their controls are hidden already).
 */
export function useManaged(): (kind: StateObjectKind, name: string) => boolean {
  const { isAdmin } = useSession();
  const state = useLoad(
    () => (isAdmin ? client.stateStatus() : Promise.resolve(undefined)),
    `state:${String(isAdmin)}`,
  );
  return (kind, name) => isManaged(state.data, kind, name);
}

/** The mark of an object declared in git, with where to change it. */
export function ManagedBadge() {
  return (
    <span className="badge" title={t("state.managedHint")}>
      {t("state.managedBadge")}
    </span>
  );
}
