/**
 * Backups (administrators): targets off the box with their last check,
 * schedules with retention and their last and next run, the recent runs with
 * the step under way (read every 2 s while one runs), "Back up now", and each
 * target's backups, each restorable in place: an app's, or the whole box's.
 */
import { useEffect, useState } from "react";
import type { BackupOverview, BackupPolicyView, BackupTargetView } from "@townos/client";
import { client, useAction, useLoad } from "../api.js";
import { ErrorBox, Section, Spinner } from "../components.js";
import { formatTime, t } from "../messages.js";
import { agoText, keepWords, runStatus, subjectWords } from "../backups.js";
import { AddTarget, PolicyDialog } from "./BackupDialogs.js";
import { TargetBackups } from "./TargetBackups.js";

/** How often the screen is read while a run is under way, and otherwise. */
const FAST_MS = 2000;
const SLOW_MS = 15_000;

export function Backups() {
  const [running, setRunning] = useState(false);
  const overview = useLoad(() => client.backups(), "backups", running ? FAST_MS : SLOW_MS);
  const { problem, busy, act } = useAction(overview.reload);
  useEffect(() => {
    setRunning(overview.data?.runs.some((run) => run.state === "running") ?? false);
  }, [overview.data]);
  const data = overview.data;
  return (
    <>
      <div className="page-header">
        <h1>{t("backups.title")}</h1>
        <button
          type="button"
          className="primary"
          disabled={busy || !data || data.policies.length === 0}
          onClick={() => void act(() => client.runBackup({}))}
        >
          {t("backups.runNow")}
        </button>
      </div>
      <p className="muted">{t("backups.intro")}</p>
      {problem && <ErrorBox problem={problem} />}
      {overview.error && <ErrorBox problem={overview.error} onRetry={overview.reload} />}
      {!data && !overview.error && <Spinner />}
      {data && (
        <>
          <Targets targets={data.targets} changed={overview.reload} />
          <Policies overview={data} changed={overview.reload} />
          <Runs overview={data} />
        </>
      )}
    </>
  );
}

function Targets({ targets, changed }: { targets: BackupTargetView[]; changed: () => void }) {
  const [adding, setAdding] = useState(false);
  const { problem, busy, act } = useAction(changed);
  const remove = (name: string): void => {
    if (window.confirm(t("backups.removeTargetConfirm", { name }))) {
      void act(() => client.removeBackupTarget(name));
    }
  };
  return (
    <Section
      title={t("backups.targets")}
      actions={
        <button
          type="button"
          onClick={() => {
            setAdding(true);
          }}
        >
          {t("backups.addTarget")}
        </button>
      }
    >
      {problem && <ErrorBox problem={problem} />}
      {targets.length === 0 && <p className="muted">{t("backups.noTargets")}</p>}
      <ul className="stack target-list">
        {targets.map((target) => (
          <li key={target.name}>
            <article aria-label={target.name}>
              <div className="card-header">
                <h3 className="break">{target.name}</h3>
                <TargetStatus target={target} />
              </div>
              <p className="muted break">
                {t(`backups.kindShort.${target.kind}`)} · {target.location}
              </p>
              {target.status?.ok === false && (
                <p className="field-error break">{target.status.error}</p>
              )}
              <TargetBackups target={target.name} />
              <button
                type="button"
                className="small danger"
                disabled={busy}
                aria-label={t("backups.removeTarget", { name: target.name })}
                onClick={() => {
                  remove(target.name);
                }}
              >
                {t("common.remove")}
              </button>
            </article>
          </li>
        ))}
      </ul>
      {adding && (
        <AddTarget
          added={changed}
          onClose={() => {
            setAdding(false);
          }}
        />
      )}
    </Section>
  );
}

function TargetStatus({ target }: { target: BackupTargetView }) {
  if (target.status === null) return <span className="badge">{t("backups.status.unchecked")}</span>;
  return (
    <span
      className={`badge ${target.status.ok ? "badge-running" : "badge-failed"}`}
      title={formatTime(target.status.at)}
    >
      {target.status.ok ? t("backups.status.ok") : t("backups.status.failed")}
    </span>
  );
}

