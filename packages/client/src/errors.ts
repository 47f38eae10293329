import type { Problem } from "@townos/api";

/** A failed call, carrying the server's RFC 9457 problem; callers switch on `problem.code`. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(readonly problem: Problem) {
    super(`${problem.title}: ${problem.detail}`);
  }
}
