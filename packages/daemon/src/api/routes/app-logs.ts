import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import {
  AppHealthSchema,
  AppParamsSchema,
  LogPageSchema,
  LogStreamQuerySchema,
  LogsQuerySchema,
  type AppHealth,
  type AppParams,
  type LogPage,
  type LogStreamQuery,
  type LogsQuery,
} from "@townos/api";
import { type Access, type ApiOptions, services } from "../context.js";
import { HEARTBEAT_MS, SSE_HEADERS, sseStream } from "../sse.js";

/** Logs and health output may show secrets an app prints: administrators only, unless the setting opens them. */
const LOGS_ACCESS: Access = { usersWhen: "apps.logs_for_users" };

/** Logs (paged and live) and health of installed apps. */
export function registerAppLogRoutes(api: FastifyInstance, options: ApiOptions): void {
  // Fastify fills in the defaults: `limit` and `tail` are always there.
  api.get<{ Params: AppParams; Querystring: LogsQuery & { limit: number }; Reply: LogPage }>(
    "/apps/:repo/:name/logs",
    {
      config: { access: LOGS_ACCESS },
      schema: {
        summary:
          "A page of an app's logs (all its containers, or one instance), newest last; `before` pages back",
        params: AppParamsSchema,
        querystring: LogsQuerySchema,
        response: { 200: LogPageSchema },
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

  api.get<{ Params: AppParams; Querystring: LogStreamQuery & { tail: number } }>(
    "/apps/:repo/:name/logs/stream",
    {
      config: { access: LOGS_ACCESS },
      schema: {
        summary: `An app's logs, live (text/event-stream): the last \`tail\` lines, then new ones; one JSON event per \`data:\` line, a comment every ${HEARTBEAT_MS / 1000} s`,
        params: AppParamsSchema,
        querystring: LogStreamQuerySchema,
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

  api.get<{ Params: AppParams; Reply: AppHealth }>(
    "/apps/:repo/:name/health",
    {
      config: { access: LOGS_ACCESS },
      schema: {
        summary:
          "Each container of an app: state, exit code, restarts, and its image's healthcheck",
        params: AppParamsSchema,
        response: { 200: AppHealthSchema },
      },
    },
    async (request) => services(options).monitor.health(request.params.repo, request.params.name),
  );
}
