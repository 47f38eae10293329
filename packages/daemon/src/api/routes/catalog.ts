import type { FastifyInstance } from "fastify";
import { redactUrl } from "../../redact.js";
import type { Services } from "../../services.js";
import type { RepositoryConfig } from "../../store/repositories.js";
import type { PackageSummary, UpgradeOffer } from "../../catalog/catalog.js";
import { pageOf, pageQuerySchema, pageSchema, type PageQuery, type Sortable } from "../paging.js";
import { type ApiOptions, services } from "../context.js";
import { issueSchema, nameParam, portSchema, volumeSchema } from "./schemas.js";

const repositorySchema = {
  type: "object",
  required: ["name", "url", "position", "username", "hasPassword", "status"],
  properties: {
    name: { type: "string" },
    url: { type: "string" },
    position: { type: "integer" },
    username: { type: ["string", "null"] },
    hasPassword: { type: "boolean" },
    status: {
      type: "object",
      properties: {
        commit: { type: ["string", "null"] },
        refreshedAt: { type: ["integer", "null"] },
        attemptedAt: { type: ["integer", "null"] },
        error: { type: ["string", "null"] },
        loading: { type: "boolean" },
        changedPackages: { type: "array", items: { type: "string" } },
        packages: { type: "integer" },
        invalidFiles: { type: "integer" },
        skipped: {
          type: "array",
          items: {
            type: "object",
            properties: { path: { type: "string" }, reason: { type: "string" } },
          },
        },
      },
    },
  },
} as const;

const packageSummarySchema = {
  type: "object",
  properties: {
    repo: { type: "string" },
    repoPosition: { type: "integer" },
    name: { type: "string" },
    latestVersion: { type: ["string", "null"] },
    description: { type: "string" },
    supplies: { type: "array", items: { type: "string" } },
    featured: { type: "boolean" },
    installed: { type: "boolean" },
    installedVersion: { type: ["string", "null"] },
    invalidVersions: { type: "integer" },
  },
} as const;

const versionSummarySchema = {
  type: "object",
  properties: {
    version: { type: "string" },
    valid: { type: "boolean" },
    errors: { type: "array", items: issueSchema },
    warnings: { type: "array", items: issueSchema },
  },
} as const;

const previewSchema = {
  type: ["object", "null"],
  properties: {
    runtime: { type: "string" },
    image: { type: ["string", "null"] },
    volumes: { type: "array", items: volumeSchema },
    ports: { type: "array", items: portSchema },
    ingress: {
      type: ["object", "null"],
      properties: { host: { type: "string" }, port: { type: "integer" } },
    },
    dependencies: {
      type: "array",
      items: {
        type: "object",
        properties: {
          key: { type: "string" },
          repo: { type: "string" },
          name: { type: "string" },
          version: { type: "string" },
        },
      },
    },
    questionsToAnswer: { type: "array", items: { type: "string" } },
    problems: { type: "array", items: issueSchema },
  },
} as const;

const upgradeSchema = {
  type: "object",
  properties: {
    repo: { type: "string" },
    name: { type: "string" },
    installedVersion: { type: "string" },
    offerRepo: { type: "string" },
    offerVersion: { type: "string" },
    reason: { type: "string", enum: ["newer-version", "changed-definition"] },
    dismissed: { type: "boolean" },
  },
} as const;

const repoParams = { type: "object", properties: { repo: nameParam, name: nameParam } } as const;

/** Names sort alphabetically, equal names in repository order: the order "latest" uses for ties. */
const packageSortable: Sortable<PackageSummary> = {
  defaultSort: "name",
  fields: {
    name: (p) => `${p.name}\u0000${String(p.repoPosition).padStart(4, "0")}`,
    repo: (p) => `${String(p.repoPosition).padStart(4, "0")}\u0000${p.name}`,
    featured: (p) => `${p.featured ? 0 : 1}\u0000${p.name}`,
  },
  text: (p) => `${p.name} ${p.description} ${p.supplies.join(" ")}`,
};

const upgradeSortable: Sortable<UpgradeOffer> = {
  defaultSort: "name",
  fields: {
    name: (offer) => `${offer.name}\u0000${offer.repo}`,
    repo: (offer) => `${offer.repo}\u0000${offer.name}`,
  },
  text: (offer) => `${offer.repo}/${offer.name}`,
};

