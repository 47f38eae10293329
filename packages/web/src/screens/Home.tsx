import { useState } from "react";
import type { AppView, MonitoringAlerts, OsInfo, UpgradeOffer } from "@townos/client";
import { client, useLoad } from "../api.js";
import { appStatus, ErrorBox, Spinner, StatusBadge } from "../components.js";
import { formatBytes, t } from "../messages.js";
import { Link } from "../router.js";
import { tour, useSession } from "../session.js";
import { AppLinks, NoteList } from "./AppPage.js";
import { agoText } from "../backups.js";

const REFRESH_MS = 5000;
/** Alerts come from metrics scraped every few seconds at most; asking more often shows nothing new. */
const ALERTS_REFRESH_MS = 30_000;

export function Home() {
  const session = useSession();
  const apps = useLoad(() => client.apps({ limit: 500 }), "apps", REFRESH_MS);
  const upgrades = useLoad(() => client.upgrades({ limit: 500 }), "upgrades", REFRESH_MS);
  const storage = useLoad(() => client.storage(), "storage", REFRESH_MS);
  const usage = useLoad(() => client.systemUsage(), "usage", REFRESH_MS);
  const repos = useLoad(() => client.repositories({ limit: 500 }), "repos");
  const alerts = useLoad(() => client.monitoringAlerts(), "alerts", ALERTS_REFRESH_MS);
  const os = useLoad(() => client.osInfo(), "os");
  // The tour's steps are the administrator's to take.
  const [showTour, setShowTour] = useState(session.isAdmin && tour.pending());

  const offers = (upgrades.data?.items ?? []).filter((offer) => !offer.dismissed);
  const failingRepos = (repos.data?.items ?? []).filter((repo) => repo.status.error !== null);

  return (
    <>
      <div className="page-header">
        <h1>{t("home.title")}</h1>
        {offers.length > 0 && (
          <span className="badge badge-upgrade">
            {t("home.upgrades", { count: offers.length })}
          </span>
        )}
      </div>
      {os.data?.data && <DataWarning data={os.data.data} />}
      <Alerts alerts={alerts.data} failed={alerts.error !== undefined} />
      {session.isAdmin && <BackupFailures />}
      {showTour && (
        <section className="card tour" aria-labelledby="tour-title">
          <h2 id="tour-title">{t("tour.title")}</h2>
          <p>{t("tour.intro")}</p>
          <ol>
            <li>
              {t("tour.cert")} <a href="/tls/ca.crt">{t("tour.certLink")}</a>
            </li>
            <li>
              {t("tour.dns")} <Link to="/network">{t("tour.dnsLink")}</Link>
            </li>
            <li>
              {t("tour.install")} <Link to="/store">{t("tour.installLink")}</Link>
            </li>
          </ol>
          <button
            type="button"
            onClick={() => {
              tour.dismiss();
              setShowTour(false);
            }}
          >
            {t("tour.dismiss")}
          </button>
        </section>
      )}
      {failingRepos.length > 0 && (
        <section className="card danger" aria-labelledby="repo-errors">
          <h2 id="repo-errors">{t("home.repoErrors")}</h2>
          <ul>
            {failingRepos.map((repo) => (
              <li key={repo.name}>
                {t("home.repoError", { name: repo.name, error: repo.status.error ?? "" })}
              </li>
            ))}
          </ul>
        </section>
      )}
      <h2>{t("home.apps")}</h2>
      {apps.error && <ErrorBox problem={apps.error} onRetry={apps.reload} />}
      {!apps.data && !apps.error && <Spinner />}
      {apps.data && apps.data.items.length === 0 && (
        <div className="card empty">
          <p>{t("home.noApps")}</p>
          {session.isAdmin && (
            <Link to="/store" className="button primary">
              {t("home.browse")}
            </Link>
          )}
        </div>
      )}
      <ul className="grid">
        {apps.data?.items.map((app) => (
          <li key={`${app.repo}/${app.name}`}>
            <AppCard
              app={app}
              offer={offers.find((o) => o.repo === app.repo && o.name === app.name)}
            />
          </li>
        ))}
      </ul>
      <h2>{t("home.box")}</h2>
      <ul className="grid">
        {usage.data && (
          <>
            <li>
              <UsageCard
                title={t("home.cpu")}
                used={usage.data.cpu.busyPercent}
                total={100}
                text={t("home.cpuText", {
                  percent: usage.data.cpu.busyPercent,
                  cores: usage.data.cpu.cores,
                })}
              />
            </li>
            <li>
              <UsageCard
                title={t("home.memory")}
                used={usage.data.memory.totalBytes - usage.data.memory.availableBytes}
                total={usage.data.memory.totalBytes}
                text={t("home.usedOf", {
                  used: formatBytes(
                    usage.data.memory.totalBytes - usage.data.memory.availableBytes,
                  ),
                  total: formatBytes(usage.data.memory.totalBytes),
                })}
              />
            </li>
          </>
        )}
        {storage.data?.disk && (
          <li>
            <UsageCard
              title={t("home.disk")}
              used={storage.data.disk.totalBytes - storage.data.disk.freeBytes}
              total={storage.data.disk.totalBytes}
              text={t("home.usedOf", {
                used: formatBytes(storage.data.disk.totalBytes - storage.data.disk.freeBytes),
                total: formatBytes(storage.data.disk.totalBytes),
              })}
            />
          </li>
        )}
      </ul>
      {usage.error && <ErrorBox problem={usage.error} />}
      {storage.data && (
        <p className="muted">
          {t("home.storage", { mode: storage.data.mode })} — {storage.data.reason}
        </p>
      )}
      {storage.error && <ErrorBox problem={storage.error} />}
      {os.data?.image && (
        <p className="muted">{t("home.image", { version: os.data.image.version })}</p>
      )}
    </>
  );
}

