import { Type, type Static } from "@sinclair/typebox";

/** A repository, package, account or snapshot name in a path or body. */
export const NameParam = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: "^[a-zA-Z0-9][a-zA-Z0-9._-]*$",
});

/** One problem in a batch: a field of a manifest or body, or an answer to a question. */
export const IssueSchema = Type.Object({
  /** Dotted path of the offending field, e.g. `volumes.data.mountpoint`. */
  field: Type.Optional(Type.String()),
  /** The question this problem belongs to, when it is about an answer. */
  question: Type.Optional(Type.String()),
  message: Type.String(),
  location: Type.Optional(Type.Object({ line: Type.Integer(), col: Type.Integer() })),
});
export type Issue = Static<typeof IssueSchema>;

/** RFC 9457 problem details, with the stable `code` and the per-field issues. */
export const ProblemSchema = Type.Object({
  type: Type.String(),
  title: Type.String(),
  status: Type.Integer(),
  detail: Type.String(),
  code: Type.String(),
  issues: Type.Optional(Type.Array(IssueSchema)),
});
export type Problem = Static<typeof ProblemSchema>;
