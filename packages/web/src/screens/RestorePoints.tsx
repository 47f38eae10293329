import { useState } from "react";
import type { RestorePointView, RollbackResult } from "@townos/client";
import { client, useAction, useLoad } from "../api.js";
import { ErrorBox, Modal, Section, Spinner } from "../components.js";
import { formatTime, t } from "../messages.js";
import { agoText, restorePointSizeText, rollbackPoint } from "../backups.js";

/**
 * An app's restore points as a timeline, newest first: take one now, roll
 * back (to the newest taken before an upgrade) or restore to any of them,
 * each after a confirmation saying the current state is kept first.
 */
export function RestorePoints({
  repo,
  name,
  changed,
}: {
  repo: string;
  name: string;
  /** The app changed (a rollback): its page reads it again. */
  changed: () => void;
}) {
  const points = useLoad(() => client.restorePoints(repo, name), `points:${repo}/${name}`);
  const [restoring, setRestoring] = useState<RestorePointView>();
  const [done, setDone] = useState<RollbackResult>();
  const { problem, busy, act } = useAction(points.reload);
  const list = [...(points.data ?? [])].sort((a, b) => b.createdAt - a.createdAt);
  const undo = rollbackPoint(list);
  const now = Date.now();
  const remove = (id: string): void => {
    if (window.confirm(t("points.removeConfirm", { id }))) {
      void act(() => client.removeRestorePoint(repo, name, id));
    }
  };
  return (
    <Section title={t("points.title")}>
      <p className="muted">{t("points.intro")}</p>
      <div className="toolbar">
        <button
          type="button"
          disabled={busy}
          onClick={() => {
            setDone(undefined);
            void act(() => client.takeRestorePoint(repo, name));
          }}
        >
          {t("points.take")}
        </button>
        <button
          type="button"
          disabled={busy || !undo}
          onClick={() => {
            setRestoring(undo);
          }}
        >
          {undo ? t("points.rollback", { version: undo.version ?? "?" }) : t("points.noRollback")}
        </button>
      </div>
      {busy && !restoring && <p role="status">{t("points.taking")}</p>}
      {done && (
        <p role="status">{t("points.done", { name, version: done.version, kept: done.kept.id })}</p>
      )}
      {problem && !restoring && <ErrorBox problem={problem} />}
      {points.error && <ErrorBox problem={points.error} onRetry={points.reload} />}
      {!points.data && !points.error && <Spinner />}
      {points.data?.length === 0 && <p className="muted">{t("points.empty")}</p>}
      <ol className="timeline" aria-label={t("points.title")}>
        {list.map((point) => {
          const gone = point.volumes.filter((v) => !v.present).length;
          return (
            <li key={point.id} aria-label={point.id}>
              <div>
                <strong title={formatTime(point.createdAt)}>{agoText(point.createdAt, now)}</strong>{" "}
                <span className="muted">{formatTime(point.createdAt)}</span>
              </div>
              <div>
                <span className="badge">{t(`points.reason.${point.reason}`)}</span>{" "}
                {point.version !== null && t("app.version", { version: point.version })} ·{" "}
                {restorePointSizeText(point)}
                {gone > 0 && (
                  <span className="field-error"> · {t("points.gone", { count: gone })}</span>
                )}
              </div>
              <div className="toolbar">
                <button
                  type="button"
                  className="small"
                  disabled={busy || gone === point.volumes.length}
                  onClick={() => {
                    setRestoring(point);
                  }}
                >
                  {t("points.restoreTo")}
                </button>
                <button
                  type="button"
                  className="small danger"
                  disabled={busy}
                  onClick={() => {
                    remove(point.id);
                  }}
                >
                  {t("points.remove")}
                </button>
              </div>
            </li>
          );
        })}
      </ol>
      {restoring && (
        <Modal
          title={t("points.confirmTitle", { name })}
          onClose={() => {
            setRestoring(undefined);
          }}
          locked={busy}
        >
          <div className="form">
            <p>
              {t("points.confirm", {
                name,
                version: restoring.version ?? "?",
                when: formatTime(restoring.createdAt),
              })}
            </p>
            {busy && (
              <>
                <progress aria-label={t("points.working")} />
                <p role="status">{t("points.working")}</p>
              </>
            )}
            {problem && <ErrorBox problem={problem} />}
            <div className="actions">
              <button
                type="button"
                disabled={busy}
                onClick={() => {
                  setRestoring(undefined);
                }}
              >
                {t("common.cancel")}
              </button>
              <button
                type="button"
                className="danger"
                disabled={busy}
                onClick={() =>
                  void act(async () => {
                    setDone(await client.rollback(repo, name, restoring.id));
                    setRestoring(undefined);
                    changed();
                  })
                }
              >
                {t("points.confirmSubmit")}
              </button>
            </div>
          </div>
        </Modal>
      )}
    </Section>
  );
}
