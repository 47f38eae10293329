import { UsageError } from "./usage.js";

/** Commander collector for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `--set QUESTION=VALUE` pairs as answers; the value may itself hold `=`. */
export function parseAnswers(pairs: readonly string[]): Record<string, string> {
  const answers: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf("=");
    if (equals <= 0) throw new UsageError(`--set "${pair}" is not QUESTION=VALUE`);
    answers[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return answers;
}
