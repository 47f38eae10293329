import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  AuditEntrySchema,
  AuditQuerySchema,
  PageQuerySchema,
  PageSchema,
  SetSettingBodySchema,
  SettingKeyParamsSchema,
  SettingSchema,
  type AuditEntry,
  type AuditQuery,
  type Page,
  type PageQuery,
  type SetSettingBody,
  type Setting,
} from "@townos/api";
import type { SettingView } from "../../store/settings.js";
import { pageOf, type Sortable } from "../paging.js";
import { type ApiOptions, services } from "../context.js";
import { managedAs } from "../managed.js";

const settingSortable: Sortable<SettingView> = {
  defaultSort: "key",
  fields: { key: (setting) => setting.key },
  text: (setting) => `${setting.key} ${setting.description}`,
};

const settingTarget = (request: FastifyRequest): string => (request.params as { key: string }).key;

export function registerAdminRoutes(api: FastifyInstance, options: ApiOptions): void {
  api.get<{ Querystring: AuditQuery; Reply: Page<AuditEntry> }>(
    "/audit",
    {
      config: { access: "admin" },
      schema: {
        summary: "Search the audit log, newest first (sort=id for oldest first)",
        querystring: AuditQuerySchema,
        response: { 200: PageSchema(AuditEntrySchema) },
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

  api.get<{ Querystring: PageQuery; Reply: Page<Setting> }>(
    "/settings",
    {
      config: { access: "user" },
      schema: {
        summary: "All settings with their values and defaults",
        querystring: PageQuerySchema,
        response: { 200: PageSchema(SettingSchema) },
      },
    },
    async (request) => pageOf(services(options).settings.list(), request.query, settingSortable),
  );

  api.put<{ Params: { key: string }; Body: SetSettingBody; Reply: Setting }>(
    "/settings/:key",
    {
      config: {
        access: "admin",
        managed: managedAs("setting", settingTarget),
        audit: { action: "setting.set", target: settingTarget },
      },
      schema: {
        summary: "Change a setting (sizes and durations may carry units: 20gb, 1h)",
        params: SettingKeyParamsSchema,
        body: SetSettingBodySchema,
        response: { 200: SettingSchema },
      },
    },
    async (request) => services(options).settings.set(request.params.key, request.body.value),
  );
}
