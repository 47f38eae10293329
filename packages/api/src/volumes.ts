import { Type, type Static } from "@sinclair/typebox";
import { NameParam } from "./common.js";
import { Nullable, OneOfTypes, StringEnum } from "./schema.js";

/**
 * Longest volume name (bytes): a volume is a directory of that name, and 255 is the longest
 * file name Linux file systems take, btrfs included. Uninstalled volumes carry their app,
 * version and time.
 */
export const MAX_VOLUME_NAME_BYTES = 255;

export const VolumeViewSchema = Type.Object({
  name: Type.String(),
  kind: StringEnum(["package", "user", "uninstalled"]),
  /** Package and uninstalled volumes: the package instance they were made for. */
  package: Nullable(
    Type.Object({ repo: Type.String(), instance: Type.String(), volume: Type.String() }),
  ),
  /** The app (`repo/name`) that uses the volume now; null when none does. */
  usedBy: Nullable(Type.String()),
  /** Uninstalled volumes: when their app was uninstalled (ms since the epoch). */
  uninstalledAt: Nullable(Type.Integer()),
  /** Bytes the file system enforces; null: none (always null when quotas are not enforced). */
  quota: Nullable(Type.Integer()),
  usedBytes: Type.Integer(),
  /** Bytes freed by removing the volume; null when the driver cannot tell. */
  exclusiveBytes: Nullable(Type.Integer()),
  /** `usedBytes` is a lower bound: measuring stopped at its limits. */
  usagePartial: Type.Boolean(),
  owner: Type.Object({ uid: Type.Integer(), gid: Type.Integer() }),
  snapshots: Type.Integer(),
});
export type VolumeView = Static<typeof VolumeViewSchema>;

export const StorageViewSchema = Type.Object({
  mode: StringEnum(["btrfs", "btrfs-loop", "directory"]),
  /** Why this storage, in a sentence. */
  reason: Type.String(),
  capabilities: Type.Object({
    quotas: Type.Boolean(),
    snapshots: StringEnum(["atomic", "copy"]),
    usage: StringEnum(["accounted", "walked"]),
  }),
  /** What is and is not enforced, said plainly. */
  notes: Type.Array(Type.String()),
  /** The file system the volumes are on; null when it cannot be read. */
  disk: Nullable(Type.Object({ totalBytes: Type.Integer(), freeBytes: Type.Integer() })),
});
export type StorageView = Static<typeof StorageViewSchema>;

export const SnapshotViewSchema = Type.Object({
  volume: Type.String(),
  name: Type.String(),
  createdAt: Type.Integer(),
});
export type SnapshotView = Static<typeof SnapshotViewSchema>;

export const RestoreResultSchema = Type.Object({
  volume: Type.String(),
  /** The snapshot whose content the volume has now (it stays, like the others). */
  snapshot: SnapshotViewSchema,
  /** The app stopped during the restore and started again after, if any. */
  heldApp: Nullable(Type.String()),
});
export type RestoreResult = Static<typeof RestoreResultSchema>;

export const UploadResultSchema = Type.Object({
  volume: Type.String(),
  /** The app stopped during the unpack and started again after, if any. */
  heldApp: Nullable(Type.String()),
  format: Type.String(),
  /** Entries seen, refused ones included. */
  entries: Type.Integer(),
  bytes: Type.Integer(),
  /** The first refused entries, with why. */
  refused: Type.Array(Type.Object({ path: Type.String(), reason: Type.String() })),
  refusedCount: Type.Integer(),
});
export type UploadResult = Static<typeof UploadResultSchema>;

const VolumeNameParam = Type.String({
  minLength: 1,
  maxLength: MAX_VOLUME_NAME_BYTES,
  pattern: "^[a-zA-Z0-9][a-zA-Z0-9._-]*$",
});
export const VolumeParamsSchema = Type.Object({ name: VolumeNameParam });
export type VolumeParams = Static<typeof VolumeParamsSchema>;
export const SnapshotParamsSchema = Type.Object({ name: VolumeNameParam, snapshot: NameParam });
export type SnapshotParams = Static<typeof SnapshotParamsSchema>;

/** Bytes, or a size with a unit ("10gb"); null lifts the quota. */
const QuotaSchema = OneOfTypes<number | string | null>(["integer", "string", "null"], {
  maxLength: 32,
});

export const CreateVolumeBodySchema = Type.Object(
  { name: NameParam, quota: Type.Optional(QuotaSchema) },
  { additionalProperties: false },
);
export type CreateVolumeBody = Static<typeof CreateVolumeBodySchema>;

export const SetQuotaBodySchema = Type.Object(
  { quota: QuotaSchema },
  { additionalProperties: false },
);

export const SnapshotBodySchema = Type.Object(
  { name: Type.Optional(NameParam) },
  { additionalProperties: false },
);

export const ArchiveFormatSchema = StringEnum(["tar.gz", "tar.xz"]);
export type ArchiveFormat = Static<typeof ArchiveFormatSchema>;

/** Most paths one download may name. */
const MAX_DOWNLOAD_PATHS = 1000;

export const DownloadQuerySchema = Type.Object(
  {
    format: Type.Optional(StringEnum(["tar.gz", "tar.xz"], { default: "tar.gz" })),
    path: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), {
        maxItems: MAX_DOWNLOAD_PATHS,
      }),
    ),
  },
  { additionalProperties: false },
);
export type DownloadQuery = Static<typeof DownloadQuerySchema>;

/** A volume's snapshots, by name. */
export const SnapshotListSchema = Type.Array(SnapshotViewSchema);
