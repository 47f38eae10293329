/**
 * Backup schedules: five-field cron expressions (minute hour day-of-month
 * month day-of-week) read in UTC, or one of the shorthands `@hourly`,
 * `@daily`, `@weekly`, `@monthly`, `@yearly`. Pure; croner does the parsing
 * and the arithmetic. Day of month and day of week together match either
 * (as Vixie cron does).
 */
import { Cron } from "croner";
import { TownError } from "@townos/format";

const MAX_LENGTH = 128;
const SHORTHANDS = new Set(["@hourly", "@daily", "@weekly", "@monthly", "@yearly"]);

/**
 * Checks a schedule and answers it normalized (trimmed, single spaces).
 * Refuses six- or seven-field forms (seconds, years), other `@` forms, and
 * expressions that never match (`0 0 30 2 *`).
 * @throws `invalid_argument` with an issue on `schedule`
 */
export function checkSchedule(cron: string): string {
  if (cron.length > MAX_LENGTH) refuse(`longer than ${MAX_LENGTH} characters`);
  const text = cron.trim().split(/\s+/).join(" ");
  if (text.startsWith("@")) {
    if (!SHORTHANDS.has(text)) refuse(`"${text}" is not one of ${[...SHORTHANDS].join(", ")}`);
  } else if (text.split(" ").length !== 5) {
    refuse(`"${text}" is not five fields (minute hour day-of-month month day-of-week)`);
  }
  let cronJob: Cron;
  try {
    cronJob = parse(text);
  } catch (error) {
    refuse(
      `"${text}": ${error instanceof Error ? error.message.replace(/^CronPattern: /, "") : String(error)}`,
    );
  }
  if (cronJob.nextRun(new Date(0)) === null) refuse(`"${text}" never matches a date`);
  return text;
}

/**
 * When the schedule fires next, strictly after `afterMs` (ms since the
 * epoch), to the minute; null: never again. @throws as `checkSchedule`
 */
export function nextRun(cron: string, afterMs: number): number | null {
  return parse(checkSchedule(cron)).nextRun(new Date(afterMs))?.getTime() ?? null;
}

function parse(text: string): Cron {
  return new Cron(text, { mode: "5-part", timezone: "UTC" });
}

function refuse(message: string): never {
  throw new TownError("invalid_argument", `invalid schedule: ${message}`, {
    issues: [{ field: "schedule", message }],
  });
}
