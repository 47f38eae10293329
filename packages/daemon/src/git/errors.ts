/**
 * Git failures as TownErrors, with messages of the form
 * `git: <operation> <url>: <what happened>`. The URL is the display form
 * (`RemoteUrl.display`) and every detail is redacted; the original error is
 * never kept as the cause, as isomorphic-git errors can carry request details.
 *
 * Codes: `invalid_argument` for a repository over a limit, `not_found` for a
 * missing branch or an empty repository, `io` for the rest (network, HTTP,
 * authentication, timeouts, broken git data).
 */
import { TownError } from "@townos/format";
import { formatDuration, printable } from "../storage/names.js";
import { redactSecrets, type Credentials } from "./remote.js";

/** The longest detail taken from an error we did not make. */
const MAX_DETAIL = 300;

export type GitOperation = "clone" | "fetch" | "read" | "sync";

export interface GitErrorContext {
  /** The URL shown (`RemoteUrl.display`). */
  display: string;
  /** The branch asked for; undefined for the remote's default branch. */
  branch: string | undefined;
  /** Redacted from messages wherever they appear. */
  credentials: Credentials | undefined;
}

/** The time bound of an operation ran out. */
export class Timeout extends Error {
  constructor(readonly ms: number) {
    super(`timed out after ${formatDuration(ms)}`);
  }
}

/** The caller gave up. */
export class Aborted extends Error {
  constructor() {
    super("aborted");
  }
}

/** The download budget ran out: a fresh shallow clone may still fit. */
export class DownloadLimit extends Error {
  constructor(readonly limit: number) {
    super(`the download is larger than ${limit} bytes`);
  }
}

/** A fetched pack holds an object that would inflate past the bound. */
export class ObjectTooLarge extends Error {}

/** Turns anything thrown by git or the transport into a TownError; TownErrors pass unchanged. */
export function gitError(error: unknown, ctx: GitErrorContext, operation: GitOperation): TownError {
  if (error instanceof TownError) return error;
  const prefix = `git: ${operation} ${ctx.display}`;
  if (error instanceof DownloadLimit || error instanceof ObjectTooLarge) {
    return new TownError("invalid_argument", `${prefix}: ${error.message}`);
  }
  const detail = printable(redactSecrets(describe(error, ctx), ctx.credentials), MAX_DETAIL);
  const code = isGitError(error, "NotFoundError") && operation !== "read" ? "not_found" : "io";
  return new TownError(code, `${prefix}: ${detail}`);
}

/** A clone or fetch that brought no commit: the branch is missing, or the repository empty. */
export function emptyRepository(ctx: GitErrorContext, operation: GitOperation): TownError {
  const what =
    ctx.branch === undefined
      ? "the repository has no commits"
      : `no branch "${printable(ctx.branch)}"`;
  return new TownError("not_found", `git: ${operation} ${ctx.display}: ${what}`);
}

function describe(error: unknown, ctx: GitErrorContext): string {
  if (error instanceof Timeout || error instanceof Aborted) return error.message;
  if (isGitError(error, "HttpError")) {
    const data = (error as { data?: { statusCode?: number; statusMessage?: string } }).data;
    const status =
      `HTTP ${String(data?.statusCode ?? "error")} ${data?.statusMessage ?? ""}`.trim();
    if (data?.statusCode === 401 || data?.statusCode === 403) {
      return ctx.credentials
        ? `${status}: the credentials were rejected`
        : `${status}: the repository needs credentials`;
    }
    return status;
  }
  if (isGitError(error, "UserCanceledError")) {
    // The auth callback cancels after a second 401: the credentials given were refused.
    return "HTTP 401 Unauthorized: the credentials were rejected";
  }
  if (isGitError(error, "SmartHttpError")) {
    return "the server did not answer as a git smart-HTTP server (is the URL a git repository?)";
  }
  if (isGitError(error, "NotFoundError")) {
    return ctx.branch === undefined
      ? "the remote default branch was not found"
      : `branch "${ctx.branch}" not found`;
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" && !error.message.includes(code)
      ? `${code}: ${error.message}`
      : error.message;
  }
  return String(error);
}

function isGitError(error: unknown, code: string): boolean {
  return error instanceof Error && (error as { code?: unknown }).code === code;
}
