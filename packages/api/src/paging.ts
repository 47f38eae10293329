import { Type, type Static, type TObject, type TSchema } from "@sinclair/typebox";

export const MAX_PAGE_SIZE = 500;
export const DEFAULT_PAGE_SIZE = 50;

/** The query fields every list endpoint takes; lists with filters add theirs. */
export const pageQueryFields = {
  offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE }),
  ),
  /** A field name, `-field` for descending. */
  sort: Type.Optional(Type.String({ maxLength: 64, pattern: "^-?[a-zA-Z]+$" })),
  /** Free-text search. */
  q: Type.Optional(Type.String({ maxLength: 200 })),
};

export const PageQuerySchema = Type.Object(pageQueryFields);
export type PageQuery = Static<typeof PageQuerySchema>;

const pageFields = { total: Type.Integer(), offset: Type.Integer(), limit: Type.Integer() };

/** The envelope every list endpoint returns, around its items' schema. */
export function PageSchema<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item), ...pageFields });
}

/** A page of a list: the type of `PageSchema(ItemSchema)` for `Static<typeof ItemSchema>`. */
export type Page<T> = { items: T[] } & Static<TObject<typeof pageFields>>;
