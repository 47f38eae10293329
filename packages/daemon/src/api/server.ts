import { createServer } from "node:http";
import cookie from "@fastify/cookie";
import helmet from "@fastify/helmet";
import swagger from "@fastify/swagger";
import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import { TownError } from "@townos/format";
import type { Settings } from "../store/settings.js";
import { redact } from "../redact.js";
import { invalidInputDetail } from "../store/audit.js";
import { SESSION_COOKIE, type Access, type ApiOptions, type AuditConfig } from "./context.js";
import { asTownError, PROBLEM_CONTENT_TYPE, toProblem } from "./problem.js";
import { registerAppRoutes } from "./routes/apps.js";
import { registerAppLogRoutes } from "./routes/app-logs.js";
import { registerBackupRoutes } from "./routes/backups.js";
import { registerAccountRoutes } from "./routes/accounts.js";
import { registerAdminRoutes } from "./routes/admin.js";
import { registerCatalogRoutes } from "./routes/catalog.js";
import { registerCaRoute, registerNetRoutes } from "./routes/net.js";
import { registerMonitoringRoutes } from "./routes/monitoring.js";
import { registerOAuthRoutes } from "./routes/oauth.js";
import { registerPageRoutes } from "./routes/pages.js";
import { registerSshKeyRoutes } from "./routes/ssh-keys.js";
import { registerNetworkSettingsRoutes } from "./routes/network-settings.js";
import { registerConsolePasswordRoutes } from "./routes/console-password.js";
import { registerStateRoutes } from "./routes/state.js";
import { registerRestorePointRoutes } from "./routes/restore-points.js";
import { registerMetricsRoute, registerSystemRoutes } from "./routes/system.js";
import { registerVmImageRoutes } from "./routes/vm-images.js";
import { registerVolumeRoutes } from "./routes/volumes.js";
import { lazySchemaCompilers } from "./lazy-schemas.js";
import { canonicalTarget } from "./request-target.js";
import { checkResponses } from "./response-check.js";
import { registerWeb, sendDashboardPage, wantsDashboardPage } from "./web.js";

export const API_PREFIX = "/api/v1";
/** JSON bodies are small; uploads get their own limits later. */
const BODY_LIMIT = 256 * 1024;

/** Who may call a route now: a setting-dependent access resolved against the settings. */
export function resolveAccess(
  access: Access,
  settings: Pick<Settings, "flag"> | undefined,
): "public" | "user" | "admin" {
  if (typeof access === "string") return access;
  return settings?.flag(access.usersWhen) === true ? "user" : "admin";
}

/** Each API's deferred schema compiling (see lazy-schemas.ts). */
const schemaCompilers = new WeakMap<FastifyInstance, () => void>();

/** Compiles every route's schemas now (tests: a broken schema fails without its route being called). */
export function compileAllSchemas(app: FastifyInstance): void {
  schemaCompilers.get(app)?.();
}

