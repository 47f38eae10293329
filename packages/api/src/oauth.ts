import { Type, type Static } from "@sinclair/typebox";
import { NameParam } from "./common.js";
import { Nullable, StringEnum } from "./schema.js";

/** An account link for an `oauth` question: its state until an install names it. */
export const OAuthFlowSchema = Type.Object({
  id: Type.String(),
  repo: Type.String(),
  name: Type.String(),
  version: Type.String(),
  question: Type.String(),
  state: StringEnum(["pending", "done", "failed", "expired"]),
  error: Nullable(Type.String()),
  /** When polling gives up (ms since the epoch). */
  expiresAt: Type.Integer(),
  approveUrl: Type.Optional(
    Type.String({ description: "the page to open to approve (on start only)" }),
  ),
});
export type OAuthFlow = Static<typeof OAuthFlowSchema>;

export const StartOAuthFlowBodySchema = Type.Object(
  {
    repo: NameParam,
    name: NameParam,
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    question: Type.String({ minLength: 1, maxLength: 128 }),
  },
  { additionalProperties: false },
);
export type StartOAuthFlowBody = Static<typeof StartOAuthFlowBodySchema>;

export const OAuthFlowParamsSchema = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
});
