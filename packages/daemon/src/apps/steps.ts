/**
 * The steps of one app reconcile, as progress and as errors: what changed
 * is recorded and reported, and an error says which step of which app failed.
 */
import { isTownError, TownError } from "@townos/format";
import { redactText } from "../redact.js";

/** One step of a reconcile that changes something, as it starts and as it ends. */
export interface ReconcileProgress {
  step: string;
  state: "started" | "done";
  /** A line of what the step is doing (pull progress, say). */
  detail?: string;
}

/**
 * The steps of one reconcile: reads (`look`) and changes (`act`, recorded
 * and reported as progress). Errors get `<what>: <step>: ` in front, keeping
 * their code.
 */
export class Steps {
  readonly mutations: string[] = [];

  constructor(
    private readonly what: string,
    private readonly onProgress: ((progress: ReconcileProgress) => void) | undefined,
    /** Redacted from every step and detail shown, with URL credentials and queries. */
    private readonly secrets: readonly string[],
  ) {}

  look<T>(step: string, run: () => Promise<T>): Promise<T> {
    return withContext(this.what, step, run);
  }

  async act<T>(step: string, run: () => Promise<T>): Promise<T> {
    this.announce(step);
    const result = await withContext(this.what, step, run);
    this.record(step);
    return result;
  }

  announce(step: string): void {
    this.onProgress?.({ step: redactText(step, this.secrets), state: "started" });
  }

  detail(step: string, detail: string): void {
    this.onProgress?.({
      step: redactText(step, this.secrets),
      state: "started",
      detail: redactText(detail, this.secrets),
    });
  }

  record(step: string): void {
    const shown = redactText(step, this.secrets);
    this.mutations.push(shown);
    this.onProgress?.({ step: shown, state: "done" });
  }
}

/** Runs one step, adding `<what>: <step>: ` to any error while keeping its code. */
async function withContext<T>(what: string, step: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new TownError(
      isTownError(error) ? error.code : "internal",
      `${what}: ${step}: ${message}`,
      {
        cause: error,
        ...(isTownError(error) ? { issues: error.issues } : {}),
      },
    );
  }
}
