/**
 * The restore points the box takes by itself: before an upgrade, a
 * reinstall over kept data, and a quota change, an upload or a restore of
 * an app's volume.
 */
import type { AppChangeHooks } from "../apps/service.js";
import { parseVolumeName } from "../storage/names.js";
import type { Installs } from "../store/installs.js";
import type { VolumeChangeHook } from "../volumes/volumes.js";
import type { RestorePointService } from "./restore-points.js";

export function restorePointHooks(
  points: RestorePointService,
  installs: Installs,
): { apps: AppChangeHooks; volumes: VolumeChangeHook } {
  return {
    apps: {
      beforeUpgrade: (repo, name) => points.take(`${repo}/${name}`, "upgrade"),
      beforeReinstall: (repo, name, volumes) => {
        // The kept volumes as the uninstall left them, recorded under the names they are about to take.
        const version = volumes
          .map((volume) => installs.uninstalledVolumeVersion(volume.from))
          .find((found) => found !== undefined);
        const last = installs.lastAnswers(repo, name);
        return points.takeOf(
          `${repo}/${name}`,
          "reinstall",
          version === undefined
            ? null
            : {
                repo,
                name,
                version,
                definitionHash: "",
                answers: last?.version === version ? last.answers : {},
                plan: null,
              },
          volumes.map((volume) => ({ current: volume.from, recordAs: volume.volume })),
          "none",
        );
      },
    },
    // An app's data only: a person's own volumes get the snapshots they take.
    volumes: async (volume, reason) => {
      if (parseVolumeName(volume)?.kind === "package") await points.take(volume, reason);
    },
  };
}
