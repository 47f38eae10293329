/** An error's message for a log line or a record; anything thrown that is not an Error, as text. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
