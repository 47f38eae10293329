import { Readable } from "node:stream";
import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  CreatePageBodySchema,
  PageDomainParamsSchema,
  PageHookParamsSchema,
  PageHookSchema,
  PageInfoSchema,
  PageListSchema,
  PageLogSchema,
  PageParamsSchema,
  type CreatePageBody,
  type PageDomainParams,
  type PageHook,
  type PageHookParams,
  type PageInfo,
  type PageList,
  type PageLog,
  type PageParams,
} from "@townos/api";
import { type ApiOptions, dashboardOrigin, services } from "../context.js";
import { managedAs } from "../managed.js";
import { HEARTBEAT_MS, SSE_HEADERS, sseStream } from "../sse.js";
import { acceptArchiveBodies, consumeUpload } from "../upload-body.js";

// Pages publish content under the box's names: every route is for administrators,
// except the webhook, which a git host calls with the page's secret token.

const pageTarget = (request: FastifyRequest): string => (request.params as PageParams).name;
const managedPage = managedAs("page", pageTarget);

export function registerPageRoutes(api: FastifyInstance, options: ApiOptions): void {
  const pages = () => services(options).pages;

  api.get<{ Reply: PageList }>(
    "/pages",
    {
      config: { access: "admin" },
      schema: {
        summary: "Every page (static website): state, source, build, URLs and versions",
        response: { 200: PageListSchema },
      },
    },
    async () => ({ items: pages().list() }),
  );

  api.post<{ Body: CreatePageBody; Reply: PageInfo }>(
    "/pages",
    {
      config: {
        access: "admin",
        audit: { action: "page.create", target: (r) => (r.body as CreatePageBody).name },
      },
      schema: {
        summary:
          "Create a page: git and image pages start deploying at once (state `deploying`); an archive page waits for its upload",
        body: CreatePageBodySchema,
        response: { 200: PageInfoSchema },
      },
    },
    async (request) => pages().create(request.body),
  );

  api.get<{ Params: PageParams; Reply: PageInfo }>(
    "/pages/:name",
    {
      config: { access: "admin" },
      schema: {
        summary: "One page",
        params: PageParamsSchema,
        response: { 200: PageInfoSchema },
      },
    },
    async (request) => pages().view(request.params.name),
  );

  api.delete<{ Params: PageParams }>(
    "/pages/:name",
    {
      config: {
        access: "admin",
        managed: managedPage,
        audit: { action: "page.remove", target: pageTarget },
      },
      schema: { summary: "Stop serving a page and delete its content", params: PageParamsSchema },
    },
    async (request, reply) => {
      await pages().remove(request.params.name);
      return reply.code(204).send();
    },
  );

  api.post<{ Params: PageParams; Reply: PageInfo }>(
    "/pages/:name/rebuild",
    {
      config: { access: "admin", audit: { action: "page.rebuild", target: pageTarget } },
      schema: {
        summary:
          "Deploy a git or image page again from its source (git: even an unchanged commit); answers at once",
        params: PageParamsSchema,
        response: { 200: PageInfoSchema },
      },
    },
    async (request) => pages().rebuild(request.params.name),
  );

  api.post<{ Params: PageParams; Reply: PageInfo }>(
    "/pages/:name/rollback",
    {
      config: { access: "admin", audit: { action: "page.rollback", target: pageTarget } },
      schema: {
        summary: "Serve the previous version again (the current one becomes the previous)",
        params: PageParamsSchema,
        response: { 200: PageInfoSchema },
      },
    },
    async (request) => pages().rollback(request.params.name),
  );

  api.put<{ Params: PageDomainParams; Reply: PageInfo }>(
    "/pages/:name/domains/:domain",
    {
      config: {
        access: "admin",
        managed: managedPage,
        audit: {
          action: "page.domain.add",
          target: pageTarget,
          detail: (r) => ({ domain: (r.params as PageDomainParams).domain }),
        },
      },
      schema: {
        summary: "Serve a page at a public domain too (an ACME certificate through the ingress)",
        params: PageDomainParamsSchema,
        response: { 200: PageInfoSchema },
      },
    },
    async (request) => pages().addDomain(request.params.name, request.params.domain),
  );

  api.delete<{ Params: PageDomainParams; Reply: PageInfo }>(
    "/pages/:name/domains/:domain",
    {
      config: {
        access: "admin",
        managed: managedPage,
        audit: {
          action: "page.domain.remove",
          target: pageTarget,
          detail: (r) => ({ domain: (r.params as PageDomainParams).domain }),
        },
      },
      schema: {
        summary: "Stop serving a page at a public domain",
        params: PageDomainParamsSchema,
        response: { 200: PageInfoSchema },
      },
    },
    async (request) => pages().removeDomain(request.params.name, request.params.domain),
  );

  api.get<{ Params: PageParams; Reply: PageHook }>(
    "/pages/:name/hook",
    {
      config: { access: "admin" },
      schema: {
        summary:
          "The webhook URL (with the page's secret token) a git host calls on a push to deploy at once",
        params: PageParamsSchema,
        response: { 200: PageHookSchema },
      },
    },
    async (request) => {
      const { name } = request.params;
      const token = pages().hookToken(name);
      return { url: `${dashboardOrigin(options, request)}/api/v1/pages/${name}/hook/${token}` };
    },
  );

  api.post<{ Params: PageHookParams }>(
    "/pages/:name/hook/:token",
    {
      // The token is the credential: a git host has no session.
      config: { access: "public", audit: { action: "page.hook", target: pageTarget } },
      schema: {
        summary:
          "A git host's push: a git page deploys when its branch moved, an image page deploys again; answers at once (202)",
        params: PageHookParamsSchema,
      },
    },
    async (request, reply) => {
      pages().hook(request.params.name, request.params.token);
      return reply.code(202).send();
    },
  );

  api.get<{ Params: PageParams; Reply: PageLog }>(
    "/pages/:name/logs",
    {
      config: { access: "admin" },
      schema: {
        summary: "The last deploy's log: fetching, building and publishing",
        params: PageParamsSchema,
        response: { 200: PageLogSchema },
      },
    },
    async (request) => pages().log(request.params.name),
  );

  api.get<{ Params: PageParams }>(
    "/pages/:name/logs/stream",
    {
      config: { access: "admin" },
      schema: {
        summary: `The last deploy's log, then its new lines live (text/event-stream) until the deploy ends (an \`end\` event); a comment every ${HEARTBEAT_MS / 1000} s`,
        params: PageParamsSchema,
      },
    },
    async (request, reply) => {
      // Checked before the stream starts, so an unknown page is a plain 404 problem.
      pages().view(request.params.name);
      const gone = new AbortController();
      reply.raw.once("close", () => {
        gone.abort();
      });
      const events = pages().follow(request.params.name, gone.signal);
      return reply
        .headers(SSE_HEADERS)
        .send(Readable.from(sseStream(events, { signal: gone.signal }), { objectMode: false }));
    },
  );

  void api.register(async (uploads) => {
    acceptArchiveBodies(uploads);
    uploads.put<{ Params: PageParams; Reply: PageInfo }>(
      "/pages/:name/content",
      {
        config: {
          access: "admin",
          audit: {
            action: "page.upload",
            target: pageTarget,
            detail: (r) => ({ contentLength: r.headers["content-length"] }),
          },
        },
        schema: {
          summary:
            "Upload a new version of an archive page (tar, tar.gz, tar.xz, zip); answers once it is served. Links and special files are left out and listed",
          params: PageParamsSchema,
          response: { 200: PageInfoSchema },
        },
      },
      async (request, reply) =>
        consumeUpload(request, reply, (input, declaredBytes) =>
          pages().upload(request.params.name, input, declaredBytes),
        ),
    );
  });
}