const repositorySortable: Sortable<ReturnType<typeof repositoryView>> = {
  defaultSort: "position",
  fields: { position: (r) => r.position, name: (r) => r.name },
  text: (r) => `${r.name} ${r.url}`,
};

type RepoBody = { name: string; url: string; username?: string; password?: string };
type CatalogQuery = PageQuery & { repo?: string; featured?: boolean; installed?: boolean };

export function registerCatalogRoutes(api: FastifyInstance, options: ApiOptions): void {
  const view = (config: RepositoryConfig) => repositoryView(services(options), config);

  api.get<{ Querystring: PageQuery }>(
    "/repositories",
    {
      config: { access: "user" },
      schema: {
        summary: "Package repositories in their order, with the state of their last refresh",
        querystring: { type: "object", properties: pageQuerySchema },
        response: { 200: pageSchema(repositorySchema) },
      },
    },
    async (request) => {
      const admin = request.auth?.account.role === "admin";
      // A token in a URL's query is a credential: only administrators see it.
      const shown = services(options)
        .repositories.list()
        .map((config) => (admin ? view(config) : { ...view(config), url: redactUrl(config.url) }));
      return pageOf(shown, request.query, repositorySortable);
    },
  );

  api.post<{ Body: RepoBody }>(
    "/repositories",
    {
      config: {
        access: "admin",
        audit: { action: "repository.add", target: (r) => (r.body as RepoBody).name },
      },
      schema: {
        summary: "Add a repository at the end of the list and fetch it",
        body: {
          type: "object",
          required: ["name", "url"],
          additionalProperties: false,
          properties: {
            name: { type: "string", maxLength: 32 },
            url: { type: "string", maxLength: 2048 },
            username: { type: "string", maxLength: 1024 },
            password: { type: "string", maxLength: 1024 },
          },
        },
        response: { 201: repositorySchema },
      },
    },
    async (request, reply) => {
      const { repositories, catalog } = services(options);
      const config = repositories.add(request.body);
      // A failed first fetch is the repository's status, not a failed add.
      await catalog.refresh(config.name);
      return reply.status(201).send(view(repositories.get(config.name)));
    },
  );

  api.delete<{ Params: { name: string } }>(
    "/repositories/:name",
    {
      config: {
        access: "admin",
        audit: { action: "repository.remove", target: (r) => (r.params as { name: string }).name },
      },
      schema: {
        summary: "Remove a repository",
        params: { type: "object", properties: { name: nameParam } },
      },
    },
    async (request, reply) => {
      const { repositories, catalog } = services(options);
      repositories.remove(request.params.name);
      await catalog.forget(request.params.name);
      return reply.status(204).send();
    },
  );

  api.post<{ Params: { name: string }; Body: { position: number } }>(
    "/repositories/:name/move",
    {
      config: {
        access: "admin",
        audit: { action: "repository.move", target: (r) => (r.params as { name: string }).name },
      },
      schema: {
        summary:
          "Move a repository to a 0-based position (earlier ones win ties between equal versions)",
        params: { type: "object", properties: { name: nameParam } },
        body: {
          type: "object",
          required: ["position"],
          additionalProperties: false,
          properties: { position: { type: "integer", minimum: 0 } },
        },
        response: { 200: { type: "array", items: repositorySchema } },
      },
    },
    async (request) =>
      services(options).repositories.move(request.params.name, request.body.position).map(view),
  );

  api.post<{ Params: { name: string } }>(
    "/repositories/:name/refresh",
    {
      config: {
        access: "admin",
        audit: { action: "repository.refresh", target: (r) => (r.params as { name: string }).name },
      },
      schema: {
        summary: "Fetch a repository now",
        params: { type: "object", properties: { name: nameParam } },
        response: { 200: repositorySchema },
      },
    },
    async (request) => {
      const { repositories, catalog } = services(options);
      await catalog.refresh(repositories.get(request.params.name).name);
      return view(repositories.get(request.params.name));
    },
  );

  api.post(
    "/repositories/refresh",
    {
      config: { access: "admin", audit: { action: "repository.refresh", target: () => "*" } },
      schema: {
        summary: "Fetch every repository now",
        response: { 200: { type: "array", items: repositorySchema } },
      },
    },
    async () => {
      const { repositories, catalog } = services(options);
      await catalog.refreshAll();
      return repositories.list().map(view);
    },
  );

  api.get<{ Querystring: CatalogQuery }>(
    "/catalog",
    {
      config: { access: "user" },
      schema: {
        summary: "Search packages across repositories",
        querystring: {
          type: "object",
          properties: {
            ...pageQuerySchema,
            repo: { type: "string", maxLength: 64 },
            featured: { type: "boolean" },
            installed: { type: "boolean" },
          },
        },
        response: { 200: pageSchema(packageSummarySchema) },
      },
    },
    async (request) => {
      const { repo, featured, installed } = request.query;
      return pageOf(
        services(options).catalog.packages(),
        request.query,
        packageSortable,
        (pkg) =>
          (repo === undefined || pkg.repo === repo) &&
          (featured === undefined || pkg.featured === featured) &&
          (installed === undefined || pkg.installed === installed),
      );
    },
  );

  api.get<{ Params: { repo: string; name: string } }>(
    "/catalog/:repo/:name",
    {
      config: { access: "user" },
      schema: {
        summary: "A package with all its versions (invalid ones with their errors)",
        params: repoParams,
        response: {
          200: {
            type: "object",
            properties: {
              ...packageSummarySchema.properties,
              versions: { type: "array", items: versionSummarySchema },
            },
          },
        },
      },
    },
    async (request) => services(options).catalog.package(request.params.repo, request.params.name),
  );

  api.get<{ Params: { repo: string; name: string; version: string } }>(
    "/catalog/:repo/:name/:version",
    {
      config: { access: "user" },
      schema: {
        summary: "One version: questions, raw manifest and an install preview",
        params: {
          type: "object",
          properties: { ...repoParams.properties, version: { type: "string", maxLength: 64 } },
        },
        response: {
          200: {
            type: "object",
            properties: {
              ...versionSummarySchema.properties,
              repo: { type: "string" },
              name: { type: "string" },
              manifest: { type: "string" },
              definitionHash: { type: "string" },
              description: { type: "string" },
              questions: {
                type: "array",
                items: {
                  type: "object",
                  properties: {
                    name: { type: "string" },
                    query: { type: "string" },
                    type: { type: "string" },
                    default: { type: ["string", "null"] },
                    optional: { type: "boolean" },
                    showIf: { type: ["string", "null"] },
                  },
                },
              },
              preview: previewSchema,
            },
          },
        },
      },
    },
    async (request) => {
      const { catalog, settings, system } = services(options);
      const { repo, name, version } = request.params;
      return catalog.version(repo, name, version, settings.string("dns.tld"), system());
    },
  );

  api.get<{ Querystring: PageQuery & { all?: boolean } }>(
    "/upgrades",
    {
      config: { access: "user" },
      schema: {
        summary: "Upgrades available for installed packages (all=true includes dismissed ones)",
        querystring: {
          type: "object",
          properties: { ...pageQuerySchema, all: { type: "boolean" } },
        },
        response: { 200: pageSchema(upgradeSchema) },
      },
    },
    async (request) =>
      pageOf(
        services(options).catalog.upgrades({ includeDismissed: request.query.all === true }),
        request.query,
        upgradeSortable,
      ),
  );

  api.post<{ Params: { repo: string; name: string } }>(
    "/upgrades/:repo/:name/dismiss",
    {
      config: {
        access: "admin",
        audit: {
          action: "upgrade.dismiss",
          target: (r) =>
            `${(r.params as { repo: string }).repo}/${(r.params as { name: string }).name}`,
        },
      },
      schema: { summary: "Hide an upgrade offer until a newer one appears", params: repoParams },
    },
    async (request, reply) => {
      services(options).catalog.dismiss(request.params.repo, request.params.name);
      return reply.status(204).send();
    },
  );
}

/** A repository as the API shows it: the password is never included, only whether one is set. */
function repositoryView(services: Services, config: RepositoryConfig) {
  const status = services.repositories.status(config.name);
  const packages = services.catalog.packages().filter((pkg) => pkg.repo === config.name);
  return {
    name: config.name,
    url: config.url,
    position: config.position,
    username: config.username,
    hasPassword: config.password !== null,
    status: {
      ...status,
      // Its clone is still being read after a start: packages come when it is done.
      loading: services.catalog.isLoading(config.name),
      packages: packages.length,
      invalidFiles: packages.reduce((sum, pkg) => sum + pkg.invalidVersions, 0),
      skipped: services.catalog.skipped(config.name),
    },
  };
}
