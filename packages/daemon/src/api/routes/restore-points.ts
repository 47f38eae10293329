import { Type } from "@sinclair/typebox";
import { TownError } from "@townos/format";
import type { FastifyInstance } from "fastify";
import {
  AppParamsSchema,
  RestorePointIdParam,
  RestorePointViewSchema,
  RollbackBody,
  RollbackResultSchema,
  type AppParams,
  type RestorePointView,
  type RollbackResult,
} from "@townos/api";
import { type ApiOptions, services } from "../context.js";
import { appTarget } from "./apps.js";

const PointParamsSchema = Type.Object({
  repo: AppParamsSchema.properties.repo,
  name: AppParamsSchema.properties.name,
  id: RestorePointIdParam,
});

/** An app's restore points and its rollback. Admin only: a point shows the app's answers, secrets included. */
export function registerRestorePointRoutes(api: FastifyInstance, options: ApiOptions): void {
  api.get<{ Params: AppParams; Reply: RestorePointView[] }>(
    "/apps/:repo/:name/restore-points",
    {
      config: { access: "admin" },
      schema: {
        summary: "An app's restore points, newest first, with the sizes of their snapshots",
        params: AppParamsSchema,
        response: { 200: Type.Array(RestorePointViewSchema) },
      },
    },
    async (request) => {
      const { repo, name } = request.params;
      const { installs, restorePoints } = services(options);
      if (!installs.get(repo, name)) {
        throw new TownError("not_found", `${repo}/${name} is not installed`);
      }
      const views = [];
      for (const point of restorePoints.list(`${repo}/${name}`)) {
        views.push(await restorePoints.view(point));
      }
      return views;
    },
  );

  api.post<{ Params: AppParams; Reply: RestorePointView }>(
    "/apps/:repo/:name/restore-points",
    {
      config: { access: "admin", audit: { action: "app.restore_point", target: appTarget } },
      schema: {
        summary: "Take a restore point of an app now (quiesced as its package declares)",
        params: AppParamsSchema,
        body: Type.Object({}, { additionalProperties: false }),
        response: { 201: RestorePointViewSchema },
      },
    },
    async (request, reply) => {
      const { restorePoints } = services(options);
      const { repo, name } = request.params;
      const point = await restorePoints.take(`${repo}/${name}`, "manual");
      return reply.status(201).send(await restorePoints.view(point));
    },
  );

  api.delete<{ Params: AppParams & { id: string } }>(
    "/apps/:repo/:name/restore-points/:id",
    {
      config: {
        access: "admin",
        audit: { action: "app.restore_point.delete", target: appTarget },
      },
      schema: {
        summary: "Delete one of an app's restore points (its snapshots)",
        params: PointParamsSchema,
      },
    },
    async (request, reply) => {
      const { repo, name, id } = request.params;
      const { restorePoints } = services(options);
      restorePoints.get(`${repo}/${name}`, id);
      await restorePoints.remove(`${repo}/${name}`, id);
      return reply.status(204).send();
    },
  );

  api.post<{ Params: AppParams; Body: RollbackBody; Reply: RollbackResult }>(
    "/apps/:repo/:name/rollback",
    {
      config: { access: "admin", audit: { action: "app.rollback", target: appTarget } },
      schema: {
        summary:
          "Return an app to a restore point's version, answers and data (default: the newest taken before an upgrade); what it replaces is kept as a restore point first",
        params: AppParamsSchema,
        body: RollbackBody,
        response: { 200: RollbackResultSchema },
      },
    },
    async (request) => {
      const { repo, name } = request.params;
      return services(options).rollback(repo, name, request.body.to);
    },
  );
}
