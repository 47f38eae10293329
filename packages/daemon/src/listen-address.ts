import { TownError } from "@townos/format";

export const DEFAULT_LISTEN = "0.0.0.0:5309";

/** Where the API listens: `host:port`, `[v6]:port` or `:port`. */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(listen.trim());
  const port = Number(match?.[3]);
  if (!match || port < 0 || port > 65535) {
    throw new TownError("invalid_argument", `"${listen}" is not HOST:PORT`);
  }
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port };
}
