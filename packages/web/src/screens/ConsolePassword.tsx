/**
 * Root's console password on the Town OS image, on the Settings page of
 * administrators beside the SSH keys: the way in for whoever stands at the
 * box when the network is broken. Only whether one is set is ever shown.
 */
import { useState } from "react";
import { client, useAction, useLoad } from "../api.js";
import { ErrorBox, Section, TextField } from "../components.js";
import { t } from "../messages.js";

export function ConsolePassword() {
  const state = useLoad(() => client.consolePassword(), "console-password");
  const { problem, busy, act } = useAction(state.reload);
  const [password, setPassword] = useState("");
  const [repeat, setRepeat] = useState("");
  const mismatch = repeat !== "" && repeat !== password;
  const isSet = state.data?.set === true;
  return (
    <Section title={t("consolePassword.title")}>
      <p className="muted">
        {t(state.data?.served === false ? "consolePassword.unused" : "consolePassword.about")}
      </p>
      {state.error && <ErrorBox problem={state.error} onRetry={state.reload} />}
      {problem && <ErrorBox problem={problem} />}
      {state.data && !isSet && <p>{t("consolePassword.none")}</p>}
      {isSet && (
        <p className="session">
          {t("consolePassword.isSet")}
          <button
            type="button"
            disabled={busy}
            onClick={() => void act(() => client.clearConsolePassword())}
          >
            {t("consolePassword.remove")}
          </button>
        </p>
      )}
      <form
        className="form"
        onSubmit={(event) => {
          event.preventDefault();
          if (mismatch) return;
          void act(async () => {
            await client.setConsolePassword(password);
            setPassword("");
            setRepeat("");
          });
        }}
      >
        <TextField
          label={t("consolePassword.password")}
          value={password}
          onChange={setPassword}
          type="password"
          autoComplete="new-password"
          required
        />
        <TextField
          label={t("consolePassword.repeat")}
          value={repeat}
          onChange={setRepeat}
          type="password"
          autoComplete="new-password"
          aria-invalid={mismatch}
          aria-describedby={mismatch ? "console-password-mismatch" : undefined}
          required
        />
        {mismatch && (
          <p id="console-password-mismatch" className="field-error">
            {t("setup.mismatch")}
          </p>
        )}
        <button type="submit" disabled={busy || mismatch || password === ""}>
          {t(isSet ? "consolePassword.change" : "consolePassword.set")}
        </button>
      </form>
    </Section>
  );
}
