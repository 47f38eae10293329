import { useState } from "react";
import type { AppProgress, AppView, Problem } from "@townos/client";
import { client, problemOf, useAction, useLoad } from "../api.js";
import {
  appStatus,
  ErrorBox,
  Modal,
  SecretValue,
  Section,
  Spinner,
  StatusBadge,
} from "../components.js";
import { formatBytes, t, type MessageKey } from "../messages.js";
import { navigate } from "../router.js";
import { useSession } from "../session.js";
import { ProgressList } from "./InstallDialog.js";
import { Logs } from "./Logs.js";
import { RestorePoints } from "./RestorePoints.js";
import { vmFactRows } from "../vm.js";
import { ManagedBadge, useManaged } from "../managed.js";

const REFRESH_MS = 5000;
const EXPOSURES = ["local", "lan", "internet"] as const;
type Exposure = (typeof EXPOSURES)[number];
type Action = "start" | "stop" | "restart" | "enable" | "disable" | "upgrade";

/** Notes that carry a password or key by their label (besides those the daemon marks secret): shown masked, with copy. */
const SECRET_LABEL = /pass|secret|token|key/i;

export function AppPage({ repo, name }: { repo: string; name: string }) {
  const session = useSession();
  const app = useLoad(() => client.app(repo, name), `app:${repo}/${name}`, REFRESH_MS);
  const upgrades = useLoad(() => client.upgrades({ limit: 500 }), "upgrades");
  const isManaged = useManaged();
  const [progress, setProgress] = useState<AppProgress[]>([]);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const [uninstalling, setUninstalling] = useState(false);

  if (!app.data) {
    return app.error ? <ErrorBox problem={app.error} onRetry={app.reload} /> : <Spinner />;
  }
  const view = app.data;
  const status = appStatus(view);
  /** Declared in the state repository: what it declares is changed there (the daemon refuses it here). */
  const managed = isManaged("app", `${repo}/${name}`);
  const offer = upgrades.data?.items.find(
    (o) => o.repo === repo && o.name === name && !o.dismissed,
  );

  const run = async (
    change: Parameters<typeof client.changeApp>[0],
    after?: () => void,
  ): Promise<void> => {
    setBusy(true);
    setProblem(undefined);
    setProgress([]);
    try {
      await client.changeApp(change, (line) => {
        setProgress((lines) => [...lines, line]);
      });
      after?.();
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
      app.reload();
    }
  };
  const act = (action: Action): Promise<void> =>
    action === "upgrade"
      ? run(
          {
            action,
            repo,
            name,
            ...(offer && offer.offerRepo === repo ? { version: offer.offerVersion } : {}),
          },
          upgrades.reload,
        )
      : run({ action, repo, name });

  const actions: Action[] = [
    ...(view.running ? (["stop", "restart"] as const) : (["start"] as const)),
    view.enabled ? "disable" : "enable",
  ];

  return (
    <>
      <div className="page-header">
        <h1>{view.name}</h1>
        <StatusBadge status={status} />
        {!view.enabled && <span className="badge">{t("status.disabled")}</span>}
        {managed && <ManagedBadge />}
      </div>
      <p className="muted">
        {view.repo} · {t("app.version", { version: view.version })} ·{" "}
        {view.enabled ? t("app.enabledHint") : t("app.disabledHint")}
      </p>
      {managed && <p className="muted">{t("state.managedApp")}</p>}
      {app.error && <ErrorBox problem={app.error} onRetry={app.reload} />}
      {view.lastError !== null && (
        <div className="error-box" role="alert">
          <strong>{t("app.lastError")}</strong>
          <p>{view.lastError}</p>
        </div>
      )}
      {session.isAdmin && (
        <Section title={t("app.actions")}>
          <div className="toolbar">
            {actions.map((action) => (
              <button key={action} type="button" disabled={busy} onClick={() => void act(action)}>
                {t(`app.${action}` as MessageKey)}
              </button>
            ))}
            {offer && (
              <button
                type="button"
                className="primary"
                disabled={busy || managed}
                onClick={() => void act("upgrade")}
              >
                {t("app.upgrade", { version: offer.offerVersion })}
              </button>
            )}
            <button
              type="button"
              className="danger"
              disabled={busy || managed}
              onClick={() => {
                setUninstalling(true);
              }}
            >
              {t("app.uninstall")}
            </button>
          </div>
          {problem && <ErrorBox problem={problem} />}
          {progress.length > 0 && <ProgressList lines={progress} />}
        </Section>
      )}
      <Section title={t("app.urls")}>
        <AppLinks app={view} />
        {view.ports.length > 0 && (
          <table className="table compact">
            <caption className="visually-hidden">{t("app.ports")}</caption>
            <tbody>
              {view.ports.map((port) => (
                <tr key={`${port.instance}:${port.host}`}>
                  <td>{t("app.port", { host: port.host, container: port.container })}</td>
                  <td>
                    <label>
                      <span className="visually-hidden">
                        {t("app.exposure", { host: port.host })}
                      </span>
                      <select
                        value={port.exposure}
                        disabled={!session.isAdmin || busy || managed}
                        onChange={(e) =>
                          void run({
                            action: "expose",
                            repo,
                            name,
                            port: port.host,
                            exposure: e.target.value as Exposure,
                          })
                        }
                      >
                        {EXPOSURES.map((level) => (
                          <option key={level} value={level}>
                            {t(`app.exposure.${level}`)}
                          </option>
                        ))}
                      </select>
                    </label>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      {view.vm && (
        <Section title={t("app.vm")}>
          <dl className="notes">
            {vmFactRows(view.vm).map(([label, value]) => (
              <div key={label}>
                <dt>{label}</dt>
                <dd>{value}</dd>
              </div>
            ))}
          </dl>
        </Section>
      )}
      {view.notes.length > 0 && (
        <Section title={t("app.notes")}>
          <NoteList notes={view.notes} />
        </Section>
      )}
      {session.isAdmin && <RestorePoints repo={repo} name={name} changed={app.reload} />}
      <Logs repo={repo} name={name} />
      <div className="columns">
        <Section title={t("app.containers")}>
          <ul className="tree">
            {view.containers.map((container) => (
              <li key={container.name}>
                <code>{container.name}</code>{" "}
                <span
                  className={`badge badge-${container.state === "running" ? "running" : "stopped"}`}
                >
                  {container.state}
                </span>
              </li>
            ))}
          </ul>
        </Section>
        <Section title={t("app.volumes")}>
          {view.volumes.length === 0 ? (
            <p>{t("common.none")}</p>
          ) : (
            <ul>
              {view.volumes.map((volume) => (
                <li key={`${volume.instance}/${volume.name}`}>
                  {t("app.volume", { name: volume.name, mountpoint: volume.mountpoint })}
                  {volume.quota !== null &&
                    ` (${t("app.quota", { quota: formatBytes(volume.quota) })})`}
                </li>
              ))}
            </ul>
          )}
        </Section>
      </div>
      {uninstalling && (
        <UninstallDialog
          app={view}
          onClose={() => {
            setUninstalling(false);
          }}
        />
      )}
    </>
  );
}

/** Where to open an app: its HTTPS names, then its published ports on this box. */
export function AppLinks({ app }: { app: AppView }) {
  if (app.urls.length === 0 && app.ports.length === 0) return null;
  return (
    <ul className="links">
      {app.urls.map((url) => (
        <li key={url}>
          <a href={url} target="_blank" rel="noreferrer">
            {url}
          </a>
        </li>
      ))}
      {app.ports.map((port) => (
        <li key={`${port.instance}:${port.host}`}>
          <a
            href={`http://${window.location.hostname}:${port.host}/`}
            target="_blank"
            rel="noreferrer"
          >
            {t("app.portLink", { host: port.host })}
          </a>
        </li>
      ))}
    </ul>
  );
}

export function NoteList({ notes }: { notes: AppView["notes"] }) {
  if (notes.length === 0) return null;
  return (
    <dl className="notes">
      {notes.map((note) => (
        <div key={note.label}>
          <dt>{note.label}</dt>
          <dd>
            <NoteValue note={note} />
          </dd>
        </div>
      ))}
    </dl>
  );
}

function NoteValue({ note }: { note: AppView["notes"][number] }) {
  // The daemon empties secret notes for anyone but administrators.
  if (note.secret && note.value === "") return <span className="muted">{t("app.noteHidden")}</span>;
  if (note.secret || SECRET_LABEL.test(note.label)) return <SecretValue value={note.value} />;
  const href =
    note.type === "url" || /^https?:\/\//.test(note.value)
      ? note.value
      : note.type === "email"
        ? `mailto:${note.value}`
        : note.type === "phone"
          ? `tel:${note.value}`
          : undefined;
  return href === undefined ? (
    <span>{note.value}</span>
  ) : (
    <a href={href} target="_blank" rel="noreferrer">
      {note.value}
    </a>
  );
}

function UninstallDialog({ app, onClose }: { app: AppView; onClose: () => void }) {
  const [purge, setPurge] = useState(false);
  const { problem, busy, act } = useAction();
  const confirm = async (): Promise<void> => {
    await act(async () => {
      await client.uninstallApp(app.repo, app.name, { purge });
      navigate("/");
    });
  };
  return (
    <Modal title={t("uninstall.title", { name: app.name })} onClose={onClose} locked={busy}>
      <div className="form">
        <p>{t("uninstall.warning")}</p>
        <fieldset>
          <legend className="visually-hidden">{t("app.volumes")}</legend>
          <label className="choice">
            <input
              type="radio"
              name="data"
              checked={!purge}
              onChange={() => {
                setPurge(false);
              }}
            />
            {t("uninstall.keep")}
          </label>
          <label className="choice">
            <input
              type="radio"
              name="data"
              checked={purge}
              onChange={() => {
                setPurge(true);
              }}
            />
            {t("uninstall.delete")}
          </label>
        </fieldset>
        {purge && (
          <p className="field-error" role="alert">
            {t("uninstall.deleteWarning")}
          </p>
        )}
        {problem && <ErrorBox problem={problem} />}
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            {t("common.cancel")}
          </button>
          <button type="button" className="danger" disabled={busy} onClick={() => void confirm()}>
            {purge ? t("uninstall.confirmDelete") : t("uninstall.confirm")}
          </button>
        </div>
      </div>
    </Modal>
  );
}
