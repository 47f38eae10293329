import { Type, type Static } from "@sinclair/typebox";
import { NameParam } from "./common.js";
import { CreatePageBodySchema } from "./pages.js";
import { ExposureSchema } from "./plan.js";
import { Nullable, OneOfTypes, StringEnum } from "./schema.js";

/*
 * GitOps: a git repository declares the box (docs/STATE.md). The files'
 * schemas below are what `town state lint` and the daemon check a checkout
 * against; the rest is the API of the state setting.
 */

// --- the files of a state repository

/** `repositories.yaml`: package repositories in priority order. */
export const StateRepositoriesFileSchema = Type.Array(
  Type.Object(
    { name: NameParam, url: Type.String({ minLength: 1, maxLength: 4096 }) },
    { additionalProperties: false },
  ),
  { maxItems: 64 },
);
export type StateRepositoriesFile = Static<typeof StateRepositoriesFileSchema>;

/** A `secretRef` answer: the value of a secret stored on the box (`town state secret set NAME`). */
export const SecretRefSchema = Type.Object(
  { secretRef: NameParam },
  { additionalProperties: false },
);

/** An answer encrypted to the box's public key (`town state key`): an armored age file. */
export const EncryptedAnswerSchema = Type.Object(
  { age: Type.String({ minLength: 1, maxLength: 65536 }) },
  { additionalProperties: false },
);

/** The box's public key: answers encrypted to it can be committed. */
export const StateKeySchema = Type.Object({ publicKey: Type.String() });
export type StateKey = Static<typeof StateKeySchema>;

/** `apps/<repo>/<name>.yaml`. */
export const StateAppFileSchema = Type.Object(
  {
    /** Absent: the newest version the repository offers. */
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** Question → answer, a reference to a secret kept on the box, or an answer encrypted to the box's key. */
    answers: Type.Optional(
      Type.Record(
        Type.String({ minLength: 1, maxLength: 128 }),
        Type.Union([Type.String({ maxLength: 65536 }), SecretRefSchema, EncryptedAnswerSchema]),
      ),
    ),
    /** Host port → who may reach it; ports not named keep their default. */
    exposure: Type.Optional(Type.Record(Type.String({ pattern: "^[0-9]{1,5}$" }), ExposureSchema)),
    /** When the file is removed: delete the app's data too (default: keep it). */
    purge: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type StateAppFile = Static<typeof StateAppFileSchema>;

/** `volumes/<name>.yaml`: a person's volume `user.<name>`. */
export const StateVolumeFileSchema = Type.Object(
  {
    quota: Type.Optional(
      OneOfTypes<number | string | null>(["integer", "string", "null"], { maxLength: 32 }),
    ),
  },
  { additionalProperties: false },
);
export type StateVolumeFile = Static<typeof StateVolumeFileSchema>;

/** `pages/<name>.yaml`: a page as `POST /pages` takes it, without its name (the file's). */
export const StatePageFileSchema = Type.Omit(CreatePageBodySchema, ["name"]);
export type StatePageFile = Static<typeof StatePageFileSchema>;

/** `settings.yaml`: setting key → value (settings not named keep theirs). */
export const StateSettingsFileSchema = Type.Record(
  Type.String({ minLength: 1, maxLength: 128 }),
  Type.Union([Type.String({ maxLength: 4096 }), Type.Number(), Type.Boolean()]),
);
export type StateSettingsFile = Static<typeof StateSettingsFileSchema>;

/** One file of a checkout, as lint and export pass them. */
export const StateFileSchema = Type.Object({
  /** Relative to the repository's root, `/`-separated. */
  path: Type.String({ minLength: 1, maxLength: 512 }),
  text: Type.String(),
});
export type StateFile = Static<typeof StateFileSchema>;

/** A problem in a checkout: which file, and what. */
export const StateProblemSchema = Type.Object({ path: Type.String(), message: Type.String() });
export type StateProblem = Static<typeof StateProblemSchema>;

// --- what the box keeps from git

export const STATE_OBJECT_KINDS = ["repository", "app", "volume", "page", "setting"] as const;
export type StateObjectKind = (typeof STATE_OBJECT_KINDS)[number];

/** An object the state repository declares: changed only through git while it does. */
export const ManagedObjectSchema = Type.Object({
  kind: StringEnum(STATE_OBJECT_KINDS),
  /** `repo/name` for an app, the key of a setting, else the name. */
  name: Type.String(),
});
export type ManagedObject = Static<typeof ManagedObjectSchema>;

/** One commit the box saw: applied, or refused whole (the box stayed on the previous one). */
export const StateApplyViewSchema = Type.Object({
  commit: Type.String(),
  author: Nullable(Type.String()),
  /** The commit message's first line. */
  message: Nullable(Type.String()),
  result: StringEnum(["applied", "refused", "failed"]),
  /** Why it was refused or what failed. */
  error: Nullable(Type.String()),
  /** What it changed, in the order done, e.g. "install main/wiki 1.2". */
  changes: Type.Array(Type.String()),
  at: Type.Integer(),
});
export type StateApplyView = Static<typeof StateApplyViewSchema>;

export const StateStatusSchema = Type.Object({
  /** False when no state repository is set: everything is manual. */
  configured: Type.Boolean(),
  /** Without credentials. */
  url: Nullable(Type.String()),
  /** Null: the remote's default branch. */
  branch: Nullable(Type.String()),
  intervalSeconds: Nullable(Type.Integer()),
  /** The commit the box is on. */
  commit: Nullable(Type.String()),
  appliedAt: Nullable(Type.Integer()),
  /** While a sync runs: what it is doing. */
  step: Nullable(Type.String()),
  /** The last sync's error (a refused commit, an unreachable repository); null when it worked. */
  error: Nullable(Type.String()),
  lastSyncAt: Nullable(Type.Integer()),
  managed: Type.Array(ManagedObjectSchema),
  /** Newest first, at most 20. */
  history: Type.Array(StateApplyViewSchema),
});
export type StateStatus = Static<typeof StateStatusSchema>;

export const SetStateBodySchema = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 4096 }),
    branch: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    username: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    password: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /** How often to look for new commits, e.g. "5m" (at least 30 s); default 5 minutes. */
    interval: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
  },
  { additionalProperties: false },
);
export type SetStateBody = Static<typeof SetStateBodySchema>;

/** The URL a git host calls on a push (POST): the box syncs at once. */
export const StateHookSchema = Type.Object({ url: Type.String() });
export type StateHook = Static<typeof StateHookSchema>;

/** The box as a state repository's files (`town state export DIR` writes them). */
export const StateExportSchema = Type.Object({ files: Type.Array(StateFileSchema) });
export type StateExport = Static<typeof StateExportSchema>;

/** Secrets that `secretRef` answers name: values are never shown again. */
export const SetStateSecretBodySchema = Type.Object(
  { value: Type.String({ minLength: 1, maxLength: 65536 }) },
  { additionalProperties: false },
);
export type SetStateSecretBody = Static<typeof SetStateSecretBodySchema>;

export const StateSecretParamsSchema = Type.Object({ name: NameParam });

export const StateSecretsSchema = Type.Object({ names: Type.Array(Type.String()) });
export type StateSecrets = Static<typeof StateSecretsSchema>;
