/**
 * The box's desired state besides its apps, as a whole-box restore point
 * records it: the package repositories in their order and the settings a
 * person changed.
 */
import type { Repositories } from "../store/repositories.js";
import type { BoxState } from "../store/restore-points.js";
import type { Settings } from "../store/settings.js";

export function desiredState(
  repositories: Pick<Repositories, "list">,
  settings: Pick<Settings, "list">,
): Omit<BoxState, "apps"> {
  return {
    repositories: repositories.list().map((repository) => ({
      name: repository.name,
      url: repository.url,
      credentials: repository.username !== null || repository.password !== null,
    })),
    settings: Object.fromEntries(
      settings
        .list()
        .filter((setting) => setting.value !== setting.default)
        .map((setting) => [setting.key, setting.value]),
    ),
  };
}
