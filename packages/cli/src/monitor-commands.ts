import type { Command } from "commander";
import { clientKit, type JsonFlag } from "./client-kit.js";
import type { Io } from "./io.js";
import { alertsText, parseTime, resultTable, statusLines } from "./monitor-views.js";

/** `town monitor …`: the box's Prometheus, its scrape targets, PromQL and the built-in alerts. */
export function registerMonitorCommands(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  const { client, print, json } = clientKit(program, io);

  const monitor = program
    .command("monitor")
    .description("monitoring: Prometheus, Node Exporter, scrape targets, PromQL, alerts");

  monitor
    .command("status")
    .description("Prometheus and Node Exporter, retention, Grafana, and every scrape target")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const status = await (await client()).monitoringStatus();
      if (flags.json) json(status);
      else print(statusLines(status).join("\n"));
    });

  monitor
    .command("query")
    .description("a PromQL instant query (you see the series of apps you can see)")
    .argument("<promql>", "the expression, e.g. 'town_app_memory_bytes'")
    .option("--time <time>", "when: seconds since the epoch or an RFC 3339 date (default now)")
    .option("--json", "the result as the API gives it")
    .action(async (query: string, flags: JsonFlag & { time?: string }) => {
      const time = flags.time === undefined ? undefined : parseTime(flags.time);
      const result = await (
        await client()
      ).monitoringQuery({ query, ...(time === undefined ? {} : { time }) });
      if (flags.json) json(result);
      else print(resultTable(result));
    });

  monitor
    .command("alerts")
    .description(
      "the built-in alerts: full disks and volumes, restarting apps, targets down, memory",
    )
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const alerts = await (await client()).monitoringAlerts();
      if (flags.json) json(alerts);
      else if (alerts.available) print(alertsText(alerts));
      else {
        // Not "no alerts": nobody could look, so a script must not take it for all well.
        io.stderr(`town: ${alertsText(alerts)}\n`);
        setExit(1);
      }
    });
}
