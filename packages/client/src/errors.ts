import type { Problem } from "@townos/api";

/** A failed call, carrying the server's RFC 9457 problem; callers switch on `problem.code`. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(readonly problem: Problem) {
    super(`${problem.title}: ${problem.detail}`);
  }
}

/** A daemon that could not be reached at all, as the `unreachable` problem. */
export function unreachable(url: URL, error: unknown): ApiError {
  const reason =
    error instanceof Error
      ? error.cause instanceof Error
        ? error.cause.message
        : error.message
      : String(error);
  return new ApiError({
    type: "urn:town-os:problem:unreachable",
    title: "Cannot reach Town OS",
    status: 0,
    detail: `${url.origin}: ${reason}`,
    code: "unreachable",
  });
}

/** A failed response as ApiError: its problem when the body is one, else the status and text. */
export async function failure(response: Response): Promise<ApiError> {
  const text = await response.text();
  let problem: Partial<Problem> | undefined;
  try {
    problem = text === "" ? undefined : (JSON.parse(text) as Partial<Problem>);
  } catch {
    problem = undefined;
  }
  return new ApiError({
    type: problem?.type ?? "about:blank",
    title: problem?.title ?? response.statusText,
    status: response.status,
    detail: problem?.detail ?? text,
    code: problem?.code ?? "unknown",
    ...(problem?.issues ? { issues: problem.issues } : {}),
  });
}
