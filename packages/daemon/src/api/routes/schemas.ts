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

/** A published port: in a plan (numbers) or in a preview (as written while answers are missing). */
export const portSchema = {
  type: "object",
  properties: {
    name: { type: ["string", "null"] },
    host: { type: ["integer", "string", "null"] },
    container: { type: ["integer", "string"] },
    exposure: { type: "string" },
  },
} as const;

/** A volume of a plan; `instance` names the package of the tree it belongs to. */
export const volumeSchema = {
  type: "object",
  properties: {
    instance: { type: "string" },
    name: { type: "string" },
    mountpoint: { type: "string" },
    quota: { type: ["integer", "null"] },
  },
} as const;
