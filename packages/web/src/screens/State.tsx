/**
 * State repository (administrators): the git repository the box follows, the
 * commit it is on, the step of a sync under way (read every 2 s while one
 * runs), the last sync's error, what the repository manages and the commits
 * seen; "Sync now", the webhook URL, setting the repository and stopping.
 */
import { useEffect, useState, type SyntheticEvent } from "react";
import type { StateStatus } from "@townos/client";
import { client, useAction, useLoad } from "../api.js";
import { ErrorBox, HookUrl, Modal, Section, Spinner, TextField } from "../components.js";
import { formatTime, t, type MessageKey } from "../messages.js";
import { agoText } from "../backups.js";
import {
  applyResult,
  intervalText,
  managedGroups,
  shortCommit,
  stateBody,
  stateForm,
  type StateForm,
} from "../state.js";

/** How often the screen is read while a sync runs, and otherwise. */
const FAST_MS = 2000;
const SLOW_MS = 15_000;

export function State() {
  const [running, setRunning] = useState(false);
  const [editing, setEditing] = useState(false);
  const status = useLoad(() => client.stateStatus(), "state", running ? FAST_MS : SLOW_MS);
  const { problem, busy, act } = useAction(status.reload);
  const data = status.data;
  useEffect(() => {
    setRunning(data?.step !== null && data?.step !== undefined);
  }, [data]);
  const sync = (): void => {
    setRunning(true);
    void act(() => client.syncState());
  };
  const stop = (url: string): void => {
    if (window.confirm(t("state.stopConfirm", { url }))) void act(() => client.unsetState());
  };
  return (
    <>
      <div className="page-header">
        <h1>{t("state.title")}</h1>
        {data?.configured === true && (
          <div className="toolbar">
            <button type="button" className="primary" disabled={busy} onClick={sync}>
              {busy ? t("state.syncing") : t("state.syncNow")}
            </button>
            <button
              type="button"
              disabled={busy}
              onClick={() => {
                setEditing(true);
              }}
            >
              {t("state.change")}
            </button>
            <button
              type="button"
              className="danger"
              disabled={busy}
              onClick={() => {
                stop(data.url ?? "");
              }}
            >
              {t("state.stop")}
            </button>
          </div>
        )}
      </div>
      <p className="muted">{t("state.intro")}</p>
      {problem && <ErrorBox problem={problem} />}
      {status.error && <ErrorBox problem={status.error} onRetry={status.reload} />}
      {!data && !status.error && <Spinner />}
      {data?.configured === false && (
        <div className="card empty">
          <p>{t("state.notConfigured")}</p>
          <button
            type="button"
            className="primary"
            onClick={() => {
              setEditing(true);
            }}
          >
            {t("state.setup")}
          </button>
        </div>
      )}
      {data?.configured === true && (
        <>
          <Source status={data} />
          <Managed status={data} />
          <History status={data} />
        </>
      )}
      {editing && (
        <SetRepository
          status={data}
          saved={status.reload}
          onClose={() => {
            setEditing(false);
          }}
        />
      )}
    </>
  );
}

/** Where the box follows from, where it is, and how the last sync went. */
function Source({ status }: { status: StateStatus }) {
  const now = Date.now();
  const rows: [MessageKey, string][] = [
    ["state.repository", status.url ?? ""],
    ["state.branch", status.branch ?? t("state.defaultBranch")],
    ["state.interval", status.intervalSeconds === null ? "" : intervalText(status.intervalSeconds)],
    [
      "state.commit",
      status.commit === null
        ? t("state.noCommit")
        : t("state.commitAt", {
            commit: shortCommit(status.commit),
            when: status.appliedAt === null ? "" : agoText(status.appliedAt, now),
          }),
    ],
    [
      "state.lastSync",
      status.lastSyncAt === null ? t("state.never") : agoText(status.lastSyncAt, now),
    ],
  ];
  return (
    <Section title={t("state.repository")}>
      {status.error !== null && (
        <div className="error-box" role="alert">
          <strong>{t("state.lastError")}</strong>
          <p className="break">{status.error}</p>
        </div>
      )}
      {status.step !== null && (
        <p role="status">
          <progress aria-label={t("state.syncing")} /> {t("state.step")}: {status.step}
        </p>
      )}
      <dl className="notes">
        {rows.map(([label, value]) => (
          <div key={label}>
            <dt>{t(label)}</dt>
            <dd className="break">{value}</dd>
          </div>
        ))}
      </dl>
      <HookUrl
        load={() => client.stateHook()}
        show={t("state.webhookShow")}
        hint={t("state.webhookHint")}
      />
    </Section>
  );
}

