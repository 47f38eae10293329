/**
 * Answers to a package's questions as the install form holds them: numbers
 * with units, and the checks the browser can make before asking the daemon
 * (the same rules as @townos/format, which the browser cannot load).
 */
import type { VersionDetail } from "@townos/client";
import { t } from "./messages.js";

type Question = VersionDetail["questions"][number];
export type Answers = Record<string, string>;
export type FieldErrors = Record<string, string>;

/** Types whose blank answer the daemon fills in (a free port, a random secret or name). */
const GENERATED = new Set(["port", "secret", "hostname"]);
export const BYTE_UNITS = ["mb", "gb", "tb"] as const;
export const BYTE_FACTORS: Record<string, number> = {
  mb: 1024 ** 2,
  gb: 1024 ** 3,
  tb: 1024 ** 4,
};
export const DURATION_UNITS = ["s", "m", "h", "d"] as const;
export const DURATION_FACTORS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * `10gb` → ["10", "gb"]; a bare number (what the daemon stores: bytes or
 * seconds) in the largest unit that divides it.
 */
export function splitUnit(
  value: string,
  units: readonly string[],
  factors: Record<string, number>,
): [string, string] {
  const fallback = units[1] ?? units[0] ?? "";
  const match = /^\s*([0-9.]*)\s*([a-z]*)\s*$/i.exec(value);
  if (!match) return [value, fallback];
  const amount = match[1] ?? "";
  const unit = (match[2] ?? "").toLowerCase();
  if (units.includes(unit)) return [amount, unit];
  if (unit === "" && amount !== "") {
    const number = Number(amount);
    for (const candidate of [...units].reverse()) {
      const factor = factors[candidate] ?? 1;
      if (number > 0 && number % factor === 0) return [String(number / factor), candidate];
    }
  }
  return [amount, fallback];
}

/** What the browser can tell before asking the daemon, with the daemon's rules. */
export function validate(questions: Question[], answers: Answers): FieldErrors {
  const errors: FieldErrors = {};
  for (const q of questions) {
    const value = (answers[q.name] ?? "").trim();
    if (value === "") {
      if (!q.optional && (q.default ?? "") === "" && !GENERATED.has(q.type) && q.type !== "boolean")
        errors[q.name] = t("install.required");
      continue;
    }
    if (q.type === "port" && value.toLowerCase() !== "auto") {
      const port = Number(value);
      if (!/^[0-9]{1,5}$/.test(value) || port < 1 || port > 65535)
        errors[q.name] = t("install.notPort");
    }
    if ((q.type === "bytes" || q.type === "duration") && !/^[0-9.]+\s*[a-z]*$/i.test(value))
      errors[q.name] = t("install.notNumber");
  }
  return errors;
}
