/**
 * The Monitoring screen: the box's and the apps' resource use over a chosen
 * time range, drawn from range queries the daemon passes to Prometheus with
 * the caller's session, and what is measured with its health.
 */
import { useState } from "react";
import type { MonitoringStatus, MonitoringTarget } from "@townos/client";
import {
  CHART_QUERIES,
  TIME_RANGES,
  type ChartQuery,
  type TimeRange,
} from "@townos/api/monitoring-queries";
import { client, useLoad } from "../api.js";
import { Chart } from "../Chart.js";
import { ErrorBox, Spinner } from "../components.js";
import { formatTime, t, type MessageKey } from "../messages.js";
import {
  chartData,
  chartNote,
  durationText,
  monitoringDown,
  rangeQuery,
  refreshMs,
  REFRESH_MS,
} from "../monitoring.js";

const SECTIONS: { scope: ChartQuery["scope"]; title: MessageKey }[] = [
  { scope: "box", title: "monitoring.box" },
  { scope: "apps", title: "monitoring.apps" },
  { scope: "volumes", title: "monitoring.volumes" },
];

const DEFAULT_RANGE = TIME_RANGES[0] ?? { id: "1h", label: "1 hour", seconds: 3600 };

export function Monitoring() {
  const status = useLoad(() => client.monitoringStatus(), "status", REFRESH_MS);
  const [range, setRange] = useState<TimeRange>(DEFAULT_RANGE);
  const current = status.data;

  return (
    <>
      <div className="page-header">
        <h1>{t("monitoring.title")}</h1>
        <label className="inline">
          {t("monitoring.range")}{" "}
          <select
            value={range.id}
            onChange={(e) => {
              setRange(TIME_RANGES.find((r) => r.id === e.target.value) ?? DEFAULT_RANGE);
            }}
          >
            {TIME_RANGES.map((r) => (
              <option key={r.id} value={r.id}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      {status.error && !current && <ErrorBox problem={status.error} onRetry={status.reload} />}
      {!current && !status.error && <Spinner />}
      {current && (
        <>
          <Summary status={current} />
          {SECTIONS.map((section) => (
            <section key={section.scope} aria-label={t(section.title)}>
              <h2>{t(section.title)}</h2>
              <ul className="grid chart-grid">
                {CHART_QUERIES.filter((chart) => chart.scope === section.scope).map((chart) => (
                  <li key={chart.id}>
                    <ChartCard chart={chart} range={range} status={current} />
                  </li>
                ))}
              </ul>
            </section>
          ))}
          <Targets targets={current.targets} />
        </>
      )}
    </>
  );
}

/** Whether Prometheus answers, the settings in force, and Grafana when it is on. */
function Summary({ status }: { status: MonitoringStatus }) {
  const down = monitoringDown(status);
  return (
    <>
      {down !== null && (
        <p className="notice" role="status">
          {down}
        </p>
      )}
      {status.state !== "off" && (
        <p className="muted">
          {t("monitoring.services", {
            prometheus: status.prometheus.state,
            nodeExporter: status.nodeExporter.state,
          })}{" "}
          ·{" "}
          {t("monitoring.settings", {
            retention: durationText(status.retentionSeconds),
            interval: durationText(status.scrapeIntervalSeconds),
          })}
          {status.grafana.url !== null && (
            <>
              {" "}
              · <a href={status.grafana.url}>{t("monitoring.grafana")}</a>
            </>
          )}
        </p>
      )}
    </>
  );
}

/** One chart: fetched for the range, refreshed while it follows the present, or why it is empty. */
function ChartCard({
  chart,
  range,
  status,
}: {
  chart: ChartQuery;
  range: TimeRange;
  status: MonitoringStatus;
}) {
  const interval = status.scrapeIntervalSeconds;
  const on = status.state === "on";
  const result = useLoad(
    async () => {
      if (!on) return undefined;
      const query = rangeQuery(chart, range, interval, Date.now());
      const answer = await client.monitoringQueryRange(query);
      return chartData(answer, chart.title, [query.start, query.end]);
    },
    `${chart.id}:${range.id}:${interval}:${on}`,
    on ? refreshMs(range) : undefined,
  );
  const data = result.data;
  const note = chartNote(status, data, result.error);
  return (
    <article className="card chart-card" aria-label={chart.title}>
      <h3>{chart.title}</h3>
      {note !== null ? (
        <p className={`chart-note chart-note-${note.kind}`}>{note.text}</p>
      ) : data === undefined ? (
        <Spinner />
      ) : (
        <Chart title={chart.title} unit={chart.unit} data={data} />
      )}
    </article>
  );
}

const HEALTH_BADGE: Record<MonitoringTarget["health"], string> = {
  up: "badge-running",
  down: "badge-failed",
  unknown: "badge-starting",
};

/** Every scrape target with its health: one that is down says so, with its last error. */
function Targets({ targets }: { targets: MonitoringTarget[] }) {
  return (
    <section aria-label={t("monitoring.targets")}>
      <h2>{t("monitoring.targets")}</h2>
      {targets.length === 0 ? (
        <p className="card empty">{t("monitoring.noTargets")}</p>
      ) : (
        <div className="card table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th>{t("monitoring.job")}</th>
                <th>{t("monitoring.instance")}</th>
                <th>{t("monitoring.app")}</th>
                <th>{t("monitoring.health")}</th>
                <th>{t("monitoring.lastScrape")}</th>
                <th>{t("monitoring.lastError")}</th>
              </tr>
            </thead>
            <tbody>
              {targets.map((target) => {
                const { repo, app } = target.labels;
                return (
                  <tr
                    key={`${target.job} ${target.instance}`}
                    className={target.health === "down" ? "danger" : ""}
                  >
                    <td>{target.job}</td>
                    <td className="break">{target.instance}</td>
                    <td>{repo !== undefined && app !== undefined ? `${repo}/${app}` : "—"}</td>
                    <td>
                      <span className={`badge ${HEALTH_BADGE[target.health]}`}>
                        {t(`monitoring.health.${target.health}`)}
                      </span>
                    </td>
                    <td className="nowrap">
                      {target.lastScrape === null
                        ? t("monitoring.never")
                        : formatTime(target.lastScrape)}
                    </td>
                    <td className="break">{target.lastError ?? "—"}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
