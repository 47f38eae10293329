import { useState } from "react";
import type { BackupView, RestoreBackupResult } from "@townos/client";
import { client, useAction, useLoad } from "../api.js";
import { ErrorBox, Spinner } from "../components.js";
import { formatBytes, formatTime, t } from "../messages.js";

/** A target's backups, read when opened, newest first, each restorable in place or as a new app. */
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

  const restore = (backup: BackupView, asNew: boolean): void => {
    const app = backup.app ? `${backup.app.repo}/${backup.app.name}` : backup.subject;
    const when = formatTime(backup.createdAt);
    const question = asNew
      ? t("backups.restoreNewConfirm", { app, when, name: backup.app?.name ?? app })
      : t("backups.restoreConfirm", { app, when });
    if (!window.confirm(question)) return;
    setDone(undefined);
    void act(async () => {
      setDone(
        await client.restoreBackup({
          app,
          target,
          at: backup.id,
          ...(asNew ? { asNew: true } : {}),
        }),
      );
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
                    <>
                      <button
                        type="button"
                        className="small"
                        disabled={busy}
                        onClick={() => {
                          restore(backup, false);
                        }}
                      >
                        {t("backups.restoreInPlace")}
                      </button>
                      <button
                        type="button"
                        className="small"
                        disabled={busy}
                        onClick={() => {
                          restore(backup, true);
                        }}
                      >
                        {t("backups.restoreAsNew")}
                      </button>
                    </>
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
