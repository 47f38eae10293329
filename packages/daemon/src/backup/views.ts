/** Backups as the API shows them. */
import type { BackupView } from "@townos/api";
import type { StoredBackup } from "./types.js";

export function backupView(target: string, stored: StoredBackup): BackupView {
  const { manifest } = stored;
  return {
    id: manifest.id,
    target,
    subject: manifest.subject,
    app: manifest.app && {
      repo: manifest.app.repo,
      name: manifest.app.name,
      version: manifest.app.version,
    },
    createdAt: manifest.createdAt,
    volumes: manifest.volumes.map((volume) => volume.name),
    bytes: stored.bytes,
    incremental: stored.incremental,
  };
}
