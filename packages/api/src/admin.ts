import { Type, type Static } from "@sinclair/typebox";
import { pageQueryFields } from "./paging.js";
import { Dictionary, Nullable, OneOfTypes, StringEnum } from "./schema.js";

export const AuditEntrySchema = Type.Object({
  id: Type.Integer(),
  at: Type.Integer(),
  username: Nullable(Type.String()),
  action: Type.String(),
  target: Type.String(),
  detail: Dictionary(true),
  /** `success`, or the error code of the failure. */
  outcome: Type.String(),
  error: Nullable(Type.String()),
  source: Type.String(),
});
export type AuditEntry = Static<typeof AuditEntrySchema>;

export const AuditQuerySchema = Type.Object({
  ...pageQueryFields,
  sort: Type.Optional(StringEnum(["id", "-id"])),
  action: Type.Optional(Type.String({ maxLength: 64 })),
  username: Type.Optional(Type.String({ maxLength: 64 })),
  outcome: Type.Optional(StringEnum(["success", "failure"])),
});
export type AuditQuery = Static<typeof AuditQuerySchema>;

const settingValue = () => OneOfTypes<string | number | boolean>(["string", "number", "boolean"]);

export const SettingSchema = Type.Object({
  key: Type.String(),
  type: Type.String(),
  value: settingValue(),
  default: settingValue(),
  description: Type.String(),
});
export type Setting = Static<typeof SettingSchema>;

export const SetSettingBodySchema = Type.Object(
  { value: settingValue() },
  { additionalProperties: false },
);
export type SetSettingBody = Static<typeof SetSettingBodySchema>;

export const SettingKeyParamsSchema = Type.Object({ key: Type.String({ maxLength: 64 }) });
