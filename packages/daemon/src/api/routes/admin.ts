import type { FastifyInstance } from "fastify";
import { TownError } from "@townos/format";
import type { SettingView } from "../../store/settings.js";
import { pageOf, pageQuerySchema, pageSchema, type PageQuery, type Sortable } from "../paging.js";
import { type ApiOptions, services } from "../context.js";

const auditEntrySchema = {
  type: "object",
  required: ["id", "at", "username", "action", "target", "detail", "outcome", "error", "source"],
  properties: {
    id: { type: "integer" },
    at: { type: "integer" },
    username: { type: ["string", "null"] },
    action: { type: "string" },
    target: { type: "string" },
    detail: { type: "object", additionalProperties: true },
    outcome: { type: "string" },
    error: { type: ["string", "null"] },
    source: { type: "string" },
  },
} as const;

const settingSchema = {
  type: "object",
  required: ["key", "type", "value", "default", "description"],
  properties: {
    key: { type: "string" },
    type: { type: "string" },
    value: { type: ["string", "number", "boolean"] },
    default: { type: ["string", "number", "boolean"] },
    description: { type: "string" },
  },
} as const;

const settingSortable: Sortable<SettingView> = {
  defaultSort: "key",
  fields: { key: (setting) => setting.key },
  text: (setting) => `${setting.key} ${setting.description}`,
};

type AuditQuery = PageQuery & {
  action?: string;
  username?: string;
  outcome?: "success" | "failure";
};

export function registerAdminRoutes(api: FastifyInstance, options: ApiOptions): void {
  api.get<{ Querystring: AuditQuery }>(
    "/audit",
    {
      config: { access: "admin" },
      schema: {
        summary: "Search the audit log, newest first (sort=id for oldest first)",
        querystring: {
          type: "object",
          properties: {
            ...pageQuerySchema,
            sort: { type: "string", enum: ["id", "-id"] },
            action: { type: "string", maxLength: 64 },
            username: { type: "string", maxLength: 64 },
            outcome: { type: "string", enum: ["success", "failure"] },
          },
        },
        response: { 200: pageSchema(auditEntrySchema) },
      },
    },
    async (request) => {
      const query = request.query;
      const offset = query.offset ?? 0;
      const limit = query.limit ?? 50;
      const page = services(options).audit.search({
        offset,
        limit,
        search: query.q,
        action: query.action,
        username: query.username,
        outcome: query.outcome,
        order: query.sort === "id" ? "asc" : "desc",
      });
      return { ...page, offset, limit };
    },
  );

  api.get<{ Querystring: PageQuery }>(
    "/settings",
    {
      config: { access: "user" },
      schema: {
        summary: "All settings with their values and defaults",
        querystring: { type: "object", properties: pageQuerySchema },
        response: { 200: pageSchema(settingSchema) },
      },
    },
    async (request) => pageOf(services(options).settings.list(), request.query, settingSortable),
  );

  api.put<{ Params: { key: string }; Body: { value: unknown } }>(
    "/settings/:key",
    {
      config: {
        access: "admin",
        audit: { action: "setting.set", target: (r) => (r.params as { key: string }).key },
      },
      schema: {
        summary: "Change a setting (sizes and durations may carry units: 20gb, 1h)",
        params: { type: "object", properties: { key: { type: "string", maxLength: 64 } } },
        body: {
          type: "object",
          required: ["value"],
          additionalProperties: false,
          properties: { value: { type: ["string", "number", "boolean"] } },
        },
        response: { 200: settingSchema },
      },
    },
    async (request) => {
      if (request.body.value === undefined)
        throw new TownError("invalid_argument", "value is required");
      return services(options).settings.set(request.params.key, request.body.value);
    },
  );
}
