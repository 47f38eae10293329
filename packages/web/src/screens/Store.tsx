import { useDeferredValue, useState } from "react";
import type { PackageSummary } from "@townos/client";
import { client, useLoad } from "../api.js";
import { ErrorBox, Spinner } from "../components.js";
import { t } from "../messages.js";
import { Link } from "../router.js";

export function Store() {
  const [query, setQuery] = useState("");
  const search = useDeferredValue(query.trim());
  const catalog = useLoad(
    () => client.catalog({ limit: 500, ...(search === "" ? {} : { q: search }) }),
    `catalog:${search}`,
  );
  const items = catalog.data?.items ?? [];
  const featured = search === "" ? items.filter((item) => item.featured) : [];
  const groups = new Map<string, PackageSummary[]>();
  for (const item of [...items].sort((a, b) => a.repoPosition - b.repoPosition)) {
    groups.set(item.repo, [...(groups.get(item.repo) ?? []), item]);
  }

  return (
    <>
      <div className="page-header">
        <h1>{t("store.title")}</h1>
      </div>
      <label className="search">
        <span className="visually-hidden">{t("store.search")}</span>
        <input
          type="search"
          placeholder={t("store.search")}
          value={query}
          onChange={(e) => {
            setQuery(e.target.value);
          }}
        />
      </label>
      {catalog.error && <ErrorBox problem={catalog.error} onRetry={catalog.reload} />}
      {!catalog.data && !catalog.error && <Spinner />}
      {catalog.data && items.length === 0 && (
        <p className="card empty">
          {search === "" ? t("store.noRepos") : t("store.empty")}{" "}
          {search === "" && <Link to="/repositories">{t("nav.repositories")}</Link>}
        </p>
      )}
      {featured.length > 0 && (
        <section aria-labelledby="featured">
          <h2 id="featured">{t("store.featured")}</h2>
          <PackageGrid items={featured} />
        </section>
      )}
      {[...groups].map(([repo, packages]) => (
        <section key={repo} aria-labelledby={`repo-${repo}`}>
          <h2 id={`repo-${repo}`}>{t("store.repo", { repo })}</h2>
          <PackageGrid items={packages} />
        </section>
      ))}
    </>
  );
}

function PackageGrid({ items }: { items: PackageSummary[] }) {
  return (
    <ul className="grid">
      {items.map((item) => (
        <li key={`${item.repo}/${item.name}`}>
          <article className="card package-card">
            <h3>
              <Link to={`/store/${encodeURIComponent(item.repo)}/${encodeURIComponent(item.name)}`}>
                {item.name}
              </Link>
            </h3>
            <p>{item.description}</p>
            <p className="muted">
              {item.latestVersion !== null && t("app.version", { version: item.latestVersion })}
              {item.installed && (
                <>
                  {" · "}
                  <span className="badge badge-running">
                    {t("store.installed", { version: item.installedVersion ?? "" })}
                  </span>
                </>
              )}
              {item.invalidVersions > 0 && (
                <>
                  {" · "}
                  {t("store.invalid", { count: item.invalidVersions })}
                </>
              )}
            </p>
          </article>
        </li>
      ))}
    </ul>
  );
}
