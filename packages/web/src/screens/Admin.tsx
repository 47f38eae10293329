/**
 * The box's other pages, kept simple for now: users, audit log, settings
 * and network. Each lists what the API gives and offers its main
 * action.
 */
import { useDeferredValue, useState, type SyntheticEvent } from "react";
import type { Setting } from "@townos/client";
import { client, useAction, useLoad } from "../api.js";
import { ErrorBox, Section, Spinner, TextField } from "../components.js";
import { formatTime, t, type MessageKey } from "../messages.js";
import { useSession } from "../session.js";
import { ManagedBadge, useManaged } from "../managed.js";
import { SshKeys } from "./SshKeys.js";
import { NetworkSettings } from "./NetworkSettings.js";
import { ConsolePassword } from "./ConsolePassword.js";

export function Users() {
  const accounts = useLoad(() => client.accounts({ limit: 500 }), "accounts");
  const { problem, busy, act } = useAction(accounts.reload);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [admin, setAdmin] = useState(false);

  const create = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    const done = await act(() =>
      client.createAccount({ username, password, role: admin ? "admin" : "user" }),
    );
    if (done) {
      setUsername("");
      setPassword("");
      setAdmin(false);
    }
  };

  return (
    <>
      <div className="page-header">
        <h1>{t("users.title")}</h1>
      </div>
      {accounts.error && <ErrorBox problem={accounts.error} onRetry={accounts.reload} />}
      {problem && <ErrorBox problem={problem} />}
      {!accounts.data && !accounts.error && <Spinner />}
      {accounts.data && (
        <div className="card table-wrap">
          <table className="table">
            <tbody>
              {accounts.data.items.map((account) => (
                <tr key={account.username}>
                  <td>
                    <strong>{account.username}</strong>{" "}
                    {account.role === "admin" && <span className="badge">{t("user.admin")}</span>}{" "}
                    {account.disabled && (
                      <span className="badge badge-failed">{t("users.disabled")}</span>
                    )}
                  </td>
                  <td className="end">
                    <div className="toolbar">
                      <button
                        type="button"
                        disabled={busy}
                        onClick={() =>
                          void act(() =>
                            client.updateAccount(account.username, { disabled: !account.disabled }),
                          )
                        }
                      >
                        {account.disabled ? t("users.enable") : t("users.disable")}
                      </button>
                      <button
                        type="button"
                        disabled={busy}
                        onClick={() =>
                          void act(() =>
                            client.updateAccount(account.username, {
                              role: account.role === "admin" ? "user" : "admin",
                            }),
                          )
                        }
                      >
                        {account.role === "admin" ? t("users.demote") : t("users.promote")}
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Section title={t("users.create")}>
        <form className="form" onSubmit={(event) => void create(event)}>
          <TextField label={t("users.username")} value={username} onChange={setUsername} required />
          <TextField
            label={t("users.password")}
            value={password}
            onChange={setPassword}
            type="password"
            autoComplete="new-password"
            required
          />
          <label className="choice">
            <input
              type="checkbox"
              checked={admin}
              onChange={(e) => {
                setAdmin(e.target.checked);
              }}
            />
            {t("users.role")}
          </label>
          <div className="actions">
            <button type="submit" className="primary" disabled={busy}>
              {t("users.submit")}
            </button>
          </div>
        </form>
      </Section>
    </>
  );
}

export function Audit() {
  const [query, setQuery] = useState("");
  const [user, setUser] = useState("");
  const [outcome, setOutcome] = useState<"" | "success" | "failure">("");
  const search = useDeferredValue(query.trim());
  const who = useDeferredValue(user.trim());
  const audit = useLoad(
    () =>
      client.audit({
        limit: 200,
        ...(search === "" ? {} : { q: search }),
        ...(who === "" ? {} : { username: who }),
        ...(outcome === "" ? {} : { outcome }),
      }),
    `audit:${search}:${who}:${outcome}`,
  );
  return (
    <>
      <div className="page-header">
        <h1>{t("audit.title")}</h1>
      </div>
      <div className="toolbar filters">
        <label className="search">
          <span className="visually-hidden">{t("audit.search")}</span>
          <input
            type="search"
            placeholder={t("audit.search")}
            value={query}
            onChange={(e) => {
              setQuery(e.target.value);
            }}
          />
        </label>
        <label>
          <span className="visually-hidden">{t("audit.user")}</span>
          <input
            type="search"
            placeholder={t("audit.user")}
            value={user}
            onChange={(e) => {
              setUser(e.target.value);
            }}
          />
        </label>
        <label>
          <span className="visually-hidden">{t("audit.outcome")}</span>
          <select
            value={outcome}
            onChange={(e) => {
              setOutcome(e.target.value as "" | "success" | "failure");
            }}
          >
            <option value="">{t("audit.outcomeAll")}</option>
            <option value="success">{t("audit.outcomeSuccess")}</option>
            <option value="failure">{t("audit.outcomeFailure")}</option>
          </select>
        </label>
      </div>
      {audit.error && <ErrorBox problem={audit.error} onRetry={audit.reload} />}
      {!audit.data && !audit.error && <Spinner />}
      {audit.data?.items.length === 0 && <p className="card empty">{t("audit.empty")}</p>}
      {audit.data && audit.data.items.length > 0 && (
        <div className="card table-wrap">
          <table className="table">
            <tbody>
              {audit.data.items.map((entry) => (
                <tr key={entry.id} className={entry.outcome === "success" ? "" : "danger"}>
                  <td className="nowrap">{formatTime(entry.at)}</td>
                  <td>{entry.username ?? "—"}</td>
                  <td>
                    <code>{entry.action}</code> {entry.target}
                  </td>
                  <td>
                    {entry.outcome}
                    {entry.error !== null && <span className="muted"> {entry.error}</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

export function Settings() {
  const session = useSession();
  const settings = useLoad(() => client.settings({ limit: 500 }), "settings");
  const { problem, busy, act } = useAction(settings.reload);
  const isManaged = useManaged();
  return (
    <>
      <div className="page-header">
        <h1>{t("settings.title")}</h1>
      </div>
      {settings.error && <ErrorBox problem={settings.error} onRetry={settings.reload} />}
      {problem && <ErrorBox problem={problem} />}
      {!settings.data && !settings.error && <Spinner />}
      {settings.data?.items.length === 0 && <p className="card empty">{t("settings.empty")}</p>}
      <Sessions />
      {session.isAdmin && <SshKeys />}
      {session.isAdmin && <NetworkSettings />}
      {session.isAdmin && <ConsolePassword />}
      <h2>{t("settings.title")}</h2>
      <ul className="stack">
        {settings.data?.items.map((setting) => (
          <li key={setting.key} className="card">
            <SettingRow
              setting={setting}
              editable={session.isAdmin}
              managed={isManaged("setting", setting.key)}
              busy={busy}
              save={(value) => void act(() => client.setSetting(setting.key, value))}
            />
          </li>
        ))}
      </ul>
    </>
  );
}

/** My sessions, each of which I can end (the current one is ended by logging out). */
function Sessions() {
  const sessions = useLoad(() => client.sessions({ limit: 100 }), "sessions");
  const { problem, busy, act } = useAction(sessions.reload);
  return (
    <Section title={t("sessions.title")}>
      {sessions.error && <ErrorBox problem={sessions.error} onRetry={sessions.reload} />}
      {problem && <ErrorBox problem={problem} />}
      <ul className="stack">
        {sessions.data?.items.map((session) => (
          <li key={session.id} className="session">
            <span className="break">
              {session.userAgent === "" ? "—" : session.userAgent}{" "}
              {session.current && <span className="badge">{t("sessions.current")}</span>}
              <br />
              <span className="muted">
                {t("sessions.seen", {
                  time: formatTime(session.lastSeenAt),
                  source: session.source,
                })}
              </span>
            </span>
            {!session.current && (
              <button
                type="button"
                disabled={busy}
                onClick={() => void act(() => client.revokeSession(session.id))}
              >
                {t("sessions.revoke")}
              </button>
            )}
          </li>
        ))}
      </ul>
    </Section>
  );
}

function SettingRow({
  setting,
  editable,
  managed,
  busy,
  save,
}: {
  setting: Setting;
  editable: boolean;
  /** Declared in the state repository: the daemon refuses setting it by hand. */
  managed: boolean;
  busy: boolean;
  save: (value: string | number | boolean) => void;
}) {
  const initial = settingText(setting);
  const [value, setValue] = useState(initial);
  const id = `setting-${setting.key}`;
  return (
    <form
      className="setting"
      onSubmit={(event) => {
        event.preventDefault();
        // Sizes and durations go as typed ("10gb", "30m"): the daemon parses them.
        save(setting.type === "boolean" ? value === "true" : value);
      }}
    >
      <label htmlFor={id}>
        <strong>{setting.key}</strong>
        <span className="muted"> {setting.description}</span>
      </label>
      <span className="inline">
        {setting.type === "boolean" ? (
          <select
            id={id}
            value={value}
            disabled={!editable || managed}
            onChange={(e) => {
              setValue(e.target.value);
            }}
          >
            <option value="true">true</option>
            <option value="false">false</option>
          </select>
        ) : (
          <input
            id={id}
            value={value}
            disabled={!editable || managed}
            onChange={(e) => {
              setValue(e.target.value);
            }}
          />
        )}
        {editable && (
          <button type="submit" disabled={busy || managed || value === initial}>
            {t("common.save")}
          </button>
        )}
        {managed && <ManagedBadge />}
      </span>
    </form>
  );
}

const UNIT_STEPS: Record<string, [string, number][]> = {
  bytes: [
    ["tb", 1024 ** 4],
    ["gb", 1024 ** 3],
    ["mb", 1024 ** 2],
    ["kb", 1024],
  ],
  seconds: [
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
  ],
};

/** 10737418240 → "10gb", 3600 → "1h": what a person types, and the daemon reads back. */
function settingText(setting: Setting): string {
  const value = setting.value;
  if (typeof value !== "number") return String(value);
  for (const [unit, size] of UNIT_STEPS[setting.type] ?? []) {
    if (value > 0 && value % size === 0) return `${String(value / size)}${unit}`;
  }
  return setting.type === "seconds" ? `${String(value)}s` : String(value);
}

const CA_STEPS: MessageKey[] = [
  "network.caWindows",
  "network.caMac",
  "network.caIphone",
  "network.caAndroid",
  "network.caLinux",
];

export function Network() {
  const status = useLoad(() => client.netStatus(), "net");
  return (
    <>
      <div className="page-header">
        <h1>{t("network.title")}</h1>
      </div>
      <Section title={t("network.ca")}>
        <p>{t("network.caIntro")}</p>
        <a className="button primary" href="/tls/ca.crt" download="town-os-ca.crt">
          {t("network.caDownload")}
        </a>
        <ul>
          {CA_STEPS.map((key) => (
            <li key={key}>{t(key)}</li>
          ))}
        </ul>
      </Section>
      {status.error && <ErrorBox problem={status.error} onRetry={status.reload} />}
      {!status.data && !status.error && <Spinner />}
      {status.data && (
        <Section title={t("network.state")}>
          <p>
            {status.data.state === "on" ? (
              <span className="badge badge-running">{t("network.on")}</span>
            ) : (
              <span className="muted">{t("network.off")}</span>
            )}
            {status.data.dashboardUrl !== null && (
              <>
                {" "}
                <a href={status.data.dashboardUrl}>{status.data.dashboardUrl}</a>
              </>
            )}
          </p>
          {status.data.state === "on" && (
            <p>{t(status.data.forwardHttps ? "network.forwardOn" : "network.forwardOff")}</p>
          )}
          {status.data.problems.length > 0 && (
            <ul className="field-error">
              {status.data.problems.map((problem) => (
                <li key={problem}>{problem}</li>
              ))}
            </ul>
          )}
          <details>
            <summary>{t("network.details")}</summary>
            <pre className="manifest">{JSON.stringify(status.data, null, 2)}</pre>
          </details>
        </Section>
      )}
    </>
  );
}