/** Where the data is, when it is at risk: in RAM (lost at reboot), or on a pool missing a disk. */
function DataWarning({ data }: { data: NonNullable<OsInfo["data"]> }) {
  const inRam = data.storage === "ram";
  if (!inRam && !data.degraded) return null;
  const [id, title, text, detail] = inRam
    ? [
        "data-in-ram-title",
        t("home.dataInRam"),
        t("home.dataInRamText"),
        t("home.dataInRamReason", { reason: data.detail }),
      ]
    : [
        "pool-degraded-title",
        t("home.poolDegraded"),
        t("home.poolDegradedText"),
        t("home.poolDegradedDisks", { disks: data.detail }),
      ];
  return (
    <section className="card danger" role="alert" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      <p>{text}</p>
      {data.detail !== "" && <p className="muted">{detail}</p>}
    </section>
  );
}

/** The built-in alerts, most severe first; nothing when all is well, a quiet note when nobody could look. */
function Alerts({ alerts, failed }: { alerts: MonitoringAlerts | undefined; failed: boolean }) {
  if (failed || alerts?.available === false) {
    return <p className="muted">{t("home.alertsUnavailable")}</p>;
  }
  if (!alerts || alerts.items.length === 0) return null;
  const items = [...alerts.items].sort(
    (a, b) => Number(b.severity === "critical") - Number(a.severity === "critical"),
  );
  return (
    <section className="card danger" aria-labelledby="alerts-title">
      <h2 id="alerts-title">{t("home.alerts")}</h2>
      <ul>
        {items.map((alert) => (
          <li key={`${alert.kind} ${alert.subject}`}>
            <span
              className={`badge ${alert.severity === "critical" ? "badge-failed" : "badge-starting"}`}
            >
              {t(`home.alert.${alert.severity}`)}
            </span>{" "}
            {alert.message}
          </li>
        ))}
      </ul>
      <p>
        <Link to="/monitoring">{t("nav.monitoring")}</Link>
      </p>
    </section>
  );
}

/** Subjects whose last backup failed (administrators: backups are theirs), like the alerts. */
function BackupFailures() {
  const overview = useLoad(() => client.backups(), "backups", ALERTS_REFRESH_MS);
  const failures = overview.data?.failures ?? [];
  if (failures.length === 0) return null;
  const now = Date.now();
  return (
    <section className="card danger" aria-labelledby="backup-failures-title">
      <h2 id="backup-failures-title">{t("home.backupFailures")}</h2>
      <ul>
        {failures.map((failure) => (
          <li key={`${failure.subject} ${failure.target ?? ""}`}>
            <span className="badge badge-failed">{t("backups.run.failed")}</span>{" "}
            {t("home.backupFailure", {
              subject: failure.subject,
              target: failure.target === null ? "" : ` → ${failure.target}`,
              error: failure.error,
              when: agoText(failure.at, now),
            })}
          </li>
        ))}
      </ul>
      <p>
        <Link to="/backups">{t("nav.backups")}</Link>
      </p>
    </section>
  );
}

/** One figure of the box with a bar: high use shows as the browser's warning colour. */
function UsageCard({
  title,
  used,
  total,
  text,
}: {
  title: string;
  used: number;
  total: number;
  text: string;
}) {
  return (
    <article className="card">
      <h3>{title}</h3>
      <meter min={0} max={total} value={used} high={total * 0.9} optimum={0} aria-label={title} />
      <p className="muted">{text}</p>
    </article>
  );
}

function AppCard({ app, offer }: { app: AppView; offer: UpgradeOffer | undefined }) {
  const status = appStatus(app);
  return (
    <article className={`card app-card${status === "failed" ? " danger" : ""}`}>
      <div className="card-header">
        <h3>
          <Link to={`/apps/${encodeURIComponent(app.repo)}/${encodeURIComponent(app.name)}`}>
            {app.name}
          </Link>
        </h3>
        <StatusBadge status={status} />
      </div>
      <p className="muted">
        {app.repo} · {t("app.version", { version: app.version })}
      </p>
      {offer && (
        <p>
          <span className="badge badge-upgrade">
            {t("home.upgrade", { version: offer.offerVersion })}
          </span>
        </p>
      )}
      {app.lastError !== null && <p className="field-error">{app.lastError}</p>}
      <AppLinks app={app} />
      <NoteList notes={app.notes} />
    </article>
  );
}
