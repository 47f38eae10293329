import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  AddRepositoryBodySchema,
  CatalogQuerySchema,
  MoveRepositoryBodySchema,
  PackageDetailSchema,
  PackageParamsSchema,
  PackageSummarySchema,
  PageQuerySchema,
  PageSchema,
  RepositoryListSchema,
  RepositoryParamsSchema,
  RepositorySchema,
  UpgradeOfferSchema,
  UpgradesQuerySchema,
  VersionDetailSchema,
  VersionParamsSchema,
  type AddRepositoryBody,
  type CatalogQuery,
  type PackageDetail,
  type PackageParams,
  type PackageSummary as PackageSummaryWire,
  type Page,
  type PageQuery,
  type Repository,
  type UpgradeOffer as UpgradeOfferWire,
  type UpgradesQuery,
  type VersionDetail,
  type VersionParams,
} from "@townos/api";
import { redactUrl } from "../../redact.js";
import type { Services } from "../../services.js";
import type { RepositoryConfig } from "../../store/repositories.js";
import type { PackageSummary, UpgradeOffer } from "../../catalog/catalog.js";
import { pageOf, type Sortable } from "../paging.js";
import { type ApiOptions, services } from "../context.js";
import { managedAs } from "../managed.js";

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

const repositorySortable: Sortable<Repository> = {
  defaultSort: "position",
  fields: { position: (r) => r.position, name: (r) => r.name },
  text: (r) => `${r.name} ${r.url}`,
};

const repositoryTarget = (request: FastifyRequest): string =>
  (request.params as { name: string }).name;
const managedRepository = managedAs("repository", repositoryTarget);

export function registerCatalogRoutes(api: FastifyInstance, options: ApiOptions): void {
  const view = (config: RepositoryConfig) => repositoryView(services(options), config);

  api.get<{ Querystring: PageQuery; Reply: Page<Repository> }>(
    "/repositories",
    {
      config: { access: "user" },
      schema: {
        summary: "Package repositories in their order, with the state of their last refresh",
        querystring: PageQuerySchema,
        response: { 200: PageSchema(RepositorySchema) },
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

  api.post<{ Body: AddRepositoryBody; Reply: { 201: Repository } }>(
    "/repositories",
    {
      config: {
        access: "admin",
        audit: { action: "repository.add", target: (r) => (r.body as AddRepositoryBody).name },
      },
      schema: {
        summary: "Add a repository at the end of the list and fetch it",
        body: AddRepositoryBodySchema,
        response: { 201: RepositorySchema },
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
        managed: managedRepository,
        audit: { action: "repository.remove", target: repositoryTarget },
      },
      schema: {
        summary: "Remove a repository",
        params: RepositoryParamsSchema,
      },
    },
    async (request, reply) => {
      const { repositories, catalog } = services(options);
      repositories.remove(request.params.name);
      await catalog.forget(request.params.name);
      return reply.status(204).send();
    },
  );

  api.post<{ Params: { name: string }; Body: { position: number }; Reply: Repository[] }>(
    "/repositories/:name/move",
    {
      config: {
        access: "admin",
        managed: managedRepository,
        audit: { action: "repository.move", target: repositoryTarget },
      },
      schema: {
        summary:
          "Move a repository to a 0-based position (earlier ones win ties between equal versions)",
        params: RepositoryParamsSchema,
        body: MoveRepositoryBodySchema,
        response: { 200: RepositoryListSchema },
      },
    },
    async (request) =>
      services(options).repositories.move(request.params.name, request.body.position).map(view),
  );

  api.post<{ Params: { name: string }; Reply: Repository }>(
    "/repositories/:name/refresh",
    {
      config: {
        access: "admin",
        audit: { action: "repository.refresh", target: repositoryTarget },
      },
      schema: {
        summary: "Fetch a repository now",
        params: RepositoryParamsSchema,
        response: { 200: RepositorySchema },
      },
    },
    async (request) => {
      const { repositories, catalog } = services(options);
      await catalog.refresh(repositories.get(request.params.name).name);
      return view(repositories.get(request.params.name));
    },
  );

  api.post<{ Reply: Repository[] }>(
    "/repositories/refresh",
    {
      config: { access: "admin", audit: { action: "repository.refresh", target: () => "*" } },
      schema: {
        summary: "Fetch every repository now",
        response: { 200: RepositoryListSchema },
      },
    },
    async () => {
      const { repositories, catalog } = services(options);
      await catalog.refreshAll();
      return repositories.list().map(view);
    },
  );

  api.get<{ Querystring: CatalogQuery; Reply: Page<PackageSummaryWire> }>(
    "/catalog",
    {
      config: { access: "user" },
      schema: {
        summary: "Search packages across repositories",
        querystring: CatalogQuerySchema,
        response: { 200: PageSchema(PackageSummarySchema) },
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

  api.get<{ Params: PackageParams; Reply: PackageDetail }>(
    "/catalog/:repo/:name",
    {
      config: { access: "user" },
      schema: {
        summary: "A package with all its versions (invalid ones with their errors)",
        params: PackageParamsSchema,
        response: { 200: PackageDetailSchema },
      },
    },
    async (request) => services(options).catalog.package(request.params.repo, request.params.name),
  );

  api.get<{ Params: VersionParams; Reply: VersionDetail }>(
    "/catalog/:repo/:name/:version",
    {
      config: { access: "user" },
      schema: {
        summary: "One version: questions, raw manifest and an install preview",
        params: VersionParamsSchema,
        response: { 200: VersionDetailSchema },
      },
    },
    async (request) => {
      const { catalog, settings, system } = services(options);
      const { repo, name, version } = request.params;
      return catalog.version(repo, name, version, settings.string("dns.tld"), system());
    },
  );

  api.get<{ Querystring: UpgradesQuery; Reply: Page<UpgradeOfferWire> }>(
    "/upgrades",
    {
      config: { access: "user" },
      schema: {
        summary: "Upgrades available for installed packages (all=true includes dismissed ones)",
        querystring: UpgradesQuerySchema,
        response: { 200: PageSchema(UpgradeOfferSchema) },
      },
    },
    async (request) =>
      pageOf(
        services(options).catalog.upgrades({ includeDismissed: request.query.all === true }),
        request.query,
        upgradeSortable,
      ),
  );

  api.post<{ Params: PackageParams }>(
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
      schema: {
        summary: "Hide an upgrade offer until a newer one appears",
        params: PackageParamsSchema,
      },
    },
    async (request, reply) => {
      services(options).catalog.dismiss(request.params.repo, request.params.name);
      return reply.status(204).send();
    },
  );
}

/** A repository as the API shows it: the password is never included, only whether one is set. */
function repositoryView(services: Services, config: RepositoryConfig): Repository {
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
