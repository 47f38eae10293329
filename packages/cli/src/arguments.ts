import { UsageError } from "./usage.js";

/** `REPO/NAME[@VERSION]`. */
export function packageSpec(spec: string): {
  repo: string;
  name: string;
  version: string | undefined;
} {
  const match = /^([^/@]+)\/([^/@]+)(?:@(.+))?$/.exec(spec);
  if (!match?.[1] || !match[2]) throw new UsageError(`"${spec}" is not REPO/NAME[@VERSION]`);
  return { repo: match[1], name: match[2], version: match[3] };
}

export function parseWhole(text: string, name: string): number {
  if (!/^[0-9]{1,9}$/.test(text)) throw new UsageError(`${name} must be a whole number`);
  return Number(text);
}
