/**
 * The one error type of Town OS. Every failure that crosses a module boundary
 * is a TownError with a stable `code`; the API turns it into RFC 9457 problem
 * JSON, the CLI prints its title and detail, and UIs switch on `code` only.
 */

/** Where in a source file a problem is, 1-based like editors show it. */
export interface SourceLocation {
  line: number;
  col: number;
}

/** One problem in a batch (all errors of a compile are reported together). */
export interface Issue {
  /** Dotted path of the offending field, e.g. `volumes.data.mountpoint`. */
  field?: string;
  /** The question this problem belongs to, when it is about an answer. */
  question?: string;
  message: string;
  location?: SourceLocation;
}

export interface CodeInfo {
  status: number;
  title: string;
  /** Terminal errors will not go away by retrying the same input. */
  terminal: boolean;
}

const codes = {
  invalid_package: { status: 422, title: "Invalid package definition", terminal: true },
  invalid_answers: { status: 422, title: "Invalid answers", terminal: true },
  invalid_argument: { status: 400, title: "Invalid argument", terminal: true },
  not_found: { status: 404, title: "Not found", terminal: true },
  unauthenticated: { status: 401, title: "Not signed in", terminal: true },
  forbidden: { status: 403, title: "Not allowed", terminal: true },
  conflict: { status: 409, title: "Conflict", terminal: true },
  setup_required: { status: 409, title: "Setup needed", terminal: true },
  already_set_up: { status: 409, title: "Already set up", terminal: true },
  payload_too_large: { status: 413, title: "Too large", terminal: true },
  rate_limited: { status: 429, title: "Too many attempts", terminal: false },
  booting: { status: 503, title: "Town OS is starting", terminal: false },
  unavailable: { status: 503, title: "Unavailable", terminal: false },
  dependency_cycle: { status: 422, title: "Dependency cycle", terminal: true },
  template_syntax: { status: 422, title: "Template syntax error", terminal: true },
  template_exec: { status: 422, title: "Template execution error", terminal: true },
  io: { status: 500, title: "I/O error", terminal: false },
  internal: { status: 500, title: "Internal error", terminal: false },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof codes;

export interface TownErrorOptions {
  issues?: readonly Issue[];
  cause?: unknown;
  /** Seconds after which a retry may succeed (rate limits, booting). */
  retryAfter?: number;
}

export class TownError extends Error {
  override readonly name = "TownError";
  readonly code: ErrorCode;
  readonly issues: readonly Issue[];
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, message: string, options: TownErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.issues = options.issues ?? [];
    this.retryAfter = options.retryAfter;
  }

  get status(): number {
    return codes[this.code].status;
  }

  get title(): string {
    return codes[this.code].title;
  }

  get terminal(): boolean {
    return codes[this.code].terminal;
  }

  /** Prefixes the message with context, as drivers do (`podman: create gitea: …`). */
  withContext(context: string): TownError {
    const options: TownErrorOptions = { issues: this.issues, cause: this };
    if (this.retryAfter !== undefined) options.retryAfter = this.retryAfter;
    return new TownError(this.code, `${context}: ${this.message}`, options);
  }
}

export function isTownError(value: unknown): value is TownError {
  return value instanceof TownError;
}

/** Every code with its HTTP status and title, for API documentation. */
export function errorCodes(): Readonly<Record<ErrorCode, Readonly<CodeInfo>>> {
  return codes;
}