/** The daemon's HTTP API, with every route, hook and error path. */
export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  const logger =
    options.logger === false
      ? false
      : {
          level: options.logger === true ? "info" : options.logger.level,
          ...(options.logger !== true && options.logger.stream
            ? { stream: options.logger.stream }
            : {}),
          redact: {
            paths: ["req.headers.authorization", "req.headers.cookie", 'res.headers["set-cookie"]'],
            censor: "[redacted]",
          },
        };
  const schemas = lazySchemaCompilers();
  const app = Fastify({
    logger,
    bodyLimit: BODY_LIMIT,
    // Odd request targets are refused before the router sees them (see request-target.ts).
    serverFactory: (handler) =>
      createServer((request, response) => {
        const target = canonicalTarget(request.url ?? "");
        if (!target.ok) {
          const problem = toProblem(new TownError("invalid_argument", target.reason));
          response.writeHead(problem.status, { "content-type": PROBLEM_CONTENT_TYPE });
          response.end(JSON.stringify(problem));
          return;
        }
        request.url = target.url;
        handler(request, response);
      }),
    // Metrics count requests and the audit log records changes: a line per request only when debugging.
    logController: new LogController({
      disableRequestLogging: logger === false || !["trace", "debug"].includes(logger.level),
    }),
    trustProxy: "127.0.0.1",
    // Volume names reach 255 bytes (uninstalled ones are long): the default of 100 would 404 them.
    routerOptions: { maxParamLength: 256 },
    schemaController: {
      compilersFactory: {
        buildValidator: schemas.buildValidator,
        buildSerializer: schemas.buildSerializer,
      },
    },
    ajv: {
      customOptions: {
        removeAdditional: false,
        coerceTypes: "array",
        allErrors: true,
        allowUnionTypes: true,
      },
    },
  });
  app.decorateRequest("auth", undefined);
  app.decorateRequest("failure", undefined);

  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: { title: "Town OS", version: options.version, description: "The Town OS daemon API" },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer" },
          cookie: { type: "apiKey", in: "cookie", name: SESSION_COOKIE },
        },
      },
      security: [{ bearer: [] }, { cookie: [] }],
    },
    // Each operation says who may call it; public ones need no credentials.
    transform: ({ schema, url, route }) => {
      const access = route.config?.access ?? "admin";
      // A setting-dependent route is an admin route that a switch may open to every account.
      return {
        url,
        schema: {
          ...schema,
          "x-town-access": typeof access === "string" ? access : "admin",
          ...(typeof access === "string" ? {} : { "x-town-users-when": access.usersWhen }),
          ...(access === "public" ? { security: [] } : {}),
        },
      };
    },
  });
  await app.register(cookie);
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    xFrameOptions: { action: "deny" },
    referrerPolicy: { policy: "no-referrer" },
    // The box's certificates come from a local CA that a device may not trust yet: pinning HTTPS would lock it out.
    strictTransportSecurity: false,
  });

  app.setErrorHandler((error, request, reply) => {
    const failure = asTownError(error);
    request.failure = failure;
    if (failure.code === "internal") request.log.error({ err: error }, "request failed");
    void sendProblem(reply, failure);
  });
  const web = options.webRoot !== undefined && (await registerWeb(app, options.webRoot));
  app.setNotFoundHandler((request, reply) => {
    if (web && wantsDashboardPage(request)) return sendDashboardPage(reply);
    const failure = new TownError(
      "not_found",
      `there is no ${request.method} ${request.url.split("?")[0] ?? ""}`,
    );
    request.failure = failure;
    return sendProblem(reply, failure);
  });

  app.addHook("onRequest", async (request) => {
    options.metrics.started(request);
    // Unknown URLs answer 404 to everyone (the API is documented, so nothing is revealed), or the page.
    if (request.is404) return;
    const config = request.routeOptions.config;
    if (options.boot.state !== "ready" && !config.duringBoot) {
      throw new TownError(
        options.boot.state === "failed" ? "unavailable" : "booting",
        options.boot.state === "failed"
          ? `Town OS failed to start: ${options.boot.error ?? "unknown error"}`
          : `Town OS is starting (${options.boot.step})`,
        { retryAfter: 2 },
      );
    }
    // The dashboard's own files: anyone may fetch them, no session is looked at.
    if (config.web) return;
    authenticate(request, options);
    const access = resolveAccess(config.access ?? "admin", options.boot.services?.settings);
    if (access !== "public" && !request.auth) {
      throw new TownError("unauthenticated", "sign in first");
    }
    if (access === "admin" && request.auth?.account.role !== "admin") {
      throw new TownError("forbidden", "only administrators may do this");
    }
    const managed = config.managed?.(request);
    if (managed && options.boot.services?.state.isManaged(managed.kind, managed.name)) {
      throw new TownError(
        "conflict",
        `${managed.kind} ${managed.name} is declared in the state repository: change it there (a change made here would be undone by the next sync)`,
      );
    }
  });

  if (options.checkResponses === true) checkResponses(app);

  app.addHook("onResponse", async (request, reply) => {
    options.metrics.finished(request, reply);
    const audit = request.routeOptions.config.audit;
    const services = options.boot.services;
    if (!audit || !services) return;
    const failure = request.failure;
    services.audit.record({
      accountId: request.auth?.account.id ?? null,
      username: request.auth?.account.username ?? null,
      action: audit.action,
      target: safeTarget(audit, request),
      // Input refused as invalid is not recorded, only which fields were wrong.
      detail:
        invalidInputDetail(failure) ??
        redact(
          audit.detail
            ? audit.detail(request)
            : { params: request.params, query: request.query, body: request.body },
        ),
      outcome: failure ? failure.code : reply.statusCode < 400 ? "success" : "error",
      error: failure ? failure.message : null,
      source: request.ip,
    });
  });

  await app.register(
    async (api) => {
      registerSystemRoutes(api, options);
      registerSshKeyRoutes(api, options);
      registerNetworkSettingsRoutes(api, options);
      registerConsolePasswordRoutes(api, options);
      registerAccountRoutes(api, options);
      registerAdminRoutes(api, options);
      registerCatalogRoutes(api, options);
      registerAppRoutes(api, options);
      registerAppLogRoutes(api, options);
      registerVolumeRoutes(api, options);
      registerRestorePointRoutes(api, options);
      registerBackupRoutes(api, options);
      registerVmImageRoutes(api, options);
      registerPageRoutes(api, options);
      registerStateRoutes(api, options);
      registerMonitoringRoutes(api, options);
      registerNetRoutes(api, options);
      registerOAuthRoutes(api, options);
    },
    { prefix: API_PREFIX },
  );
  // Outside the API: the address people type or scan to trust the box's CA, and the scrapers' usual path.
  registerCaRoute(app, options);
  registerMetricsRoute(app, options);
  schemaCompilers.set(app, schemas.compileAll);
  return app;
}

