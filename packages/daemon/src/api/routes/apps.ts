import { Readable } from "node:stream";
import { TownError } from "@townos/format";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  AppInstallPreviewSchema,
  AppParamsSchema,
  AppViewSchema,
  ExposeBodySchema,
  InstallRequestSchema,
  LastAnswersSchema,
  PageQuerySchema,
  PageSchema,
  PublishNamesBodySchema,
  UninstallQuerySchema,
  UpgradeBodySchema,
  type AppChangeEvent,
  type AppInstallPreview,
  type AppParams,
  type AppProgress,
  type AppView,
  type ExposeBody,
  type InstallRequest as InstallBody,
  type LastAnswers,
  type Page,
  type PageQuery,
  type UpgradeBody,
} from "@townos/api";
import type { InstallRequest } from "../../apps/planner.js";
import type { Apps } from "../../apps/service.js";
import { pageOf, type Sortable } from "../paging.js";
import { type ApiOptions, services } from "../context.js";
import { managedAs } from "../managed.js";
import { SSE_HEADERS, sseStream } from "../sse.js";
import { notesFor } from "../../apps/notes.js";

const appSortable: Sortable<AppView> = {
  defaultSort: "name",
  fields: {
    name: (app) => `${app.name}\u0000${app.repo}`,
    repo: (app) => `${app.repo}\u0000${app.name}`,
    installedAt: (app) => app.installedAt,
  },
  text: (app) => `${app.repo}/${app.name}`,
};

/** An install (or preview) request from its body: absent fields stay absent. */
function installRequest(body: InstallBody): InstallRequest {
  const { repo, name, version, answers, reuseVolumes, importFromVersion } = body;
  return {
    repo,
    name,
    ...(version === undefined ? {} : { version }),
    answers: answers ?? {},
    ...(reuseVolumes === undefined ? {} : { reuseVolumes }),
    ...(importFromVersion === undefined ? {} : { importFromVersion }),
  };
}

/** The app as the caller may see it: secret notes hold their values for administrators only. */
function forCaller(request: FastifyRequest, app: AppView): AppView {
  return { ...app, notes: notesFor(app.notes, request.auth?.account.role === "admin") };
}

/** The request asks for live progress (`Accept: text/event-stream`) instead of one answer at the end. */
function wantsProgress(request: FastifyRequest): boolean {
  return (request.headers.accept ?? "").includes("text/event-stream");
}

/**
 * Runs a change of an app and answers either once it is done (201 when its
 * reconcile finished, 202 while it goes on), or, when the client asked for
 * it, as a stream of progress events ending with
 * `{"type":"done","settled":…,"app":…}` (or an error event with the problem).
 */
async function answerChange(
  apps: Apps,
  request: FastifyRequest,
  reply: FastifyReply,
  target: { repo: string; name: string },
  change: () => Promise<{ app: AppView; settled: boolean }>,
): Promise<FastifyReply> {
  if (!wantsProgress(request)) {
    const { app, settled } = await change();
    return reply.status(settled ? 201 : 202).send(forCaller(request, app));
  }
  const gone = new AbortController();
  reply.raw.once("close", () => {
    gone.abort();
  });
  const events = progressEvents(
    apps,
    target,
    async () => {
      const { app, settled } = await change();
      return { app: forCaller(request, app), settled };
    },
    gone.signal,
  );
  return reply
    .status(200)
    .headers(SSE_HEADERS)
    .send(Readable.from(sseStream(events, { signal: gone.signal }), { objectMode: false }));
}

