import { useState, type SyntheticEvent } from "react";
import type { Account } from "@townos/client";
import { client, useAction } from "../api.js";
import { ErrorBox, TextField } from "../components.js";
import { t } from "../messages.js";
import { tour } from "../session.js";

/** First run: creates the administrator, then the guided tour waits on Home. */
export function Setup({ onDone }: { onDone: (account: Account) => void }) {
  const [username, setUsername] = useState("admin");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [email, setEmail] = useState("");
  const [setupCode, setSetupCode] = useState("");
  const { problem, busy, act } = useAction();
  const mismatch = confirm !== "" && confirm !== password;

  const submit = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    if (password !== confirm) return;
    await act(async () => {
      const { account } = await client.setup({
        username,
        password,
        setupCode: setupCode.trim(),
        ...(email.trim() === "" ? {} : { email: email.trim() }),
      });
      tour.start();
      onDone(account);
    });
  };

  return (
    <form className="card form" onSubmit={(event) => void submit(event)}>
      <h1>{t("setup.title")}</h1>
      <p>{t("setup.intro")}</p>
      <TextField
        label={t("setup.code")}
        value={setupCode}
        onChange={setSetupCode}
        autoComplete="one-time-code"
        spellCheck={false}
        aria-describedby="setup-code-hint"
        required
      />
      <p id="setup-code-hint" className="muted">
        {t("setup.codeHint")}
      </p>
      <TextField
        label={t("setup.username")}
        value={username}
        onChange={setUsername}
        autoComplete="username"
        required
      />
      <TextField
        label={t("setup.password")}
        value={password}
        onChange={setPassword}
        type="password"
        autoComplete="new-password"
        required
      />
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
      <TextField
        label={t("setup.email")}
        value={email}
        onChange={setEmail}
        type="email"
        autoComplete="email"
      />
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
  const { problem, busy, act } = useAction();

  const submit = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    await act(async () => {
      const { account } = await client.login({ username, password });
      onDone(account);
    });
  };

  return (
    <form className="card form" onSubmit={(event) => void submit(event)}>
      <h1>{t("login.title")}</h1>
      {notice && (
        <p className="notice" role="status">
          {notice === "expired" ? t("login.expired") : t("login.loggedOut")}
        </p>
      )}
      <TextField
        label={t("login.username")}
        value={username}
        onChange={setUsername}
        autoComplete="username"
        required
      />
      <TextField
        label={t("login.password")}
        value={password}
        onChange={setPassword}
        type="password"
        autoComplete="current-password"
        required
      />
      {problem && <ErrorBox problem={problem} />}
      <button type="submit" className="primary" disabled={busy}>
        {t("login.submit")}
      </button>
    </form>
  );
}
