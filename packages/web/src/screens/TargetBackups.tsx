import { useState } from "react";
import type { BackupView, RestoreBackupResult, RestoreBoxResult } from "@townos/client";
import { client, useAction, useLoad } from "../api.js";
import { BOX, boxRestoreParts, subjectWords } from "../backups.js";
import { ErrorBox, Spinner } from "../components.js";
import { formatBytes, formatTime, t } from "../messages.js";

/**
 * A target's backups, read when opened, newest first, each restorable in
 * place (what it replaces kept first): an app's, or the whole box's.
 */
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
  const [boxDone, setBoxDone] = useState<RestoreBoxResult>();
  const [restoringBox, setRestoringBox] = useState(false);
  const { problem, busy, act } = useAction(list.reload);
  if (!list.data) {
    return list.error ? <ErrorBox problem={list.error} onRetry={list.reload} /> : <Spinner />;
  }
  if (list.data.length === 0) return <p className="muted">{t("backups.noBackups")}</p>;

  // In place only: the daemon refuses a copy beside the app for now (an app is installed under its package's name).
  const restore = (backup: BackupView): void => {
    if (backup.subject === BOX) {
      restoreBox(backup);
      return;
    }
    const app = backup.app ? `${backup.app.repo}/${backup.app.name}` : backup.subject;
    if (!window.confirm(t("backups.restoreConfirm", { app, when: formatTime(backup.createdAt) }))) {
      return;
    }
    setDone(undefined);
    setBoxDone(undefined);
    void act(async () => {
      setDone(await client.restoreBackup({ app, target, at: backup.id }));
    });
  };

  const restoreBox = (backup: BackupView): void => {
    if (!window.confirm(t("backups.restoreBoxConfirm", { when: formatTime(backup.createdAt) }))) {
      return;
    }
    setDone(undefined);
    setBoxDone(undefined);
    setRestoringBox(true);
    void act(async () => {
      try {
        setBoxDone(await client.restoreBox({ target, at: backup.id }));
      } finally {
        setRestoringBox(false);
      }
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
                <td className="break">
                  {subjectWords(backup.subject)}
                  {backup.subject === BOX && (
                    <span className="muted">
                      {" "}
                      ({t("backups.volumeCount", { count: backup.volumes.length })})
                    </span>
                  )}
                </td>
                <td className="nowrap">{formatTime(backup.createdAt)}</td>
                <td>{backup.app?.version ?? "—"}</td>
                <td className="nowrap">
                  {backup.bytes === null ? "–" : formatBytes(backup.bytes)} (
                  {backup.incremental ? t("backups.incremental") : t("backups.full")})
                </td>
                <td className="toolbar">
                  {(backup.app !== null || backup.subject === BOX) && (
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
      {restoringBox && <p className="muted">{t("backups.restoringBox")}</p>}
      {done && (
        <p role="status">{t("backups.restored", { app: done.app, version: done.version })}</p>
      )}
      {boxDone && <BoxRestoreResult result={boxDone} />}
      {problem && <ErrorBox problem={problem} />}
    </>
  );
}

/** What a whole-box restore did, part by part, failures marked and said first. */
function BoxRestoreResult({ result }: { result: RestoreBoxResult }) {
  const parts = boxRestoreParts(result);
  const failed = parts.filter((part) => part.failed).length;
  const when = formatTime(result.backup.createdAt);
  return (
    <>
      {failed === 0 ? (
        <p role="status">{t("backups.boxRestored", { when })}</p>
      ) : (
        <p className="field-error" role="alert">
          {t("backups.boxPartsFailed", { count: failed, when })}
        </p>
      )}
      <div className="table-wrap">
        <table className="table compact" aria-label={t("backups.wholeBox")}>
          <thead>
            <tr>
              <th>{t("backups.box.partCol")}</th>
              <th>{t("backups.box.nameCol")}</th>
              <th>{t("backups.box.resultCol")}</th>
            </tr>
          </thead>
          <tbody>
            {parts.map((part) => (
              <tr key={`${part.part} ${part.name}`} className={part.failed ? "danger" : ""}>
                <td>{t(`backups.box.part.${part.part}`)}</td>
                <td className="break">{part.name}</td>
                <td className="break">
                  {part.failed && (
                    <span className="badge badge-failed">{t("backups.box.failed")}</span>
                  )}{" "}
                  {part.words}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