/** Progress lines of the app while `change` runs, then its result; its failure is thrown. */
async function* progressEvents(
  apps: Apps,
  target: { repo: string; name: string },
  change: () => Promise<{ app: AppView; settled: boolean }>,
  signal: AbortSignal,
): AsyncGenerator<AppChangeEvent> {
  const pending: AppProgress[] = [];
  let wake: () => void = () => undefined;
  const stopFollowing = apps.follow(target.repo, target.name, (progress) => {
    pending.push(progress);
    wake();
  });
  // An object, so the loop below sees the callback's write.
  const state = { finished: false };
  const result = change().finally(() => {
    state.finished = true;
    wake();
  });
  // Handled below; this keeps an early failure from counting as unhandled meanwhile.
  result.catch(() => undefined);
  try {
    while (!signal.aborted) {
      const next = pending.shift();
      if (next) {
        yield { type: "progress", progress: next };
        continue;
      }
      if (state.finished) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    const { app, settled } = await result;
    yield { type: "done", settled, app };
  } finally {
    stopFollowing();
  }
}

export const appTarget = (request: FastifyRequest): string => {
  const { repo, name } = request.params as AppParams;
  return `${repo}/${name}`;
};

const managedApp = managedAs("app", appTarget);

export function registerAppRoutes(api: FastifyInstance, options: ApiOptions): void {
  api.get<{ Querystring: PageQuery; Reply: Page<AppView> }>(
    "/apps",
    {
      config: { access: "user" },
      schema: {
        summary: "Installed apps with the state of their containers",
        querystring: PageQuerySchema,
        response: { 200: PageSchema(AppViewSchema) },
      },
    },
    async (request) =>
      pageOf(
        (await services(options).apps.list()).map((app) => forCaller(request, app)),
        request.query,
        appSortable,
      ),
  );

  api.post<{ Body: InstallBody }>(
    "/apps",
    {
      config: {
        access: "admin",
        audit: {
          action: "app.install",
          target: (r) => `${(r.body as InstallBody).repo}/${(r.body as InstallBody).name}`,
          // Answers may be passwords under any question name: only which were given is kept.
          detail: (r) => {
            const body = r.body as InstallBody | undefined;
            return {
              version: body?.version,
              answered: Object.keys(body?.answers ?? {}).sort(),
              ...(body?.oauthFlows ? { linked: Object.keys(body.oauthFlows).sort() } : {}),
            };
          },
        },
      },
      schema: {
        summary:
          "Install a package: 201 once its first reconcile finished, 202 when that takes longer than a minute; with Accept: text/event-stream, live progress events ending with the result",
        body: InstallRequestSchema,
        response: { 201: AppViewSchema, 202: AppViewSchema },
      },
    },
    async (request, reply) => {
      const { apps, oauth } = services(options);
      // Linked accounts' tokens come from the box, never through the browser.
      const flows = request.body.oauthFlows ?? {};
      const install = oauth.connect(
        installRequest(request.body),
        flows,
        request.auth?.account.id ?? -1,
      );
      return answerChange(apps, request, reply, request.body, async () => {
        const result = await apps.install(install);
        oauth.release(flows);
        return result;
      });
    },
  );

  api.post<{ Body: InstallBody; Reply: AppInstallPreview }>(
    "/apps/preview",
    {
      config: { access: "admin" },
      schema: {
        summary:
          "What installing with these answers would do: volumes made or taken back, ports, disk against free space, questions still to answer. Changes nothing",
        body: InstallRequestSchema,
        response: { 200: AppInstallPreviewSchema },
      },
    },
    async (request) => {
      const { apps, oauth } = services(options);
      // Linked questions count as answered; the links stay for the install.
      const flows = request.body.oauthFlows ?? {};
      return apps.preview(
        oauth.connect(installRequest(request.body), flows, request.auth?.account.id ?? -1),
      );
    },
  );

  api.get<{ Params: AppParams; Reply: LastAnswers }>(
    "/apps/:repo/:name/answers",
    {
      // Answers hold passwords: only administrators, who may reinstall, see them.
      config: { access: "admin" },
      schema: {
        summary:
          "The answers last given for a package (installed now or before): offered again on reinstall or upgrade",
        params: AppParamsSchema,
        response: { 200: LastAnswersSchema },
      },
    },
    async (request) => {
      const last = services(options).apps.lastAnswers(request.params.repo, request.params.name);
      if (!last) {
        throw new TownError(
          "not_found",
          `${request.params.repo}/${request.params.name} was never installed here`,
        );
      }
      return last;
    },
  );

  api.post<{ Params: AppParams; Body: UpgradeBody }>(
    "/apps/:repo/:name/upgrade",
    {
      config: {
        access: "admin",
        managed: managedApp,
        audit: {
          action: "app.upgrade",
          target: appTarget,
          detail: (r) => {
            const body = r.body as UpgradeBody | undefined;
            return {
              version: body?.version,
              answered: Object.keys(body?.answers ?? {}).sort(),
              ...(body?.oauthFlows ? { linked: Object.keys(body.oauthFlows).sort() } : {}),
            };
          },
        },
      },
      schema: {
        summary:
          "Upgrade an app to a version (default: the latest) or to its changed definition, keeping volumes and answers; post_update commands run after. Progress as for install",
        params: AppParamsSchema,
        body: UpgradeBodySchema,
        response: { 201: AppViewSchema, 202: AppViewSchema },
      },
    },
    async (request, reply) => {
      const { repo, name } = request.params;
      const { version, answers, oauthFlows = {} } = request.body;
      const { apps, oauth } = services(options);
      // Linked accounts answer their questions (a version that added one, say) with the box's tokens.
      const linked = oauth.connect(
        { repo, name, ...(version === undefined ? {} : { version }), answers: answers ?? {} },
        oauthFlows,
        request.auth?.account.id ?? -1,
      );
      return answerChange(apps, request, reply, { repo, name }, async () => {
        const result = await apps.upgrade({
          repo,
          name,
          ...(linked.version === undefined ? {} : { version: linked.version }),
          answers: linked.answers,
        });
        oauth.release(oauthFlows);
        return result;
      });
    },
  );

  api.post<{ Params: AppParams; Body: ExposeBody }>(
    "/apps/:repo/:name/expose",
    {
      config: {
        access: "admin",
        managed: managedApp,
        audit: {
          action: "app.expose",
          target: appTarget,
          detail: (r) => r.body,
        },
      },
      schema: {
        summary:
          "Set who can reach a published port: local (this box), lan (the home network) or internet (also a router port forward)",
        params: AppParamsSchema,
        body: ExposeBodySchema,
        response: { 201: AppViewSchema, 202: AppViewSchema },
      },
    },
    async (request, reply) => {
      const { repo, name } = request.params;
      const apps = services(options).apps;
      return answerChange(apps, request, reply, { repo, name }, () =>
        apps.expose(repo, name, request.body.port, request.body.exposure),
      );
    },
  );

  api.post<{ Params: AppParams; Body: { published: boolean }; Reply: AppView }>(
    "/apps/:repo/:name/dns",
    {
      config: {
        access: "admin",
        audit: {
          action: "app.dns",
          target: appTarget,
          detail: (r) => r.body,
        },
      },
      schema: {
        summary: "Publish or hide the app's names in the box's DNS",
        params: AppParamsSchema,
        body: PublishNamesBodySchema,
        response: { 200: AppViewSchema },
      },
    },
    async (request) =>
      forCaller(
        request,
        await services(options).apps.publishNames(
          request.params.repo,
          request.params.name,
          request.body.published,
        ),
      ),
  );

  for (const action of ["start", "stop", "restart", "enable", "disable"] as const) {
    api.post<{ Params: AppParams }>(
      `/apps/:repo/:name/${action}`,
      {
        config: { access: "admin", audit: { action: `app.${action}`, target: appTarget } },
        schema: {
          summary: {
            start: "Start an app and its dependencies (dependencies first)",
            stop: "Stop an app and its dependencies (the app first); it stays stopped until started",
            restart: "Stop and start an app's containers",
            enable: "Keep an app running, also after the box starts; starts it now",
            disable: "Stop an app and keep it stopped, also after the box starts",
          }[action],
          params: AppParamsSchema,
          response: { 201: AppViewSchema, 202: AppViewSchema },
        },
      },
      async (request, reply) => {
        const { repo, name } = request.params;
        const apps = services(options).apps;
        return answerChange(apps, request, reply, { repo, name }, () =>
          action === "restart" ? apps.restart(repo, name) : apps.setState(repo, name, action),
        );
      },
    );
  }

  api.get<{ Params: AppParams; Reply: AppView }>(
    "/apps/:repo/:name",
    {
      config: { access: "user" },
      schema: {
        summary: "One app: version, ports, volumes, notes, container states and its last error",
        params: AppParamsSchema,
        response: { 200: AppViewSchema },
      },
    },
    async (request) =>
      forCaller(
        request,
        await services(options).apps.view(request.params.repo, request.params.name),
      ),
  );

  api.delete<{ Params: AppParams; Querystring: { purge?: boolean } }>(
    "/apps/:repo/:name",
    {
      config: {
        access: "admin",
        managed: managedApp,
        audit: { action: "app.uninstall", target: appTarget },
      },
      schema: {
        summary:
          "Uninstall an app: its volumes are moved aside, or deleted with purge=true (204 when done, 202 while it goes on)",
        params: AppParamsSchema,
        querystring: UninstallQuerySchema,
      },
    },
    async (request, reply) => {
      const { repo, name } = request.params;
      const settled = await services(options).apps.uninstall(
        repo,
        name,
        request.query.purge === true,
      );
      return reply.status(settled ? 204 : 202).send();
    },
  );
}
