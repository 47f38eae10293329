import { useState, type SyntheticEvent } from "react";
import { client, useAction, useLoad } from "../api.js";
import { ErrorBox, Section, Spinner, TextField } from "../components.js";
import { formatTime, t } from "../messages.js";
import { useSession } from "../session.js";
import { ManagedBadge, useManaged } from "../managed.js";

export function Repositories() {
  const session = useSession();
  const repos = useLoad(() => client.repositories({ limit: 500 }), "repos");
  const { problem, busy, act } = useAction(repos.reload);
  const isManaged = useManaged();

  return (
    <>
      <div className="page-header">
        <h1>{t("repos.title")}</h1>
      </div>
      {problem && <ErrorBox problem={problem} />}
      {repos.error && <ErrorBox problem={repos.error} onRetry={repos.reload} />}
      {!repos.data && !repos.error && <Spinner />}
      {repos.data?.items.length === 0 && <p className="card empty">{t("repos.empty")}</p>}
      <ul className="stack">
        {repos.data?.items.map((repo, index, all) => {
          // Declared in the state repository: the daemon refuses removing or moving it by hand.
          const managed = isManaged("repository", repo.name);
          return (
            <li key={repo.name} className={`card${repo.status.error !== null ? " danger" : ""}`}>
              <div className="card-header">
                <div className="inline">
                  <h2>{repo.name}</h2>
                  {managed && <ManagedBadge />}
                </div>
                {session.isAdmin && (
                  <div className="toolbar">
                    <button
                      type="button"
                      aria-label={t("repos.up", { name: repo.name })}
                      disabled={busy || managed || index === 0}
                      onClick={() => void act(() => client.moveRepository(repo.name, index - 1))}
                    >
                      ↑
                    </button>
                    <button
                      type="button"
                      aria-label={t("repos.down", { name: repo.name })}
                      disabled={busy || managed || index === all.length - 1}
                      onClick={() => void act(() => client.moveRepository(repo.name, index + 1))}
                    >
                      ↓
                    </button>
                    <button
                      type="button"
                      disabled={busy}
                      onClick={() => void act(() => client.refreshRepository(repo.name))}
                    >
                      {t("common.refresh")}
                    </button>
                    <button
                      type="button"
                      className="danger"
                      disabled={busy || managed}
                      onClick={() => void act(() => client.removeRepository(repo.name))}
                    >
                      {t("common.remove")}
                    </button>
                  </div>
                )}
              </div>
              <p className="muted break">{repo.url}</p>
              {index === 0 && all.length > 1 && <p className="muted">{t("repos.first")}</p>}
              <p>
                {repo.status.loading
                  ? t("repos.loading")
                  : t("repos.packages", { count: repo.status.packages })}{" "}
                ·{" "}
                {repo.status.commit === null
                  ? t("repos.never")
                  : t("repos.commit", { commit: repo.status.commit.slice(0, 10) })}
                {repo.status.refreshedAt !== null && ` · ${formatTime(repo.status.refreshedAt)}`}
              </p>
              {repo.status.error !== null && <p className="field-error">{repo.status.error}</p>}
            </li>
          );
        })}
      </ul>
      {session.isAdmin && <AddRepository onAdded={repos.reload} />}
    </>
  );
}

function AddRepository({ onAdded }: { onAdded: () => void }) {
  const [name, setName] = useState("");
  const [url, setUrl] = useState("");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const { problem, busy, act } = useAction();

  const submit = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    await act(async () => {
      await client.addRepository({
        name: name.trim(),
        url: url.trim(),
        ...(username === "" ? {} : { username }),
        ...(password === "" ? {} : { password }),
      });
      setName("");
      setUrl("");
      setUsername("");
      setPassword("");
      onAdded();
    });
  };

  return (
    <Section title={t("repos.add")}>
      <form className="form" onSubmit={(event) => void submit(event)}>
        <TextField label={t("repos.name")} value={name} onChange={setName} required />
        <TextField
          label={t("repos.url")}
          value={url}
          onChange={setUrl}
          type="url"
          placeholder="https://…"
          required
        />
        <TextField
          label={t("repos.username")}
          value={username}
          onChange={setUsername}
          autoComplete="off"
        />
        <TextField
          label={t("repos.password")}
          value={password}
          onChange={setPassword}
          type="password"
          autoComplete="new-password"
        />
        {problem && <ErrorBox problem={problem} />}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {t("repos.submit")}
          </button>
        </div>
      </form>
    </Section>
  );
}
