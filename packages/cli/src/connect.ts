import type { Command } from "commander";
import { TownClient, type Page } from "@townos/client";
import { readToken } from "./credentials.js";
import type { Io } from "./io.js";

export const DEFAULT_SERVER = "http://127.0.0.1:5309";

interface GlobalFlags {
  server?: string;
}

/** A client for the daemon `--server` (or TOWN_SERVER) names, with the saved session token. */
export async function connect(program: Command, io: Io): Promise<TownClient> {
  return new TownClient({
    baseUrl: program.opts<GlobalFlags>().server ?? io.env["TOWN_SERVER"] ?? DEFAULT_SERVER,
    token: await readToken(io.env),
  });
}

/** Reads every page of a listing. */
export async function allPages<T>(
  fetchPage: (query: { offset: number; limit: number }) => Promise<Page<T>>,
): Promise<T[]> {
  const items: T[] = [];
  for (let offset = 0; ;) {
    const page = await fetchPage({ offset, limit: 500 });
    items.push(...page.items);
    offset += page.items.length;
    if (page.items.length === 0 || offset >= page.total) return items;
  }
}
