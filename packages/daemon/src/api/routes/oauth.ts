import type { FastifyInstance, FastifyRequest } from "fastify";
import { TownError } from "@townos/format";
import { type ApiOptions, services } from "../context.js";
import { nameParam } from "./schemas.js";

const flowSchema = {
  type: "object",
  required: ["id", "repo", "name", "version", "question", "state", "error", "expiresAt"],
  properties: {
    id: { type: "string" },
    repo: { type: "string" },
    name: { type: "string" },
    version: { type: "string" },
    question: { type: "string" },
    state: { type: "string", enum: ["pending", "done", "failed", "expired"] },
    error: { type: ["string", "null"] },
    expiresAt: { type: "integer" },
    approveUrl: { type: "string", description: "the page to open to approve (on start only)" },
  },
} as const;

type StartBody = { repo: string; name: string; version?: string; question: string };

/** The account calling: flows belong to the administrator who started them. */
function owner(request: FastifyRequest): number {
  const account = request.auth?.account;
  if (!account) throw new TownError("unauthenticated", "sign in first");
  return account.id;
}

/** Account links for `oauth` questions: start a flow, then watch it until done. */
export function registerOAuthRoutes(api: FastifyInstance, options: ApiOptions): void {
  api.post<{ Body: StartBody }>(
    "/oauth/flows",
    {
      config: {
        access: "admin",
        audit: {
          action: "oauth.start",
          target: (r) => `${(r.body as StartBody).repo}/${(r.body as StartBody).name}`,
          detail: (r) => {
            const body = r.body as StartBody | undefined;
            return { version: body?.version, question: body?.question };
          },
        },
      },
      schema: {
        summary:
          "Start linking an account for an oauth question: the box sends the package's start request and answers with the page to open; the token it polls for stays in the box until an install names the flow (oauthFlows)",
        body: {
          type: "object",
          required: ["repo", "name", "question"],
          additionalProperties: false,
          properties: {
            repo: nameParam,
            name: nameParam,
            version: { type: "string", minLength: 1, maxLength: 64 },
            question: { type: "string", minLength: 1, maxLength: 128 },
          },
        },
        response: { 201: flowSchema },
      },
    },
    async (request, reply) => {
      const flow = await services(options).oauth.start(request.body, owner(request));
      return reply.status(201).send(flow);
    },
  );

  api.get<{ Params: { id: string } }>(
    "/oauth/flows/:id",
    {
      config: { access: "admin" },
      schema: {
        summary:
          "An account link's state: pending, done (an install may name it), failed or expired",
        params: {
          type: "object",
          properties: { id: { type: "string", minLength: 1, maxLength: 64 } },
        },
        response: { 200: flowSchema },
      },
    },
    async (request) => services(options).oauth.view(request.params.id, owner(request)),
  );
}
