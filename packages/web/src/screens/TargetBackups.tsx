import { useState } from "react";
import type { BackupView, RestoreBackupResult } from "@townos/client";
import { client, useAction, useLoad } from "../api.js";
import { ErrorBox, Spinner } from "../components.js";
import { formatBytes, formatTime, t } from "../messages.js";

/** A target's backups, read when opened, newest first, each restorable in place (what it replaces kept first). */
export function TargetBackups({ target }: { target: string }) {
  const [open, setOpen] = useState(false);
  return (
    <details
      onToggle={(event) => {
        setOpen(event.currentTarget.open);
      }}
    >
      <summary>{t("backups.targetBackups", { name: target })}</summary>
      {open && <BackupList target={target} />}
    </details>
  );
}

function BackupList({ target }: { target: string }) {
  const list = useLoad(() => client.targetBackups(target), `target-backups:${target}`);
  const [done, setDone] = useState<RestoreBackupResult>();
  const { problem, busy, act } = useAction(list.reload);
  if (!list.data) {
    return list.error ? <ErrorBox problem={list.error} onRetry={list.reload} /> : <Spinner />;
  }
  if (list.data.length === 0) return <p className="muted">{t("backups.noBackups")}</p>;

  // In place only: the daemon refuses a copy beside the app for now (an app is installed under its package's name).
  const restore = (backup: BackupView): void => {
    const app = backup.app ? `${backup.app.repo}/${backup.app.name}` : backup.subject;
    if (!window.confirm(t("backups.restoreConfirm", { app, when: formatTime(backup.createdAt) }))) {
      return;
    }
    setDone(undefined);
    void act(async () => {
      setDone(await client.restoreBackup({ app, target, at: backup.id }));
    });
  };

  const backups = [...list.data].sort((a, b) => b.createdAt - a.createdAt);
  return (
    <>
      <div className="table-wrap">
        <table className="table compact" aria-label={t("backups.targetBackups", { name: target })}>
          <thead>
            <tr>
              <th>{t("backups.subjectCol")}</th>
              <th>{t("backups.when")}</th>
              <th>{t("backups.version")}</th>
              <th>{t("backups.size")}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {backups.map((backup) => (
              <tr key={`${backup.subject} ${backup.id}`}>
                <td className="break">{backup.subject}</td>
                <td className="nowrap">{formatTime(backup.createdAt)}</td>
                <td>{backup.app?.version ?? "—"}</td>
                <td className="nowrap">
                  {backup.bytes === null ? "–" : formatBytes(backup.bytes)} (
                  {backup.incremental ? t("backups.incremental") : t("backups.full")})
                </td>
                <td className="toolbar">
                  {backup.app !== null && (
                    <button
                      type="button"
                      className="small"
                      disabled={busy}
                      onClick={() => {
                        restore(backup);
                      }}
                    >
                      {t("backups.restoreInPlace")}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {busy && <progress aria-label={t("points.working")} />}
      {done && (
        <p role="status">{t("backups.restored", { app: done.app, version: done.version })}</p>
      )}
      {problem && <ErrorBox problem={problem} />}
    </>
  );
}
