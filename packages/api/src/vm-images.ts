import { Type, type Static } from "@sinclair/typebox";
import { Nullable, StringEnum } from "./schema.js";

/** A VM image's name in the store: a file name safe everywhere (no `/`, no leading dot). */
const VmImageNameParam = Type.String({
  minLength: 1,
  maxLength: 128,
  pattern: "^[a-zA-Z0-9][a-zA-Z0-9._-]*$",
});

/** A base disk image in the box's store, converted to qcow2; VMs run on copy-on-write disks over it. */
export const VmImageSchema = Type.Object({
  name: Type.String(),
  /** The URL it was downloaded from; null when it came otherwise. */
  source: Nullable(Type.String()),
  /** Hex sha256 of the file as downloaded. */
  sha256: Type.String(),
  /** The format it came in (`qcow2`, `raw`…); stored as qcow2. */
  format: Type.String(),
  /** The disk's size as a guest sees it. */
  virtualSize: Type.Integer(),
  /** What the stored file takes on the box. */
  fileSize: Type.Integer(),
  addedAt: Type.Integer(),
  /** Installed apps (`repo/name`) with a VM on this image, dependencies' included: it cannot be deleted while any is. */
  usedBy: Type.Array(Type.String()),
});
export type VmImage = Static<typeof VmImageSchema>;

/** An image being added: downloaded, checked, converted; or a failed attempt, until dismissed or retried. */
export const VmImageDownloadSchema = Type.Object({
  name: Type.String(),
  url: Type.String(),
  phase: StringEnum(["download", "check", "convert"]),
  receivedBytes: Type.Integer(),
  /** Null while the server has not said. */
  totalBytes: Nullable(Type.Integer()),
  /** Why it failed (it runs no more); null while it runs. */
  error: Nullable(Type.String()),
});
export type VmImageDownload = Static<typeof VmImageDownloadSchema>;

export const VmImageListSchema = Type.Object({
  images: Type.Array(VmImageSchema),
  downloads: Type.Array(VmImageDownloadSchema),
});
export type VmImageList = Static<typeof VmImageListSchema>;

export const AddVmImageBodySchema = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 4096 }),
    /** Default: made from the URL (its last path segment and a hash of it), as for a package's `vm.image`. */
    name: Type.Optional(VmImageNameParam),
    /** Hex sha256 the downloaded file must have. */
    sha256: Type.Optional(Type.String({ pattern: "^[0-9a-fA-F]{64}$" })),
  },
  { additionalProperties: false },
);
export type AddVmImageBody = Static<typeof AddVmImageBodySchema>;

export const VmImageParamsSchema = Type.Object({ name: VmImageNameParam });
export type VmImageParams = Static<typeof VmImageParamsSchema>;