function safeTarget(audit: AuditConfig, request: FastifyRequest): string {
  try {
    return audit.target(request);
  } catch {
    return "";
  }
}

async function sendProblem(reply: FastifyReply, failure: TownError): Promise<void> {
  if (failure.retryAfter !== undefined)
    void reply.header("retry-after", String(failure.retryAfter));
  await reply.status(failure.status).type(PROBLEM_CONTENT_TYPE).send(toProblem(failure));
}

/**
 * Finds who is calling: a bearer token (CLI, scripts) or the session cookie
 * (browsers). An invalid token fails the request even on public routes:
 * nobody is silently downgraded to anonymous.
 */
function authenticate(request: FastifyRequest, options: ApiOptions): void {
  const header = request.headers.authorization;
  const bearer = header?.startsWith("Bearer ") ? header.slice(7).trim() : undefined;
  const fromCookie = bearer === undefined ? request.cookies[SESSION_COOKIE] : undefined;
  if (fromCookie !== undefined || (bearer === undefined && request.headers.origin !== undefined)) {
    checkBrowserRequest(request, options);
  }
  const token = bearer ?? fromCookie;
  if (token === undefined || token === "") return;
  const services = options.boot.services;
  if (!services) return;
  request.auth = services.sessions.verify(token);
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Browser requests (those carrying the cookie or an `Origin`) must name one of
 * the box's own hosts, so a web page that rebinds DNS to the box can neither
 * use a session nor run the first-run setup. And a change must come from the
 * dashboard's own origin: an app on another port of the box is same-site with
 * the dashboard, so SameSite cookies alone do not stop it forging requests.
 * Browsers send `Origin` with every such request; `Sec-Fetch-Site` covers the
 * rest where they send it.
 */
function checkBrowserRequest(request: FastifyRequest, options: ApiOptions): void {
  const hostHeader = request.headers.host ?? "";
  const host = hostOf(hostHeader);
  if (!options.isAllowedHost(host)) {
    throw new TownError(
      "forbidden",
      `requests for "${host}" are refused; use the box's own name or address`,
    );
  }
  if (SAFE_METHODS.has(request.method)) return;
  const origin = request.headers.origin;
  const sameOrigin =
    origin === undefined
      ? request.headers["sec-fetch-site"] === "same-origin"
      : isOriginOf(origin, hostHeader);
  if (!sameOrigin) {
    throw new TownError("forbidden", "changes are accepted only from the dashboard's own page");
  }
}

/** Whether `origin` (`scheme://host[:port]`) names the host the request was sent to. */
function isOriginOf(origin: string, hostHeader: string): boolean {
  try {
    const from = new URL(origin);
    return from.origin === origin && from.host === new URL(`${from.protocol}//${hostHeader}`).host;
  } catch {
    return false;
  }
}

/** `name:port`, `[::1]:port` → the host part, lower-cased. */
export function hostOf(hostHeader: string): string {
  const host = hostHeader.trim().toLowerCase();
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return colon === -1 ? host : host.slice(0, colon);
}
