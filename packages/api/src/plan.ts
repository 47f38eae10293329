import { Type, type Static } from "@sinclair/typebox";
import { Nullable, OneOfTypes, StringEnum } from "./schema.js";

/** Who can reach a published port: this box, the home network, or also the internet. */
export const ExposureSchema = StringEnum(["local", "lan", "internet"]);
export type Exposure = Static<typeof ExposureSchema>;

export const RuntimeSchema = StringEnum(["container", "vm"]);

/** A published port in a preview: numbers, or as written while answers are missing. */
export const PlannedPortSchema = Type.Object({
  name: Nullable(Type.String()),
  host: OneOfTypes<number | string | null>(["integer", "string", "null"]),
  container: OneOfTypes<number | string>(["integer", "string"]),
  exposure: Type.String(),
});
export type PlannedPort = Static<typeof PlannedPortSchema>;

/** A volume of a plan; `instance` names the package of the tree it belongs to (absent in a package's own preview). */
export const PlannedVolumeSchema = Type.Object({
  instance: Type.Optional(Type.String()),
  name: Type.String(),
  mountpoint: Type.String(),
  quota: Nullable(Type.Integer()),
});
export type PlannedVolume = Static<typeof PlannedVolumeSchema>;
