import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import {
  SetStateBodySchema,
  SetStateSecretBodySchema,
  StateExportSchema,
  StateHookSchema,
  StateKeySchema,
  StateSecretParamsSchema,
  StateSecretsSchema,
  StateStatusSchema,
  type SetStateBody,
  type SetStateSecretBody,
  type StateExport,
  type StateHook,
  type StateKey,
  type StateSecrets,
  type StateStatus,
} from "@townos/api";
import { type ApiOptions, dashboardOrigin, services } from "../context.js";

const HookParams = Type.Object({ token: Type.String({ minLength: 1, maxLength: 128 }) });

/** GitOps: all admin-only (the repository's credentials, secrets, the box's whole state) but the webhook. */
export function registerStateRoutes(api: FastifyInstance, options: ApiOptions): void {
  const state = () => services(options).state;

  api.get<{ Reply: StateStatus }>(
    "/state",
    {
      config: { access: "admin" },
      schema: {
        summary:
          "The state repository followed, the commit the box is on, what it manages and the commits seen",
        response: { 200: StateStatusSchema },
      },
    },
    async () => state().status(),
  );

  api.put<{ Body: SetStateBody; Reply: StateStatus }>(
    "/state",
    {
      config: {
        access: "admin",
        audit: {
          action: "state.set",
          target: (r) => (r.body as SetStateBody).url.replace(/\/\/[^/@]*@/, "//"),
        },
      },
      schema: {
        summary:
          "Follow a state repository: the box becomes what it declares (a sync runs at once)",
        body: SetStateBodySchema,
        response: { 200: StateStatusSchema },
      },
    },
    async (request) => state().set(request.body),
  );

  api.delete(
    "/state",
    {
      config: { access: "admin", audit: { action: "state.unset", target: () => "state" } },
      schema: {
        summary: "Stop following the state repository; what it made stays, managed by hand",
      },
    },
    async (_request, reply) => {
      state().unset();
      return reply.status(204).send();
    },
  );

  api.post<{ Reply: StateStatus }>(
    "/state/sync",
    {
      config: { access: "admin", audit: { action: "state.sync", target: () => "state" } },
      schema: {
        summary: "Sync with the state repository now; answers once the sync ended",
        response: { 200: StateStatusSchema },
      },
    },
    async () => state().sync(),
  );

  api.get<{ Reply: StateHook }>(
    "/state/hook",
    {
      config: { access: "admin" },
      schema: {
        summary: "The webhook URL (with its secret token) a git host calls on a push",
        response: { 200: StateHookSchema },
      },
    },
    async (request) => ({
      url: `${dashboardOrigin(options, request)}/api/v1/state/hook/${state().hookToken()}`,
    }),
  );

  api.post<{ Params: { token: string } }>(
    "/state/hook/:token",
    {
      // The token is the credential: a git host has no session.
      config: { access: "public", audit: { action: "state.hook", target: () => "state" } },
      schema: {
        summary: "A git host's push: the box syncs soon; answers at once (202)",
        params: HookParams,
      },
    },
    async (request, reply) => {
      state().hook(request.params.token);
      return reply.code(202).send();
    },
  );

  api.get<{ Reply: StateKey }>(
    "/state/key",
    {
      config: { access: "admin" },
      schema: {
        summary: "The box's age public key: answers encrypted to it can be committed",
        response: { 200: StateKeySchema },
      },
    },
    async () => state().publicKey(),
  );

  api.get<{ Reply: StateExport }>(
    "/state/export",
    {
      config: { access: "admin", audit: { action: "state.export", target: () => "state" } },
      schema: {
        summary:
          "The box as a state repository's files; secret answers become secretRefs, stored as secrets here",
        response: { 200: StateExportSchema },
      },
    },
    async () => state().export(),
  );

  api.get<{ Reply: StateSecrets }>(
    "/state/secrets",
    {
      config: { access: "admin" },
      schema: {
        summary: "The names of the secrets answers can reference (values are never shown)",
        response: { 200: StateSecretsSchema },
      },
    },
    async () => ({ names: state().secretNames() }),
  );

  api.put<{ Params: { name: string }; Body: SetStateSecretBody }>(
    "/state/secrets/:name",
    {
      config: {
        access: "admin",
        audit: { action: "state.secret.set", target: (r) => (r.params as { name: string }).name },
      },
      schema: {
        summary: "Store a secret that answers in the state repository reference by name",
        params: StateSecretParamsSchema,
        body: SetStateSecretBodySchema,
      },
    },
    async (request, reply) => {
      state().setSecret(request.params.name, request.body.value);
      return reply.status(204).send();
    },
  );

  api.delete<{ Params: { name: string } }>(
    "/state/secrets/:name",
    {
      config: {
        access: "admin",
        audit: {
          action: "state.secret.remove",
          target: (r) => (r.params as { name: string }).name,
        },
      },
      schema: { summary: "Forget a secret", params: StateSecretParamsSchema },
    },
    async (request, reply) => {
      state().removeSecret(request.params.name);
      return reply.status(204).send();
    },
  );
}
