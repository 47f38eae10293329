import type { FastifyInstance } from "fastify";
import type { Account, Role } from "../../auth/accounts.js";
import type { Session } from "../../auth/sessions.js";
import { pageOf, pageQuerySchema, pageSchema, type PageQuery, type Sortable } from "../paging.js";
import { type ApiOptions, services } from "../context.js";
import { accountSchema, credentialsSchema, nameParam } from "./schemas.js";

const sessionSchema = {
  type: "object",
  required: ["id", "createdAt", "lastSeenAt", "source", "userAgent", "current"],
  properties: {
    id: { type: "string" },
    createdAt: { type: "integer" },
    lastSeenAt: { type: "integer" },
    source: { type: "string" },
    userAgent: { type: "string" },
    current: { type: "boolean" },
  },
} as const;

const accountSortable: Sortable<Account> = {
  defaultSort: "username",
  fields: {
    username: (a) => a.username.toLowerCase(),
    role: (a) => a.role,
    disabled: (a) => a.disabled,
    createdAt: (a) => a.createdAt,
  },
  text: (a) => `${a.username} ${a.email ?? ""}`,
};

const sessionSortable: Sortable<Session & { current: boolean }> = {
  defaultSort: "-lastSeenAt",
  fields: { lastSeenAt: (s) => s.lastSeenAt, createdAt: (s) => s.createdAt },
  text: (s) => `${s.source} ${s.userAgent}`,
};

export function registerAccountRoutes(api: FastifyInstance, options: ApiOptions): void {
  api.get<{ Querystring: PageQuery }>(
    "/accounts",
    {
      config: { access: "admin" },
      schema: {
        summary: "List accounts",
        querystring: { type: "object", properties: pageQuerySchema },
        response: { 200: pageSchema(accountSchema) },
      },
    },
    async (request) => pageOf(services(options).accounts.list(), request.query, accountSortable),
  );

  api.post<{ Body: { username: string; password: string; email?: string; role?: Role } }>(
    "/accounts",
    {
      config: {
        access: "admin",
        audit: {
          action: "account.create",
          target: (r) => (r.body as { username: string }).username,
        },
      },
      schema: {
        summary: "Create an account",
        body: {
          ...credentialsSchema,
          properties: {
            ...credentialsSchema.properties,
            role: { type: "string", enum: ["admin", "user"] },
          },
        },
        response: { 201: accountSchema },
      },
    },
    async (request, reply) => {
      const account = await services(options).accounts.create({
        ...request.body,
        role: request.body.role ?? "user",
      });
      return reply.status(201).send(account);
    },
  );

  api.patch<{
    Params: { username: string };
    Body: { disabled?: boolean; role?: Role; password?: string };
  }>(
    "/accounts/:username",
    {
      config: {
        access: "admin",
        audit: {
          action: "account.update",
          target: (r) => (r.params as { username: string }).username,
        },
      },
      schema: {
        summary: "Disable, enable, promote or demote an account, or set its password",
        params: { type: "object", properties: { username: nameParam } },
        body: {
          type: "object",
          additionalProperties: false,
          minProperties: 1,
          properties: {
            disabled: { type: "boolean" },
            role: { type: "string", enum: ["admin", "user"] },
            password: { type: "string", minLength: 1, maxLength: 1024 },
          },
        },
        response: { 200: accountSchema },
      },
    },
    async (request) => {
      const { accounts, sessions } = services(options);
      if (request.body.password !== undefined) {
        await accounts.setPassword(request.params.username, request.body.password);
        // Whoever knew the old password is signed out with it.
        sessions.revokeAllFor(accounts.byUsername(request.params.username).id);
      }
      return accounts.update(request.params.username, request.body);
    },
  );

  api.get<{ Querystring: PageQuery }>(
    "/sessions",
    {
      config: { access: "user" },
      schema: {
        summary: "My sessions",
        querystring: { type: "object", properties: pageQuerySchema },
        response: { 200: pageSchema(sessionSchema) },
      },
    },
    async (request) => {
      const auth = request.auth;
      const sessions = auth ? services(options).sessions.listFor(auth.account.id) : [];
      const items = sessions.map((session) => ({
        ...session,
        current: session.id === auth?.session.id,
      }));
      return pageOf(items, request.query, sessionSortable);
    },
  );

  api.delete<{ Params: { id: string } }>(
    "/sessions/:id",
    {
      config: {
        access: "user",
        audit: { action: "session.revoke", target: (r) => r.auth?.account.username ?? "" },
      },
      schema: {
        summary: "Revoke one of my sessions",
        params: { type: "object", properties: { id: { type: "string", maxLength: 64 } } },
      },
    },
    async (request, reply) => {
      services(options).sessions.revokeOwn(request.auth?.account.id ?? -1, request.params.id);
      return reply.status(204).send();
    },
  );
}
