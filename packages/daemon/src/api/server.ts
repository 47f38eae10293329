import swagger from "@fastify/swagger";
import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import { TownError } from "@townos/format";
import type { Authenticated } from "../auth/sessions.js";
import type { Services } from "../services.js";
import { redact } from "../store/audit.js";
import type { Metrics } from "./metrics.js";
import { asTownError, PROBLEM_CONTENT_TYPE, toProblem } from "./problem.js";
import { registerAppRoutes } from "./routes/apps.js";
import { registerAppLogRoutes } from "./routes/app-logs.js";
import { registerAccountRoutes } from "./routes/accounts.js";
import { registerAdminRoutes } from "./routes/admin.js";
import { registerCatalogRoutes } from "./routes/catalog.js";
import { registerCaRoute, registerNetRoutes } from "./routes/net.js";
import { registerSystemRoutes } from "./routes/system.js";
import { registerVolumeRoutes } from "./routes/volumes.js";
import { isWebRequest, registerWeb, sendDashboardPage, wantsDashboardPage } from "./web.js";

export const API_PREFIX = "/api/v1";
export const SESSION_COOKIE = "town_session";
/** JSON bodies are small; uploads get their own limits later. */
const BODY_LIMIT = 256 * 1024;

/** Who may call a route: nobody signed in, any account, or administrators. */
export type Access = "public" | "user" | "admin";

export interface AuditConfig {
  action: string;
  /** What the call acts on, e.g. the username or repository name. */
  target: (request: FastifyRequest) => string;
  /** What is recorded instead of params, query and body: for bodies whose secrets no key name gives away. */
  detail?: (request: FastifyRequest) => unknown;
}

declare module "fastify" {
  interface FastifyContextConfig {
    access?: Access;
    audit?: AuditConfig;
    /** Answers while the daemon boots (status, OpenAPI). */
    duringBoot?: boolean;
  }
  interface FastifyRequest {
    auth: Authenticated | undefined;
    failure: TownError | undefined;
  }
}

export interface BootState {
  state: "booting" | "ready" | "failed";
  step: string;
  error: string | null;
  services: Services | undefined;
}

export interface ApiOptions {
  version: string;
  boot: BootState;
  /** Whether a browser (non-bearer) request may name this host: the DNS-rebinding defense. */
  isAllowedHost: (host: string) => boolean;
  metrics: Metrics;
  /** Pino logger options; the daemon logs JSON lines. */
  logger: boolean | { level: string; stream?: NodeJS.WritableStream };
  /** A dashboard build (packages/web/dist) served at `/`; absent: none. */
  webRoot?: string;
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
  const app = Fastify({
    logger,
    bodyLimit: BODY_LIMIT,
    // Metrics count requests and the audit log records changes: a line per request only when debugging.
    logController: new LogController({
      disableRequestLogging: logger === false || !["trace", "debug"].includes(logger.level),
    }),
    trustProxy: "127.0.0.1",
    // Volume names reach 255 bytes (uninstalled ones are long): the default of 100 would 404 them.
    routerOptions: { maxParamLength: 256 },
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
    // The dashboard's files are public and served while the daemon boots: the page shows the progress.
    if (web && isWebRequest(request.url)) return;
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
    authenticate(request, options);
    // Unknown URLs answer 404 to everyone: the API is documented, so nothing is revealed.
    if (request.is404) return;
    const access = config.access ?? "admin";
    if (access !== "public" && !request.auth) {
      throw new TownError("unauthenticated", "sign in first");
    }
    if (access === "admin" && request.auth?.account.role !== "admin") {
      throw new TownError("forbidden", "only administrators may do this");
    }
  });

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
      detail: redact(
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
      registerAccountRoutes(api, options);
      registerAdminRoutes(api, options);
      registerCatalogRoutes(api, options);
      registerAppRoutes(api, options);
      registerAppLogRoutes(api, options);
      registerVolumeRoutes(api, options);
      registerNetRoutes(api, options);
    },
    { prefix: API_PREFIX },
  );
  // Outside the API: the address people type or scan to trust the box's CA.
  registerCaRoute(app, options);
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
 * (browsers). Browser requests — those carrying the cookie or an `Origin` —
 * must name one of the box's own hosts, so a web page that rebinds DNS to the
 * box can neither use a session nor run the first-run setup. An invalid
 * token fails the request even on public routes: nobody is silently
 * downgraded to anonymous.
 */
function authenticate(request: FastifyRequest, options: ApiOptions): void {
  const header = request.headers.authorization;
  const bearer = header?.startsWith("Bearer ") ? header.slice(7).trim() : undefined;
  const fromCookie = bearer === undefined ? cookie(request, SESSION_COOKIE) : undefined;
  if (fromCookie !== undefined || (bearer === undefined && request.headers.origin !== undefined)) {
    const host = hostOf(request.headers.host ?? "");
    if (!options.isAllowedHost(host)) {
      throw new TownError(
        "forbidden",
        `requests for "${host}" are refused; use the box's own name or address`,
      );
    }
  }
  const token = bearer ?? fromCookie;
  if (token === undefined || token === "") return;
  const services = options.boot.services;
  if (!services) return;
  request.auth = services.sessions.verify(token);
}

/** `name:port`, `[::1]:port` → the host part, lower-cased. */
export function hostOf(hostHeader: string): string {
  const host = hostHeader.trim().toLowerCase();
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return colon === -1 ? host : host.slice(0, colon);
}

function cookie(request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return decodeURIComponent(value.join("="));
  }
  return undefined;
}
