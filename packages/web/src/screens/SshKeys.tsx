/**
 * Root's SSH keys on the Town OS image, on the Settings page of
 * administrators: the keys that may log in (rescue and expert access), one
 * to paste in, each to remove. They are kept on the data pool.
 */
import { useState } from "react";
import { client, useAction, useLoad } from "../api.js";
import { ErrorBox, Section } from "../components.js";
import { t } from "../messages.js";

export function SshKeys() {
  const keys = useLoad(() => client.sshKeys(), "ssh-keys");
  const { problem, busy, act } = useAction(keys.reload);
  const [pasted, setPasted] = useState("");
  const lines = keys.data?.keys.map((key) => key.line) ?? [];
  return (
    <Section title={t("sshKeys.title")}>
      <p className="muted">{t(keys.data?.served === false ? "sshKeys.unused" : "sshKeys.about")}</p>
      {keys.error && <ErrorBox problem={keys.error} onRetry={keys.reload} />}
      {problem && <ErrorBox problem={problem} />}
      {keys.data?.keys.length === 0 && <p>{t("sshKeys.none")}</p>}
      <ul className="stack">
        {keys.data?.keys.map((key) => (
          <li key={key.fingerprint} className="session">
            <span className="break">
              {key.comment || key.type}
              <br />
              <code className="muted">{key.fingerprint}</code>
            </span>
            <button
              type="button"
              disabled={busy}
              onClick={() =>
                void act(() => client.setSshKeys(lines.filter((line) => line !== key.line)))
              }
            >
              {t("sshKeys.remove")}
            </button>
          </li>
        ))}
      </ul>
      <form
        className="form"
        onSubmit={(event) => {
          event.preventDefault();
          void act(async () => {
            await client.setSshKeys([...lines, pasted]);
            setPasted("");
          });
        }}
      >
        <label>
          {t("sshKeys.paste")}
          <textarea
            rows={2}
            value={pasted}
            placeholder="ssh-ed25519 AAAA… you@laptop"
            onChange={(e) => {
              setPasted(e.target.value);
            }}
          />
        </label>
        <button type="submit" disabled={busy || pasted.trim() === ""}>
          {t("sshKeys.add")}
        </button>
      </form>
    </Section>
  );
}
