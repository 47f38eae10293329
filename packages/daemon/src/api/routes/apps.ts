import type { FastifyInstance, FastifyRequest } from "fastify";
import type { AppView } from "../../apps/apps.js";
import { pageOf, pageQuerySchema, pageSchema, type PageQuery, type Sortable } from "../paging.js";
import type { ApiOptions } from "../server.js";
import { nameParam, portSchema, volumeSchema } from "./schemas.js";
import { services } from "./system.js";

const appSchema = {
  type: "object",
  required: ["repo", "name", "version", "enabled", "containers", "lastError"],
  properties: {
    repo: { type: "string" },
    name: { type: "string" },
    version: { type: "string" },
    enabled: { type: "boolean" },
    installedAt: { type: "integer" },
    ports: { type: "array", items: portSchema },
    volumes: { type: "array", items: volumeSchema },
    notes: {
      type: "array",
      items: {
        type: "object",
        properties: {
          label: { type: "string" },
          value: { type: "string" },
          type: { type: "string" },
        },
      },
    },
    containers: {
      type: "array",
      items: {
        type: "object",
        properties: { name: { type: "string" }, state: { type: "string" } },
      },
    },
    lastError: { type: ["string", "null"] },
  },
} as const;

const appParams = { type: "object", properties: { repo: nameParam, name: nameParam } } as const;

const appSortable: Sortable<AppView> = {
  defaultSort: "name",
  fields: {
    name: (app) => `${app.name}\u0000${app.repo}`,
    repo: (app) => `${app.repo}\u0000${app.name}`,
    installedAt: (app) => app.installedAt,
  },
  text: (app) => `${app.repo}/${app.name}`,
};

type InstallBody = {
  repo: string;
  name: string;
  version?: string;
  answers?: Record<string, string>;
};
type AppParams = { repo: string; name: string };

const appTarget = (request: FastifyRequest): string => {
  const { repo, name } = request.params as AppParams;
  return `${repo}/${name}`;
};

export function registerAppRoutes(api: FastifyInstance, options: ApiOptions): void {
  api.get<{ Querystring: PageQuery }>(
    "/apps",
    {
      config: { access: "user" },
      schema: {
        summary: "Installed apps with the state of their containers",
        querystring: { type: "object", properties: pageQuerySchema },
        response: { 200: pageSchema(appSchema) },
      },
    },
    async (request) => pageOf(await services(options).apps.list(), request.query, appSortable),
  );

  api.post<{ Body: InstallBody }>(
    "/apps",
    {
      config: {
        access: "admin",
        audit: {
          action: "app.install",
          target: (r) => `${(r.body as InstallBody).repo}/${(r.body as InstallBody).name}`,
          // Answers may be passwords under any question name: only which were given is kept.
          detail: (r) => {
            const body = r.body as InstallBody | undefined;
            return { version: body?.version, answered: Object.keys(body?.answers ?? {}).sort() };
          },
        },
      },
      schema: {
        summary:
          "Install a package: 201 once its first reconcile finished, 202 when that takes longer than a minute",
        body: {
          type: "object",
          required: ["repo", "name"],
          additionalProperties: false,
          properties: {
            repo: nameParam,
            name: nameParam,
            version: { type: "string", minLength: 1, maxLength: 64 },
            answers: {
              type: "object",
              maxProperties: 200,
              additionalProperties: { type: "string", maxLength: 4096 },
            },
          },
        },
        response: { 201: appSchema, 202: appSchema },
      },
    },
    async (request, reply) => {
      const { repo, name, version, answers } = request.body;
      const { app, settled } = await services(options).apps.install({
        repo,
        name,
        ...(version === undefined ? {} : { version }),
        answers: answers ?? {},
      });
      return reply.status(settled ? 201 : 202).send(app);
    },
  );

  api.get<{ Params: AppParams }>(
    "/apps/:repo/:name",
    {
      config: { access: "user" },
      schema: {
        summary: "One app: version, ports, volumes, notes, container states and its last error",
        params: appParams,
        response: { 200: appSchema },
      },
    },
    async (request) => services(options).apps.view(request.params.repo, request.params.name),
  );

  api.delete<{ Params: AppParams; Querystring: { purge?: boolean } }>(
    "/apps/:repo/:name",
    {
      config: { access: "admin", audit: { action: "app.uninstall", target: appTarget } },
      schema: {
        summary:
          "Uninstall an app: its volumes are moved aside, or deleted with purge=true (204 when done, 202 while it goes on)",
        params: appParams,
        querystring: { type: "object", properties: { purge: { type: "boolean" } } },
      },
    },
    async (request, reply) => {
      const { repo, name } = request.params;
      const settled = await services(options).apps.uninstall(
        repo,
        name,
        request.query.purge === true,
      );
      return reply.status(settled ? 204 : 202).send();
    },
  );
}
