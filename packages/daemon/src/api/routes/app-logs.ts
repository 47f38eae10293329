import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { MAX_LOG_PAGE } from "../../apps/logs.js";
import { type Access, type ApiOptions, services } from "../context.js";
import { HEARTBEAT_MS, SSE_HEADERS, sseStream } from "../sse.js";
import { nameParam } from "./schemas.js";

const appParams = { type: "object", properties: { repo: nameParam, name: nameParam } } as const;
type AppParams = { repo: string; name: string };

const instanceParam = { ...nameParam, description: "only this package of the app's tree" };
const searchParam = {
  type: "string",
  minLength: 1,
  maxLength: 200,
  description: "case-insensitive substring",
};

const logEntrySchema = {
  type: "object",
  required: ["container", "instance", "stream", "time", "text", "truncated"],
  properties: {
    container: { type: "string" },
    instance: { type: "string" },
    stream: { type: "string", enum: ["stdout", "stderr"] },
    time: { type: "integer", description: "ms since the epoch, whole seconds" },
    text: { type: "string" },
    truncated: { type: "boolean" },
  },
} as const;

const nullableInteger = { type: ["integer", "null"] } as const;

const healthSchema = {
  type: "object",
  required: ["repo", "name", "enabled", "running", "containers"],
  properties: {
    repo: { type: "string" },
    name: { type: "string" },
    enabled: { type: "boolean" },
    running: { type: "boolean" },
    containers: {
      type: "array",
      items: {
        type: "object",
        properties: {
          container: { type: "string" },
          instance: { type: "string" },
          state: {
            type: "string",
            enum: ["running", "paused", "restarting", "exited", "created", "missing"],
          },
          exitCode: nullableInteger,
          restartCount: { type: "integer" },
          startedAt: nullableInteger,
          finishedAt: nullableInteger,
          oomKilled: { type: "boolean" },
          error: { type: ["string", "null"] },
          health: {
            type: "object",
            properties: {
              status: { type: "string", enum: ["healthy", "unhealthy", "starting", "none"] },
              failingStreak: { type: "integer" },
              lastOutput: { type: ["string", "null"] },
              lastExitCode: nullableInteger,
              lastCheckAt: nullableInteger,
              nextCheckAt: nullableInteger,
            },
          },
        },
      },
    },
  },
} as const;

type PageQuery = { instance?: string; search?: string; before?: string; limit: number };
type StreamQuery = { instance?: string; search?: string; tail: number };

/** Logs and health output may show secrets an app prints: administrators only, unless the setting opens them. */
const LOGS_ACCESS: Access = { usersWhen: "apps.logs_for_users" };

/** Logs (paged and live) and health of installed apps. */
export function registerAppLogRoutes(api: FastifyInstance, options: ApiOptions): void {
  api.get<{ Params: AppParams; Querystring: PageQuery }>(
    "/apps/:repo/:name/logs",
    {
      config: { access: LOGS_ACCESS },
      schema: {
        summary:
          "A page of an app's logs (all its containers, or one instance), newest last; `before` pages back",
        params: appParams,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            instance: instanceParam,
            search: searchParam,
            before: { type: "string", maxLength: 40, pattern: "^[0-9]+\\.[0-9]+\\.[0-9]+$" },
            limit: { type: "integer", minimum: 1, maximum: MAX_LOG_PAGE, default: 200 },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["items", "before", "partial", "scannedBytes"],
            properties: {
              items: { type: "array", items: logEntrySchema },
              before: { type: ["string", "null"] },
              partial: { type: "boolean" },
              scannedBytes: { type: "integer" },
            },
          },
        },
      },
    },
    async (request) => {
      const { instance, search, before, limit } = request.query;
      return services(options).monitor.logs(request.params.repo, request.params.name, {
        limit,
        ...(instance === undefined ? {} : { instance }),
        ...(search === undefined ? {} : { search }),
        ...(before === undefined ? {} : { before }),
      });
    },
  );

  api.get<{ Params: AppParams; Querystring: StreamQuery }>(
    "/apps/:repo/:name/logs/stream",
    {
      config: { access: LOGS_ACCESS },
      schema: {
        summary: `An app's logs, live (text/event-stream): the last \`tail\` lines, then new ones; one JSON event per \`data:\` line, a comment every ${HEARTBEAT_MS / 1000} s`,
        params: appParams,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            instance: instanceParam,
            search: searchParam,
            tail: { type: "integer", minimum: 0, maximum: MAX_LOG_PAGE, default: 100 },
          },
        },
      },
    },
    async (request, reply) => {
      const { instance, search, tail } = request.query;
      const gone = new AbortController();
      // Checked before the stream starts, so an unknown app is a plain 404 problem.
      const events = services(options).monitor.follow(request.params.repo, request.params.name, {
        tail,
        signal: gone.signal,
        ...(instance === undefined ? {} : { instance }),
        ...(search === undefined ? {} : { search }),
      });
      // The client went away (or the server closes): every Podman stream behind it ends.
      reply.raw.once("close", () => {
        gone.abort();
      });
      return reply
        .headers(SSE_HEADERS)
        .send(Readable.from(sseStream(events, { signal: gone.signal }), { objectMode: false }));
    },
  );

  api.get<{ Params: AppParams }>(
    "/apps/:repo/:name/health",
    {
      config: { access: LOGS_ACCESS },
      schema: {
        summary:
          "Each container of an app: state, exit code, restarts, and its image's healthcheck",
        params: appParams,
        response: { 200: healthSchema },
      },
    },
    async (request) => services(options).monitor.health(request.params.repo, request.params.name),
  );
}
