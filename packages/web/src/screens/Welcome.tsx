import { useState, type SyntheticEvent } from "react";
import type { Account, Problem } from "@townos/client";
import { client, problemOf } from "../api.js";
import { ErrorBox } from "../components.js";
import { t } from "../messages.js";
import { tour } from "../session.js";

/** First run: creates the administrator, then the guided tour waits on Home. */
export function Setup({ onDone }: { onDone: (account: Account) => void }) {
  const [username, setUsername] = useState("admin");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [email, setEmail] = useState("");
  const [problem, setProblem] = useState<Problem>();
  const [busy, setBusy] = useState(false);
  const mismatch = confirm !== "" && confirm !== password;

  const submit = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    if (password !== confirm) return;
    setBusy(true);
    setProblem(undefined);
    try {
      const { account } = await client.setup({
        username,
        password,
        ...(email.trim() === "" ? {} : { email: email.trim() }),
      });
      tour.start();
      onDone(account);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card form" onSubmit={(event) => void submit(event)}>
      <h1>{t("setup.title")}</h1>
      <p>{t("setup.intro")}</p>
      <label>
        {t("setup.username")}
        <input
          value={username}
          onChange={(e) => {
            setUsername(e.target.value);
          }}
          autoComplete="username"
          required
        />
      </label>
      <label>
        {t("setup.password")}
        <input
          type="password"
          value={password}
          onChange={(e) => {
            setPassword(e.target.value);
          }}
          autoComplete="new-password"
          required
        />
      </label>
      <label>
        {t("setup.confirm")}
        <input
          type="password"
          value={confirm}
          onChange={(e) => {
            setConfirm(e.target.value);
          }}
          autoComplete="new-password"
          aria-invalid={mismatch}
          aria-describedby={mismatch ? "setup-mismatch" : undefined}
          required
        />
      </label>
      {mismatch && (
        <p id="setup-mismatch" className="field-error">
          {t("setup.mismatch")}
        </p>
      )}
      <label>
        {t("setup.email")}
        <input
          type="email"
          value={email}
          onChange={(e) => {
            setEmail(e.target.value);
          }}
          autoComplete="email"
        />
      </label>
      {problem && <ErrorBox problem={problem} />}
      <button type="submit" className="primary" disabled={busy || mismatch}>
        {t("setup.submit")}
      </button>
    </form>
  );
}

export function Login({
  notice,
  onDone,
}: {
  notice: "expired" | "loggedOut" | null;
  onDone: (account: Account) => void;
}) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [problem, setProblem] = useState<Problem>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setProblem(undefined);
    try {
      const { account } = await client.login({ username, password });
      onDone(account);
    } catch (error) {
      setProblem(problemOf(error));
      setBusy(false);
    }
  };

  return (
    <form className="card form" onSubmit={(event) => void submit(event)}>
      <h1>{t("login.title")}</h1>
      {notice && (
        <p className="notice" role="status">
          {notice === "expired" ? t("login.expired") : t("login.loggedOut")}
        </p>
      )}
      <label>
        {t("login.username")}
        <input
          value={username}
          onChange={(e) => {
            setUsername(e.target.value);
          }}
          autoComplete="username"
          required
        />
      </label>
      <label>
        {t("login.password")}
        <input
          type="password"
          value={password}
          onChange={(e) => {
            setPassword(e.target.value);
          }}
          autoComplete="current-password"
          required
        />
      </label>
      {problem && <ErrorBox problem={problem} />}
      <button type="submit" className="primary" disabled={busy}>
        {t("login.submit")}
      </button>
    </form>
  );
}
