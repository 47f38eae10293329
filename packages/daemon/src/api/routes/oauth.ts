import type { FastifyInstance, FastifyRequest } from "fastify";
import { TownError } from "@townos/format";
import { type ApiOptions, services } from "../context.js";
import {
  OAuthFlowParamsSchema,
  OAuthFlowSchema,
  StartOAuthFlowBodySchema,
  type OAuthFlow,
  type StartOAuthFlowBody,
} from "@townos/api";

/** The account calling: flows belong to the administrator who started them. */
function owner(request: FastifyRequest): number {
  const account = request.auth?.account;
  if (!account) throw new TownError("unauthenticated", "sign in first");
  return account.id;
}

/** Account links for `oauth` questions: start a flow, then watch it until done. */
export function registerOAuthRoutes(api: FastifyInstance, options: ApiOptions): void {
  api.post<{ Body: StartOAuthFlowBody; Reply: { 201: OAuthFlow } }>(
    "/oauth/flows",
    {
      config: {
        access: "admin",
        audit: {
          action: "oauth.start",
          target: (r) =>
            `${(r.body as StartOAuthFlowBody).repo}/${(r.body as StartOAuthFlowBody).name}`,
          detail: (r) => {
            const body = r.body as StartOAuthFlowBody | undefined;
            return { version: body?.version, question: body?.question };
          },
        },
      },
      schema: {
        summary:
          "Start linking an account for an oauth question: the box sends the package's start request and answers with the page to open; the token it polls for stays in the box until an install names the flow (oauthFlows)",
        body: StartOAuthFlowBodySchema,
        response: { 201: OAuthFlowSchema },
      },
    },
    async (request, reply) => {
      const flow = await services(options).oauth.start(request.body, owner(request));
      return reply.status(201).send(flow);
    },
  );

  api.get<{ Params: { id: string }; Reply: OAuthFlow }>(
    "/oauth/flows/:id",
    {
      config: { access: "admin" },
      schema: {
        summary:
          "An account link's state: pending, done (an install may name it), failed or expired",
        params: OAuthFlowParamsSchema,
        response: { 200: OAuthFlowSchema },
      },
    },
    async (request) => services(options).oauth.view(request.params.id, owner(request)),
  );
}
