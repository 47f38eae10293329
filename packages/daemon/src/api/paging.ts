import { TownError } from "@townos/format";

/** The query every list endpoint takes. */
export interface PageQuery {
  offset?: number;
  limit?: number;
  /** A field name, `-field` for descending. */
  sort?: string;
  /** Free-text search. */
  q?: string;
}

/** The envelope every list endpoint returns. */
export interface Page<T> {
  items: T[];
  total: number;
  offset: number;
  limit: number;
}

export const MAX_PAGE_SIZE = 500;
export const DEFAULT_PAGE_SIZE = 50;

export const pageQuerySchema = {
  offset: { type: "integer", minimum: 0, default: 0 },
  limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE },
  sort: { type: "string", maxLength: 64, pattern: "^-?[a-zA-Z]+$" },
  q: { type: "string", maxLength: 200 },
} as const;

export function pageSchema(item: object): object {
  return {
    type: "object",
    required: ["items", "total", "offset", "limit"],
    properties: {
      items: { type: "array", items: item },
      total: { type: "integer" },
      offset: { type: "integer" },
      limit: { type: "integer" },
    },
  };
}

export interface Sortable<T> {
  /** Field name → how to read it for comparison. */
  fields: Record<string, (item: T) => string | number | boolean | null>;
  defaultSort: string;
  /** The text a search term is matched against (case-insensitive). */
  text: (item: T) => string;
}

/** Searches, sorts and pages an in-memory list the shared way. */
export function pageOf<T>(all: readonly T[], query: PageQuery, sortable: Sortable<T>): Page<T> {
  const offset = query.offset ?? 0;
  const limit = Math.min(query.limit ?? DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
  const sort = query.sort ?? sortable.defaultSort;
  const descending = sort.startsWith("-");
  const field = descending ? sort.slice(1) : sort;
  const read = sortable.fields[field];
  if (!read) {
    throw new TownError("invalid_argument", `cannot sort by "${field}"; use ${Object.keys(sortable.fields).join(", ")}`);
  }
  const term = query.q?.trim().toLowerCase() ?? "";
  const matching = term === "" ? [...all] : all.filter((item) => sortable.text(item).toLowerCase().includes(term));
  matching.sort((a, b) => {
    const x = read(a);
    const y = read(b);
    const order = x === y ? 0 : x === null ? 1 : y === null ? -1 : x < y ? -1 : 1;
    return descending ? -order : order;
  });
  return { items: matching.slice(offset, offset + limit), total: matching.length, offset, limit };
}
