import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  MonitoringAlertsSchema,
  MonitoringQuerySchema,
  MonitoringRangeQuerySchema,
  MonitoringResultSchema,
  MonitoringStatusSchema,
  type MonitoringAlerts,
  type MonitoringQuery,
  type MonitoringRangeQuery,
  type MonitoringResult,
  type MonitoringStatus,
} from "@townos/api";
import type { Viewer } from "../../monitoring/service.js";
import { type ApiOptions, services } from "../context.js";

// Every signed-in account may look; what it sees of apps' series is decided by the service.

function viewer(request: FastifyRequest): Viewer {
  return { admin: request.auth?.account.role === "admin" };
}

export function registerMonitoringRoutes(api: FastifyInstance, options: ApiOptions): void {
  const monitoring = () => services(options).monitoring;

  api.get<{ Reply: MonitoringStatus }>(
    "/monitoring/status",
    {
      config: { access: "user" },
      schema: {
        summary:
          "Prometheus, Node Exporter and Grafana, and every scrape target with its health and last error",
        response: { 200: MonitoringStatusSchema },
      },
    },
    async (request) => monitoring().status(viewer(request)),
  );

  api.get<{ Querystring: MonitoringQuery; Reply: MonitoringResult }>(
    "/monitoring/query",
    {
      config: { access: "user" },
      schema: {
        summary:
          "A PromQL instant query answered by the box's Prometheus; apps' series only for those who may see apps' health",
        querystring: MonitoringQuerySchema,
        response: { 200: MonitoringResultSchema },
      },
    },
    async (request) => monitoring().query(request.query, viewer(request)),
  );

  api.get<{ Querystring: MonitoringRangeQuery; Reply: MonitoringResult }>(
    "/monitoring/query_range",
    {
      config: { access: "user" },
      schema: {
        summary: "A PromQL range query (seconds since the epoch, step in seconds)",
        querystring: MonitoringRangeQuerySchema,
        response: { 200: MonitoringResultSchema },
      },
    },
    async (request) => monitoring().queryRange(request.query, viewer(request)),
  );

  api.get<{ Reply: MonitoringAlerts }>(
    "/monitoring/alerts",
    {
      config: { access: "user" },
      schema: {
        summary:
          "The built-in alerts: disks and volumes above 90 %, apps restarting, targets down, memory pressure",
        response: { 200: MonitoringAlertsSchema },
      },
    },
    async (request) => monitoring().alerts(viewer(request)),
  );
}