function Policies({ overview, changed }: { overview: BackupOverview; changed: () => void }) {
  /** The policy being edited; null for a new one. */
  const [editing, setEditing] = useState<BackupPolicyView | null>();
  const { problem, busy, act } = useAction(changed);
  const now = Date.now();
  const remove = (subject: string): void => {
    if (window.confirm(t("backups.removePolicyConfirm", { subject }))) {
      void act(() => client.removeBackupPolicy(subject));
    }
  };
  return (
    <Section
      title={t("backups.policies")}
      actions={
        <button
          type="button"
          onClick={() => {
            setEditing(null);
          }}
        >
          {t("backups.addPolicy")}
        </button>
      }
    >
      {problem && <ErrorBox problem={problem} />}
      {overview.policies.length === 0 ? (
        <p className="muted">{t("backups.noPolicies")}</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th>{t("backups.subjectCol")}</th>
                <th>{t("backups.schedule")}</th>
                <th>{t("backups.keep")}</th>
                <th>{t("backups.targetsCol")}</th>
                <th>{t("backups.lastRun")}</th>
                <th>{t("backups.nextRun")}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {overview.policies.map((policy) => (
                <tr key={policy.subject} className={policy.lastRun?.ok === false ? "danger" : ""}>
                  <td className="break">{subjectWords(policy.subject)}</td>
                  <td>
                    <code>{policy.schedule}</code>
                  </td>
                  <td>{keepWords(policy.keep)}</td>
                  <td>{policy.targets.length === 0 ? "—" : policy.targets.join(", ")}</td>
                  <td>
                    {policy.lastRun === null ? (
                      t("backups.never")
                    ) : (
                      <>
                        <span
                          className={`badge ${policy.lastRun.ok ? "badge-running" : "badge-failed"}`}
                        >
                          {policy.lastRun.ok ? t("backups.run.ok") : t("backups.run.failed")}
                        </span>{" "}
                        {agoText(policy.lastRun.at, now)}
                        {policy.lastRun.error !== null && (
                          <span className="break"> — {policy.lastRun.error}</span>
                        )}
                      </>
                    )}
                  </td>
                  <td
                    className="nowrap"
                    title={policy.nextRunAt === null ? "" : formatTime(policy.nextRunAt)}
                  >
                    {policy.nextRunAt === null
                      ? t("backups.never")
                      : agoText(policy.nextRunAt, now)}
                  </td>
                  <td className="toolbar">
                    <button
                      type="button"
                      className="small"
                      disabled={busy}
                      aria-label={t("backups.runOne", { subject: policy.subject })}
                      onClick={() => void act(() => client.runBackup({ subject: policy.subject }))}
                    >
                      {t("backups.runNow")}
                    </button>
                    <button
                      type="button"
                      className="small"
                      aria-label={t("backups.edit", { subject: policy.subject })}
                      onClick={() => {
                        setEditing(policy);
                      }}
                    >
                      {t("backups.editButton")}
                    </button>
                    <button
                      type="button"
                      className="small danger"
                      disabled={busy}
                      aria-label={t("backups.removePolicy", { subject: policy.subject })}
                      onClick={() => {
                        remove(policy.subject);
                      }}
                    >
                      {t("common.remove")}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {editing !== undefined && (
        <PolicyDialog
          policy={editing}
          targets={overview.targets.map((target) => target.name)}
          saved={changed}
          onClose={() => {
            setEditing(undefined);
          }}
        />
      )}
    </Section>
  );
}

function Runs({ overview }: { overview: BackupOverview }) {
  const now = Date.now();
  return (
    <Section title={t("backups.runs")}>
      {overview.runs.length === 0 ? (
        <p className="muted">{t("backups.noRuns")}</p>
      ) : (
        <div className="table-wrap">
          <table className="table" aria-label={t("backups.runs")}>
            <thead>
              <tr>
                <th>{t("backups.subjectCol")}</th>
                <th>{t("backups.target")}</th>
                <th>{t("backups.started.col")}</th>
                <th>{t("backups.status")}</th>
              </tr>
            </thead>
            <tbody>
              {overview.runs.map((run) => {
                const status = runStatus(run);
                return (
                  <tr key={run.id} className={run.state === "failed" ? "danger" : ""}>
                    <td className="break">{subjectWords(run.subject)}</td>
                    <td>{run.target ?? "—"}</td>
                    <td className="nowrap" title={formatTime(run.startedAt)}>
                      {agoText(run.startedAt, now)}
                    </td>
                    <td>
                      <span className={`badge badge-${status.badge}`}>{status.label}</span>
                      {status.detail !== null && (
                        <span
                          className="break"
                          role={run.state === "running" ? "status" : undefined}
                        >
                          {" "}
                          {status.detail}
                        </span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </Section>
  );
}
