const BYTE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1024,
  mb: 1024 ** 2,
  gb: 1024 ** 3,
  tb: 1024 ** 4,
};

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * `512mb`, `1GB`, `10 tb`, `4096` → bytes (powers of 1024). The spec names
 * mb/gb/tb; b and kb are accepted too since authors write them. Undefined
 * when malformed or beyond what a double holds exactly.
 */
export function parseByteSize(text: string): number | undefined {
  const match = /^\s*([0-9]{1,16})\s*([a-z]*)\s*$/i.exec(text);
  if (!match) return undefined;
  const multiplier = BYTE_UNITS[(match[2] ?? "").toLowerCase()];
  if (multiplier === undefined) return undefined;
  const bytes = Number(match[1]) * multiplier;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** `30s`, `5m`, `1.5h`, `7d` → whole seconds. A unit is required. */
export function parseDuration(text: string): number | undefined {
  const match = /^\s*([0-9]{1,12}(?:\.[0-9]{1,6})?)\s*([smhd])\s*$/i.exec(text);
  if (!match) return undefined;
  const multiplier = DURATION_UNITS[(match[2] ?? "").toLowerCase()];
  if (multiplier === undefined) return undefined;
  const seconds = Number(match[1]) * multiplier;
  return Number.isSafeInteger(Math.round(seconds)) ? Math.round(seconds) : undefined;
}

/** A size for people: GiB with one decimal from 1 GiB on, else whole MiB. */
export function formatByteSize(bytes: number): string {
  const gib = bytes / 2 ** 30;
  return gib >= 1 ? `${Number(gib.toFixed(1))} GiB` : `${Math.round(bytes / 2 ** 20)} MiB`;
}
