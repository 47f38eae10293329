import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  AccountSchema,
  LoginBodySchema,
  SetupBodySchema,
  SignedInSchema,
  StatusSchema,
  SystemUsageSchema,
  OsInfoSchema,
  type Account as AccountWire,
  type OsInfo,
  type LoginBody,
  type SetupBody,
  type SignedIn,
  type Status,
  type SystemUsage,
} from "@townos/api";
import { TownError } from "@townos/format";
import type { Account } from "../../auth/accounts.js";
import { SESSION_IDLE_MS } from "../../auth/sessions.js";
import { type ApiOptions, services, SESSION_COOKIE } from "../context.js";
import { UsageSampler } from "../../system/usage.js";
import { readOsInfo } from "../../system/os-info.js";
import { accountView } from "./accounts.js";

export function registerSystemRoutes(api: FastifyInstance, options: ApiOptions): void {
  const usage = new UsageSampler();
  api.get<{ Reply: SystemUsage }>(
    "/system/usage",
    {
      config: { access: "user" },
      schema: {
        summary: "How busy the box is: CPU since the last look, load, memory and uptime",
        response: { 200: SystemUsageSchema },
      },
    },
    async () => usage.sample(),
  );

  api.get<{ Reply: OsInfo }>(
    "/system/os",
    {
      config: { access: "user" },
      schema: {
        summary:
          "The running Town OS image, and whether the data is on a disk or in RAM (lost at reboot)",
        response: { 200: OsInfoSchema },
      },
    },
    async () => readOsInfo(options.osFiles),
  );

  api.get<{ Reply: Status }>(
    "/status",
    {
      config: { access: "public", duringBoot: true },
      schema: {
        summary: "Whether the daemon is booting or ready, and whether first-run setup is needed",
        response: { 200: StatusSchema },
      },
    },
    async () => ({
      state: options.boot.state,
      step: options.boot.step,
      error: options.boot.error,
      version: options.version,
      setupNeeded: options.boot.services ? options.boot.services.accounts.setupNeeded : null,
    }),
  );

  api.get(
    "/openapi.json",
    { config: { access: "public", duringBoot: true }, schema: { hide: true } },
    async () => api.swagger(),
  );

  registerMetricsRoute(api, options);

  api.post<{ Body: SetupBody; Reply: { 201: SignedIn } }>(
    "/setup",
    {
      config: {
        access: "public",
        audit: { action: "setup", target: (request) => bodyUsername(request) },
      },
      schema: {
        summary:
          "First run: create the first administrator (only while no account exists, with the setup code the daemon logged)",
        body: SetupBodySchema,
        response: { 201: SignedInSchema },
      },
    },
    async (request, reply) => {
      const { accounts, throttle, setupCode } = services(options);
      // Cheapest refusals first: no password work once set up, or for a wrong code.
      accounts.checkSetupNeeded();
      const attempt = throttle.reserve(request.ip);
      setupCode.check(request.body.setupCode);
      const { username, password, email } = request.body;
      const account = await accounts.setup({ username, password, email });
      throttle.succeed(attempt);
      await setupCode.clear();
      const { token, session } = startSession(options, account, request, reply);
      request.auth = { account, session };
      return reply.status(201).send({ token, account: accountView(account) });
    },
  );

  api.post<{ Body: LoginBody; Reply: SignedIn }>(
    "/auth/login",
    {
      config: {
        access: "public",
        audit: { action: "auth.login", target: (request) => bodyUsername(request) },
      },
      schema: {
        summary: "Sign in; the token also comes as an HttpOnly cookie",
        body: LoginBodySchema,
        response: { 200: SignedInSchema },
      },
    },
    async (request, reply) => {
      const { accounts, throttle } = services(options);
      if (accounts.setupNeeded)
        throw new TownError("setup_required", "create the first account first");
      // The slot is taken before the first await: parallel guesses cannot all pass the check.
      const attempt = throttle.reserve(request.ip, request.body.username);
      const account = await accounts.authenticate(request.body.username, request.body.password);
      if (!account) throw new TownError("unauthenticated", "wrong username or password");
      throttle.succeed(attempt);
      const { token, session } = startSession(options, account, request, reply);
      request.auth = { account, session };
      return { token, account: accountView(account) };
    },
  );

  api.post(
    "/auth/logout",
    {
      config: {
        access: "user",
        audit: { action: "auth.logout", target: (request) => request.auth?.account.username ?? "" },
      },
      schema: { summary: "End the current session" },
    },
    async (request, reply) => {
      if (request.auth) services(options).sessions.revoke(request.auth.session.id);
      return reply
        .clearCookie(SESSION_COOKIE, { path: "/", httpOnly: true, sameSite: "strict" })
        .status(204)
        .send();
    },
  );

  api.get<{ Reply: AccountWire }>(
    "/auth/me",
    {
      config: { access: "user" },
      schema: { summary: "The signed-in account", response: { 200: AccountSchema } },
    },
    async (request) => {
      // Only signed-in callers get here (access "user").
      if (!request.auth) throw new TownError("unauthenticated", "sign in first");
      return accountView(request.auth.account);
    },
  );
}

/** Issues a session and sets its cookie for browsers; the token is also returned for the CLI. */
function startSession(
  options: ApiOptions,
  account: Account,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  const issued = services(options).sessions.issue(
    account,
    request.ip,
    request.headers["user-agent"] ?? "",
  );
  void reply.setCookie(SESSION_COOKIE, issued.token, {
    path: "/",
    httpOnly: true,
    sameSite: "strict",
    maxAge: SESSION_IDLE_MS / 1000,
    secure: request.protocol === "https",
  });
  return issued;
}

function bodyUsername(request: FastifyRequest): string {
  const body = request.body as { username?: unknown } | undefined;
  return typeof body?.username === "string" ? body.username : "";
}

/**
 * Prometheus metrics at `/metrics` of the scope it is registered in: at the
 * root, where scrapers look by convention, and under the API prefix.
 */
export function registerMetricsRoute(app: FastifyInstance, options: ApiOptions): void {
  app.get(
    "/metrics",
    { config: { access: "public" }, schema: { hide: true } },
    async (request, reply) => {
      // Prometheus on the box scrapes over loopback; anyone else must be an administrator.
      const loopback =
        request.ip === "127.0.0.1" || request.ip === "::1" || request.ip === "::ffff:127.0.0.1";
      if (!loopback && request.auth?.account.role !== "admin") {
        throw new TownError(
          request.auth ? "forbidden" : "unauthenticated",
          "metrics are for administrators",
        );
      }
      return reply.type(options.metrics.contentType).send(await options.metrics.text());
    },
  );
}
