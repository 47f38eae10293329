import type { FastifyInstance } from "fastify";
import {
  AccountParamsSchema,
  AccountSchema,
  CreateAccountBodySchema,
  PageQuerySchema,
  PageSchema,
  SessionParamsSchema,
  SessionSchema,
  UpdateAccountBodySchema,
  type Account as AccountWire,
  type CreateAccountBody,
  type Page,
  type PageQuery,
  type SessionInfo,
  type UpdateAccountBody,
} from "@townos/api";
import type { Account } from "../../auth/accounts.js";
import { pageOf, viewPage, type Sortable } from "../paging.js";
import { type ApiOptions, services } from "../context.js";

/** An account as the API shows it: its internal id stays in the daemon. */
export function accountView(account: Account): AccountWire {
  const { username, email, role, disabled, createdAt } = account;
  return { username, email, role, disabled, createdAt };
}

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

const sessionSortable: Sortable<SessionInfo> = {
  defaultSort: "-lastSeenAt",
  fields: { lastSeenAt: (s) => s.lastSeenAt, createdAt: (s) => s.createdAt },
  text: (s) => `${s.source} ${s.userAgent}`,
};

export function registerAccountRoutes(api: FastifyInstance, options: ApiOptions): void {
  api.get<{ Querystring: PageQuery; Reply: Page<AccountWire> }>(
    "/accounts",
    {
      config: { access: "admin" },
      schema: {
        summary: "List accounts",
        querystring: PageQuerySchema,
        response: { 200: PageSchema(AccountSchema) },
      },
    },
    async (request) =>
      viewPage(
        pageOf(services(options).accounts.list(), request.query, accountSortable),
        accountView,
      ),
  );

  api.post<{ Body: CreateAccountBody; Reply: { 201: AccountWire } }>(
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
        body: CreateAccountBodySchema,
        response: { 201: AccountSchema },
      },
    },
    async (request, reply) => {
      const account = await services(options).accounts.create({
        ...request.body,
        role: request.body.role ?? "user",
      });
      return reply.status(201).send(accountView(account));
    },
  );

  api.patch<{ Params: { username: string }; Body: UpdateAccountBody; Reply: AccountWire }>(
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
        params: AccountParamsSchema,
        body: UpdateAccountBodySchema,
        response: { 200: AccountSchema },
      },
    },
    async (request) => {
      const { accounts, sessions } = services(options);
      if (request.body.password !== undefined) {
        await accounts.setPassword(request.params.username, request.body.password);
        // Whoever knew the old password is signed out with it.
        sessions.revokeAllFor(accounts.byUsername(request.params.username).id);
      }
      return accountView(accounts.update(request.params.username, request.body));
    },
  );

  api.get<{ Querystring: PageQuery; Reply: Page<SessionInfo> }>(
    "/sessions",
    {
      config: { access: "user" },
      schema: {
        summary: "My sessions",
        querystring: PageQuerySchema,
        response: { 200: PageSchema(SessionSchema) },
      },
    },
    async (request) => {
      const auth = request.auth;
      const sessions = auth ? services(options).sessions.listFor(auth.account.id) : [];
      // The account id stays in the daemon: a session shows where and when it was used.
      const items = sessions.map(({ id, createdAt, lastSeenAt, source, userAgent }) => ({
        id,
        createdAt,
        lastSeenAt,
        source,
        userAgent,
        current: id === auth?.session.id,
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
        params: SessionParamsSchema,
      },
    },
    async (request, reply) => {
      services(options).sessions.revokeOwn(request.auth?.account.id ?? -1, request.params.id);
      return reply.status(204).send();
    },
  );
}
