import type { Problem } from "@townos/api";
import { isTownError, TownError } from "@townos/format";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export function problemType(code: string): string {
  return `urn:town-os:problem:${code}`;
}

export function toProblem(error: TownError): Problem {
  const problem: Problem = {
    type: problemType(error.code),
    title: error.title,
    status: error.status,
    detail: error.message,
    code: error.code,
  };
  if (error.issues.length > 0) problem.issues = [...error.issues];
  return problem;
}

interface FastifyLikeError {
  statusCode?: number;
  code?: string;
  message: string;
  validation?: { instancePath?: string; message?: string; params?: Record<string, unknown> }[];
  validationContext?: string;
}

/**
 * Any error a request may end in, as a TownError: ours pass through, request
 * validation becomes `invalid_argument` with one issue per field, other
 * client errors keep their meaning, and anything else is `internal` without
 * leaking its message.
 */
export function asTownError(error: unknown): TownError {
  if (isTownError(error)) return error;
  const failure = error as FastifyLikeError;
  if (failure.validation) {
    const issues = failure.validation.map((item) => {
      const missing = item.params?.["missingProperty"];
      const path = `${failure.validationContext ?? ""}${item.instancePath ?? ""}`.replace(
        /\//g,
        ".",
      );
      const field = typeof missing === "string" ? `${path}.${missing}` : path;
      return { field: field.replace(/^\./, ""), message: item.message ?? "is not valid" };
    });
    return new TownError(
      "invalid_argument",
      issues.map((i) => `${i.field}: ${i.message}`).join("; "),
      { issues },
    );
  }
  if (failure.statusCode === 413 || failure.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    return new TownError("payload_too_large", "the request body is too large");
  }
  if (failure.statusCode !== undefined && failure.statusCode >= 400 && failure.statusCode < 500) {
    return new TownError("invalid_argument", failure.message);
  }
  return new TownError(
    "internal",
    "something went wrong inside Town OS; the daemon log has details",
    {
      cause: error,
    },
  );
}
