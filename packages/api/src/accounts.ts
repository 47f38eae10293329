import { Type, type Static } from "@sinclair/typebox";
import { NameParam } from "./common.js";
import { Nullable, StringEnum } from "./schema.js";

export const RoleSchema = StringEnum(["admin", "user"]);
export type Role = Static<typeof RoleSchema>;

export const AccountSchema = Type.Object({
  username: Type.String(),
  email: Nullable(Type.String()),
  role: RoleSchema,
  disabled: Type.Boolean(),
  createdAt: Type.Integer(),
});
export type Account = Static<typeof AccountSchema>;

const credentialFields = {
  username: Type.String({ minLength: 1, maxLength: 64 }),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
};
const emailField = Type.Optional(Type.String({ maxLength: 320 }));

export const LoginBodySchema = Type.Object(
  { ...credentialFields, email: emailField },
  { additionalProperties: false },
);
export type LoginBody = Static<typeof LoginBodySchema>;

/** First run; `setupCode` is the one-time code the daemon logged and wrote to its data dir. */
export const SetupBodySchema = Type.Object(
  {
    ...credentialFields,
    email: emailField,
    setupCode: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type SetupBody = Static<typeof SetupBodySchema>;

/** A session begun: the token also comes as an HttpOnly cookie. */
export const SignedInSchema = Type.Object({ token: Type.String(), account: AccountSchema });
export type SignedIn = Static<typeof SignedInSchema>;

export const CreateAccountBodySchema = Type.Object(
  { ...credentialFields, email: emailField, role: Type.Optional(RoleSchema) },
  { additionalProperties: false },
);
export type CreateAccountBody = Static<typeof CreateAccountBodySchema>;

export const UpdateAccountBodySchema = Type.Object(
  {
    disabled: Type.Optional(Type.Boolean()),
    role: Type.Optional(RoleSchema),
    password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateAccountBody = Static<typeof UpdateAccountBodySchema>;

export const SessionSchema = Type.Object({
  id: Type.String(),
  createdAt: Type.Integer(),
  lastSeenAt: Type.Integer(),
  source: Type.String(),
  userAgent: Type.String(),
  /** The session this request came with. */
  current: Type.Boolean(),
});
export type SessionInfo = Static<typeof SessionSchema>;

export const AccountParamsSchema = Type.Object({ username: NameParam });
export const SessionParamsSchema = Type.Object({ id: Type.String({ maxLength: 64 }) });
