import { useState } from "react";
import type { VersionDetail } from "@townos/client";
import { client, useLoad } from "../api.js";
import { ErrorBox, Section, Spinner } from "../components.js";
import { formatBytes, t, tOr } from "../messages.js";
import { Link } from "../router.js";
import { useSession } from "../session.js";
import { InstallDialog } from "./InstallDialog.js";

export function PackagePage({ repo, name }: { repo: string; name: string }) {
  const session = useSession();
  const detail = useLoad(() => client.package(repo, name), `pkg:${repo}/${name}`);
  const [chosen, setChosen] = useState<string>();
  const version =
    chosen ??
    detail.data?.latestVersion ??
    detail.data?.versions.find((v) => v.valid)?.version ??
    detail.data?.versions[0]?.version;
  const versionDetail = useLoad(
    () =>
      version === undefined
        ? Promise.resolve(undefined)
        : client.packageVersion(repo, name, version),
    `ver:${repo}/${name}/${version ?? ""}`,
  );
  const [installing, setInstalling] = useState(false);

  if (detail.error) return <ErrorBox problem={detail.error} onRetry={detail.reload} />;
  if (!detail.data) return <Spinner />;
  const pkg = detail.data;
  const current = versionDetail.data;

  return (
    <>
      <div className="page-header">
        <h1>{pkg.name}</h1>
        <span className="muted">{t("store.repo", { repo: pkg.repo })}</span>
      </div>
      <p className="lead">{current?.description ?? pkg.description}</p>
      <div className="toolbar spaced">
        <label>
          {t("pkg.version")}{" "}
          <select
            value={version}
            onChange={(e) => {
              setChosen(e.target.value);
            }}
          >
            {pkg.versions.map((v) => (
              <option key={v.version} value={v.version}>
                {v.version}
                {v.valid ? "" : " ⚠"}
              </option>
            ))}
          </select>
        </label>
        {!session.isAdmin ? (
          <span className="muted">{t("pkg.adminOnly")}</span>
        ) : pkg.installed ? null : (
          <button
            type="button"
            className="primary"
            disabled={!current?.valid}
            onClick={() => {
              setInstalling(true);
            }}
          >
            {t("pkg.install")}
          </button>
        )}
        {pkg.installed && (
          <Link
            to={`/apps/${encodeURIComponent(pkg.repo)}/${encodeURIComponent(pkg.name)}`}
            className="button"
          >
            {t("pkg.openApp")} ({t("pkg.installed", { version: pkg.installedVersion ?? "" })})
          </Link>
        )}
      </div>
      {versionDetail.error && <ErrorBox problem={versionDetail.error} />}
      {!current && !versionDetail.error && <Spinner />}
      {current && <VersionInfo detail={current} />}
      {installing && current && (
        <InstallDialog
          detail={current}
          onClose={() => {
            setInstalling(false);
          }}
        />
      )}
    </>
  );
}

function VersionInfo({ detail }: { detail: VersionDetail }) {
  const preview = detail.preview;
  return (
    <>
      {!detail.valid && (
        <ErrorBox
          problem={{
            type: "about:blank",
            title: t("pkg.invalid"),
            status: 422,
            detail: "",
            code: "invalid_package",
            issues: detail.errors,
          }}
        />
      )}
      <Section title={t("pkg.questions")}>
        {detail.questions.length === 0 ? (
          <p>{t("pkg.noQuestions")}</p>
        ) : (
          <ul>
            {detail.questions.map((q) => (
              <li key={q.name}>
                {q.query} <span className="muted">({tOr(`type.${q.type}`, q.type)})</span>
              </li>
            ))}
          </ul>
        )}
      </Section>
      {preview && (
        <Section title={t("pkg.creates")}>
          {preview.image !== null && <p>{t("pkg.image", { image: preview.image })}</p>}
          <h3>{t("pkg.volumesList")}</h3>
          {preview.volumes.length === 0 ? (
            <p>{t("common.none")}</p>
          ) : (
            <ul>
              {preview.volumes.map((v) => (
                <li key={v.name}>
                  {t("app.volume", { name: v.name, mountpoint: v.mountpoint })}
                  {v.quota !== null && ` (${t("app.quota", { quota: formatBytes(v.quota) })})`}
                </li>
              ))}
            </ul>
          )}
          <h3>{t("pkg.portsList")}</h3>
          {preview.ports.length === 0 ? (
            <p>{t("common.none")}</p>
          ) : (
            <ul>
              {preview.ports.map((p, index) => (
                <li key={index}>
                  {t("install.port", {
                    // A port written as a marker (`@port@`) is the answer to a question.
                    host: /^[0-9]+$/.test(String(p.host)) ? String(p.host) : t("pkg.portChosen"),
                    container: String(p.container),
                    exposure: tOr(`exposure.${p.exposure}`, p.exposure),
                  })}
                </li>
              ))}
            </ul>
          )}
          {preview.dependencies.length > 0 && (
            <>
              <h3>{t("pkg.dependencies")}</h3>
              <ul>
                {preview.dependencies.map((d) => (
                  <li key={d.key}>
                    {d.repo}/{d.name} {d.version}
                  </li>
                ))}
              </ul>
            </>
          )}
        </Section>
      )}
      <details className="card">
        <summary>{t("pkg.manifest")}</summary>
        <pre className="manifest">{detail.manifest}</pre>
      </details>
    </>
  );
}
