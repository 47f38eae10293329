import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type Page, type PageQuery } from "@townos/api";
import { TownError } from "@townos/format";

export interface Sortable<T> {
  /** Field name → how to read it for comparison. */
  fields: Record<string, (item: T) => string | number | boolean | null>;
  defaultSort: string;
  /** The text a search term is matched against (case-insensitive). */
  text: (item: T) => string;
}

/**
 * Sorted copies and lower-cased search texts of lists that are kept and
 * reused (the catalog's): hot list calls then only filter and slice. Keyed
 * weakly by the list and the sortable, so a new list simply starts afresh.
 */
const sortedLists = new WeakMap<object, WeakMap<object, Map<string, readonly unknown[]>>>();
const searchTexts = new WeakMap<object, string>();

/**
 * Searches, sorts and pages a list the shared way; `keep` filters after
 * sorting. Pass a stable `all` array and a module-level `sortable` to
 * benefit from the caches.
 */
export function pageOf<T>(
  all: readonly T[],
  query: PageQuery,
  sortable: Sortable<T>,
  keep: (item: T) => boolean = () => true,
): Page<T> {
  const offset = query.offset ?? 0;
  const limit = Math.min(query.limit ?? DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
  const sort = query.sort ?? sortable.defaultSort;
  const term = query.q?.trim().toLowerCase() ?? "";
  const matching = sorted(all, sort, sortable).filter(
    (item) => keep(item) && (term === "" || searchText(item, sortable).includes(term)),
  );
  return { items: matching.slice(offset, offset + limit), total: matching.length, offset, limit };
}

function sorted<T>(all: readonly T[], sort: string, sortable: Sortable<T>): readonly T[] {
  let bySortable = sortedLists.get(sortable);
  const cached = bySortable?.get(all)?.get(sort);
  if (cached) return cached as readonly T[];
  const descending = sort.startsWith("-");
  const field = descending ? sort.slice(1) : sort;
  // Own fields only: `valueOf` or `constructor` from the prototype are no sort keys.
  const read = Object.hasOwn(sortable.fields, field) ? sortable.fields[field] : undefined;
  if (!read) {
    throw new TownError(
      "invalid_argument",
      `cannot sort by "${field}"; use ${Object.keys(sortable.fields).join(", ")}`,
    );
  }
  // Read each sort key once, not once per comparison.
  const keyed = all.map((item) => ({ key: read(item), item }));
  keyed.sort((a, b) => {
    const order =
      a.key === b.key ? 0 : a.key === null ? 1 : b.key === null ? -1 : a.key < b.key ? -1 : 1;
    return descending ? -order : order;
  });
  const result = keyed.map((entry) => entry.item);
  if (!bySortable) {
    bySortable = new WeakMap();
    sortedLists.set(sortable, bySortable);
  }
  let bySort = bySortable.get(all);
  if (!bySort) {
    bySort = new Map();
    bySortable.set(all, bySort);
  }
  bySort.set(sort, result);
  return result;
}

function searchText<T>(item: T, sortable: Sortable<T>): string {
  if (typeof item !== "object" || item === null) return sortable.text(item).toLowerCase();
  let text = searchTexts.get(item);
  if (text === undefined) {
    text = sortable.text(item).toLowerCase();
    searchTexts.set(item, text);
  }
  return text;
}

/** The page with each item as `view` shows it: only the fields the wire contract has. */
export function viewPage<T, V>(page: Page<T>, view: (item: T) => V): Page<V> {
  return { ...page, items: page.items.map(view) };
}