function Managed({ status }: { status: StateStatus }) {
  const groups = managedGroups(status.managed);
  return (
    <Section title={t("state.managed")}>
      {groups.length === 0 && <p className="muted">{t("state.noManaged")}</p>}
      <dl className="notes">
        {groups.map((group) => (
          <div key={group.kind}>
            <dt>{group.title}</dt>
            <dd className="break">{group.names.join(", ")}</dd>
          </div>
        ))}
      </dl>
    </Section>
  );
}

function History({ status }: { status: StateStatus }) {
  const now = Date.now();
  return (
    <Section title={t("state.history")}>
      {status.history.length === 0 ? (
        <p className="muted">{t("state.noHistory")}</p>
      ) : (
        <div className="table-wrap">
          <table className="table" aria-label={t("state.history")}>
            <thead>
              <tr>
                <th>{t("state.commitCol")}</th>
                <th>{t("state.authorCol")}</th>
                <th>{t("state.messageCol")}</th>
                <th>{t("state.whenCol")}</th>
                <th>{t("state.resultCol")}</th>
              </tr>
            </thead>
            <tbody>
              {status.history.map((apply) => {
                const result = applyResult(apply);
                return (
                  <tr
                    key={`${apply.commit}:${String(apply.at)}`}
                    className={apply.result === "applied" ? "" : "danger"}
                  >
                    <td>
                      <code title={apply.commit}>{shortCommit(apply.commit)}</code>
                    </td>
                    <td className="break">{apply.author ?? "—"}</td>
                    <td className="break">{apply.message ?? "—"}</td>
                    <td className="nowrap" title={formatTime(apply.at)}>
                      {agoText(apply.at, now)}
                    </td>
                    <td>
                      <span className={`badge badge-${result.badge}`}>{result.label}</span>{" "}
                      <span className="break">{result.detail}</span>
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

/** Sets (or changes) the repository followed; the daemon syncs at once, so this waits for it. */
function SetRepository({
  status,
  saved,
  onClose,
}: {
  status: StateStatus | undefined;
  saved: () => void;
  onClose: () => void;
}) {
  const [form, setForm] = useState<StateForm>(() => stateForm(status));
  const [missing, setMissing] = useState<MessageKey>();
  const { problem, busy, act } = useAction(saved);
  const field =
    (key: keyof StateForm) =>
    (value: string): void => {
      setForm({ ...form, [key]: value });
    };
  const submit = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    const body = stateBody(form);
    setMissing("missing" in body ? body.missing : undefined);
    if ("missing" in body) return;
    if (await act(() => client.setState(body))) onClose();
  };
  return (
    <Modal title={t("state.formTitle")} onClose={onClose} locked={busy}>
      <form className="form" noValidate onSubmit={(event) => void submit(event)}>
        <TextField
          label={t("state.url")}
          value={form.url}
          onChange={field("url")}
          placeholder="https://git.example.com/me/town-state.git"
          autoComplete="off"
          required
        />
        <TextField
          label={t("state.branchField")}
          value={form.branch}
          onChange={field("branch")}
          placeholder="main"
          autoComplete="off"
        />
        <TextField
          label={t("state.username")}
          value={form.username}
          onChange={field("username")}
          autoComplete="off"
        />
        <TextField
          label={t("state.password")}
          type="password"
          value={form.password}
          onChange={field("password")}
          autoComplete="new-password"
        />
        <p className="muted">{t("state.credentialsHint")}</p>
        <TextField
          label={t("state.intervalField")}
          value={form.interval}
          onChange={field("interval")}
          placeholder="5m"
          autoComplete="off"
        />
        {missing && (
          <p className="field-error" role="alert">
            {t(missing)}
          </p>
        )}
        {problem && <ErrorBox problem={problem} />}
        {busy && <progress aria-label={t("state.syncing")} />}
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            {t("common.cancel")}
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {t("state.follow")}
          </button>
        </div>
      </form>
    </Modal>
  );
}
