import type { FastifyRequest } from "fastify";
import type { ManagedObject } from "@townos/api";
import { TownError } from "@townos/format";
import type { Authenticated } from "../auth/sessions.js";
import { dashboardHost } from "../net/plan.js";
import type { Services } from "../services.js";
import type { BooleanSettingKey } from "../store/settings.js";
import type { Metrics } from "./metrics.js";
import type { OsFiles } from "../system/os-info.js";

// What the server and every route share: the options the API is built with,
// the per-route config, and the services once booted. Its own module so that
// routes need not import the server that registers them.

export const SESSION_COOKIE = "town_session";

/**
 * Who may call a route: nobody signed in, any account, or administrators;
 * `{ usersWhen: setting }`: administrators, and every account while that
 * switch is on (logs and health, which may show secrets).
 */
export type Access = "public" | "user" | "admin" | { usersWhen: BooleanSettingKey };

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
    /** A file of the dashboard's build: public, no session looked at. */
    web?: boolean;
    /**
     * The object the route changes, from its path (undefined: none that git
     * can declare): refused (409) while the state repository declares it, as
     * git would undo the change.
     */
    managed?: (request: FastifyRequest) => ManagedObject | undefined;
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
  /** Fail answers with fields their response schema lacks (tests; see response-check.ts). */
  checkResponses?: boolean;
  /** Where the Town OS image's files are (system/os-info.ts); default the image's paths. */
  osFiles?: OsFiles;
}

/** The daemon's services, or "booting" until they are up. */
export function services(options: ApiOptions): Services {
  if (!options.boot.services) throw new TownError("booting", "Town OS is starting");
  return options.boot.services;
}

/** Where the box's API is reached from the home network: the dashboard's HTTPS name when networking is on. */
export function dashboardOrigin(options: ApiOptions, request: FastifyRequest): string {
  const { network, settings } = services(options);
  const url = network?.status().dashboardUrl;
  if (url !== undefined && url !== null) return url.replace(/\/$/, "");
  const host = request.headers.host ?? dashboardHost(settings.string("dns.tld"));
  return `${request.protocol}://${host}`;
}
