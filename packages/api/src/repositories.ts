import { Type, type Static } from "@sinclair/typebox";
import { NameParam } from "./common.js";
import { Nullable } from "./schema.js";

/** A package repository as the API shows it: never its password, only whether one is set. */
export const RepositorySchema = Type.Object({
  name: Type.String(),
  url: Type.String(),
  position: Type.Integer(),
  username: Nullable(Type.String()),
  hasPassword: Type.Boolean(),
  status: Type.Object({
    commit: Nullable(Type.String()),
    refreshedAt: Nullable(Type.Integer()),
    attemptedAt: Nullable(Type.Integer()),
    error: Nullable(Type.String()),
    /** True while the daemon, just started, still reads the repository's clone. */
    loading: Type.Boolean(),
    changedPackages: Type.Array(Type.String()),
    packages: Type.Integer(),
    invalidFiles: Type.Integer(),
    skipped: Type.Array(Type.Object({ path: Type.String(), reason: Type.String() })),
  }),
});
export type Repository = Static<typeof RepositorySchema>;

/** Every repository in order: what a move or a refresh of all answers. */
export const RepositoryListSchema = Type.Array(RepositorySchema);

export const AddRepositoryBodySchema = Type.Object(
  {
    name: Type.String({ maxLength: 32 }),
    url: Type.String({ maxLength: 2048 }),
    username: Type.Optional(Type.String({ maxLength: 1024 })),
    password: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);
export type AddRepositoryBody = Static<typeof AddRepositoryBodySchema>;

export const RepositoryParamsSchema = Type.Object({ name: NameParam });

export const MoveRepositoryBodySchema = Type.Object(
  { position: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
);
