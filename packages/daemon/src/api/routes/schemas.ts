/** JSON schemas shared by several routes. */

export const accountSchema = {
  type: "object",
  required: ["username", "email", "role", "disabled", "createdAt"],
  properties: {
    username: { type: "string" },
    email: { type: ["string", "null"] },
    role: { type: "string", enum: ["admin", "user"] },
    disabled: { type: "boolean" },
    createdAt: { type: "integer" },
  },
} as const;

export const credentialsSchema = {
  type: "object",
  required: ["username", "password"],
  additionalProperties: false,
  properties: {
    username: { type: "string", minLength: 1, maxLength: 64 },
    password: { type: "string", minLength: 1, maxLength: 1024 },
    email: { type: "string", maxLength: 320 },
  },
} as const;

export const issueSchema = {
  type: "object",
  properties: {
    field: { type: "string" },
    question: { type: "string" },
    message: { type: "string" },
    location: {
      type: "object",
      properties: { line: { type: "integer" }, col: { type: "integer" } },
    },
  },
} as const;

export const nameParam = {
  type: "string",
  minLength: 1,
  maxLength: 64,
  pattern: "^[a-zA-Z0-9][a-zA-Z0-9._-]*$",
};
