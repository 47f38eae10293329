/**
 * A backup's manifest, made from the restore point it sends: what the app
 * was (from the restore point's record), where its package repository is,
 * and each volume's quota and owner now.
 */
import { TownError } from "@townos/format";
import type { StorageDriver } from "../storage/driver.js";
import type { RestorePointRecord } from "../store/restore-points.js";
import { MANIFEST_FORMAT, type BackupManifest } from "./types.js";

export interface ManifestInputs {
  /** This box's id (`LABEL_BOX`). */
  box: string;
  storage: Pick<StorageDriver, "attributes">;
  /** The URL of a package repository by name; undefined when there is none of that name. */
  repositoryUrl: (repo: string) => string | undefined;
}

/** @throws `not_found` when one of the restore point's volumes is gone */
export async function buildManifest(
  point: RestorePointRecord,
  inputs: ManifestInputs,
): Promise<BackupManifest> {
  const volumes: BackupManifest["volumes"] = [];
  for (const name of point.volumes) {
    const attributes = await inputs.storage.attributes(name);
    if (!attributes) throw new TownError("not_found", `volume ${name} is gone`);
    volumes.push({ name, quota: attributes.quota, owner: attributes.owner });
  }
  const url = point.app && inputs.repositoryUrl(point.app.repo);
  return {
    format: MANIFEST_FORMAT,
    id: point.id,
    box: inputs.box,
    subject: point.subject,
    app: point.app && {
      ...point.app,
      repoUrl: url === undefined || url === null ? null : withoutCredentials(url),
    },
    ...(point.box && {
      desired: {
        apps: point.box.apps,
        repositories: point.box.repositories.map((repository) => ({
          ...repository,
          url: withoutCredentials(repository.url),
        })),
        settings: point.box.settings,
      },
    }),
    volumes,
    createdAt: point.createdAt,
  };
}

/** The URL without user, password, query or fragment: the manifest is stored off the box. */
export function withoutCredentials(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not a URL (a local path, scp-like `host:path`): only what a person typed, minus any `user@`.
    return url.replace(/^[^/@]*@/, "");
  }
  parsed.username = "";
  parsed.password = "";
  parsed.search = "";
  parsed.hash = "";
  return parsed.toString();
}
