import { Type, type Static } from "@sinclair/typebox";
import { IssueSchema, NameParam } from "./common.js";
import { pageQueryFields } from "./paging.js";
import { PlannedPortSchema, PlannedVolumeSchema, RuntimeSchema } from "./plan.js";
import { Nullable, StringEnum } from "./schema.js";

export const PackageSummarySchema = Type.Object({
  repo: Type.String(),
  /** The repository's place in the ordered list. */
  repoPosition: Type.Integer(),
  name: Type.String(),
  latestVersion: Nullable(Type.String()),
  description: Type.String(),
  supplies: Type.Array(Type.String()),
  featured: Type.Boolean(),
  installed: Type.Boolean(),
  installedVersion: Nullable(Type.String()),
  /** Versions with errors: listed, never hidden. */
  invalidVersions: Type.Integer(),
});
export type PackageSummary = Static<typeof PackageSummarySchema>;

const versionSummaryFields = {
  version: Type.String(),
  valid: Type.Boolean(),
  errors: Type.Array(IssueSchema),
  warnings: Type.Array(IssueSchema),
};
export const VersionSummarySchema = Type.Object(versionSummaryFields);
export type VersionSummary = Static<typeof VersionSummarySchema>;

export const PackageDetailSchema = Type.Object({
  ...PackageSummarySchema.properties,
  versions: Type.Array(VersionSummarySchema),
});
export type PackageDetail = Static<typeof PackageDetailSchema>;

/** What installing one version would need and make, before any answer is given. */
export const InstallPreviewSchema = Type.Object({
  runtime: RuntimeSchema,
  image: Nullable(Type.String()),
  volumes: Type.Array(PlannedVolumeSchema),
  ports: Type.Array(PlannedPortSchema),
  ingress: Nullable(Type.Object({ host: Type.String(), port: Type.Integer() })),
  dependencies: Type.Array(
    Type.Object({
      key: Type.String(),
      repo: Type.String(),
      name: Type.String(),
      version: Type.String(),
    }),
  ),
  /** Questions that need an answer before an install can go ahead. */
  questionsToAnswer: Type.Array(Type.String()),
  /** Problems other than missing answers that would stop an install. */
  problems: Type.Array(IssueSchema),
});
export type InstallPreview = Static<typeof InstallPreviewSchema>;

export const QuestionSchema = Type.Object({
  name: Type.String(),
  query: Type.String(),
  type: Type.String(),
  default: Nullable(Type.String()),
  optional: Type.Boolean(),
  showIf: Nullable(Type.String()),
});
export type Question = Static<typeof QuestionSchema>;

export const VersionDetailSchema = Type.Object({
  ...versionSummaryFields,
  repo: Type.String(),
  name: Type.String(),
  manifest: Type.String(),
  definitionHash: Type.String(),
  description: Type.String(),
  questions: Type.Array(QuestionSchema),
  preview: Nullable(InstallPreviewSchema),
});
export type VersionDetail = Static<typeof VersionDetailSchema>;

/** An upgrade offer as listed: with whether somebody dismissed it. */
export const UpgradeOfferSchema = Type.Object({
  repo: Type.String(),
  name: Type.String(),
  installedVersion: Type.String(),
  /** Where the upgrade comes from: possibly another repository with a higher version. */
  offerRepo: Type.String(),
  offerVersion: Type.String(),
  reason: StringEnum(["newer-version", "changed-definition"]),
  dismissed: Type.Boolean(),
});
export type UpgradeOffer = Static<typeof UpgradeOfferSchema>;

export const CatalogQuerySchema = Type.Object({
  ...pageQueryFields,
  repo: Type.Optional(Type.String({ maxLength: 64 })),
  featured: Type.Optional(Type.Boolean()),
  installed: Type.Optional(Type.Boolean()),
});
export type CatalogQuery = Static<typeof CatalogQuerySchema>;

export const UpgradesQuerySchema = Type.Object({
  ...pageQueryFields,
  all: Type.Optional(Type.Boolean()),
});
export type UpgradesQuery = Static<typeof UpgradesQuerySchema>;

export const PackageParamsSchema = Type.Object({ repo: NameParam, name: NameParam });
export type PackageParams = Static<typeof PackageParamsSchema>;

export const VersionParamsSchema = Type.Object({
  repo: NameParam,
  name: NameParam,
  version: Type.String({ maxLength: 64 }),
});
export type VersionParams = Static<typeof VersionParamsSchema>;
