import { Type, type Static } from "@sinclair/typebox";
import { Nullable, StringEnum } from "./schema.js";

/**
 * A page's name: one DNS label, as a package's (`<page>.<tld>` is its name).
 * The daemon refuses system names and names an app already has.
 */
export const PageNameParam = Type.String({
  minLength: 1,
  maxLength: 63,
  pattern: "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
});

/** A path inside the source or image: relative, `/`-separated, no `..`; checked again by the daemon. */
const RelativeDir = Type.String({ minLength: 1, maxLength: 1024 });

export const PAGE_SOURCE_TYPES = ["archive", "git", "image"] as const;
export type PageSourceType = (typeof PAGE_SOURCE_TYPES)[number];

/** Where a page's content comes from. The fields each type takes are named in `CreatePageBody`. */
export const PageSourceViewSchema = Type.Object({
  type: StringEnum(PAGE_SOURCE_TYPES),
  /** git: the URL without its credentials. */
  url: Nullable(Type.String()),
  /** git: null for the remote's default branch. */
  branch: Nullable(Type.String()),
  /** archive and git: the sub-directory served (or built); null for the whole tree. */
  dir: Nullable(Type.String()),
  /** image: the image reference. */
  image: Nullable(Type.String()),
  /** image: the directory inside the image that is extracted. */
  path: Nullable(Type.String()),
});
export type PageSourceView = Static<typeof PageSourceViewSchema>;

/** An optional build: `command` runs by `/bin/sh -c` in a container of `image`, in the source's directory (mounted at /site). */
export const PageBuildSchema = Type.Object(
  {
    image: Type.String({ minLength: 1, maxLength: 512 }),
    command: Type.String({ minLength: 1, maxLength: 4096 }),
    /** The directory the build writes, relative to the source's directory: what is served. */
    output: RelativeDir,
  },
  { additionalProperties: false },
);
export type PageBuild = Static<typeof PageBuildSchema>;

export const PAGE_STATES = ["empty", "deploying", "online", "failed"] as const;
export type PageState = (typeof PAGE_STATES)[number];

/** One deployed version of a page's content. */
export const PageVersionSchema = Type.Object({
  id: Type.String(),
  createdAt: Type.Integer(),
  files: Type.Integer(),
  bytes: Type.Integer(),
  /** git: the commit it was made from. */
  commit: Nullable(Type.String()),
});
export type PageVersion = Static<typeof PageVersionSchema>;

export const PageInfoSchema = Type.Object({
  name: Type.String(),
  source: PageSourceViewSchema,
  build: Nullable(PageBuildSchema),
  /**
   * `empty`: nothing deployed yet (an archive page waits for its upload);
   * `deploying`: a new version is being made (the current one stays online);
   * `online`: the current version is served; `failed`: the last deploy failed
   * (`error` says why) and the current version, if any, stays online.
   */
  state: StringEnum(PAGE_STATES),
  /** What a deploy under way is doing (`cloning`, `building`…); null when none is. */
  step: Nullable(Type.String()),
  error: Nullable(Type.String()),
  /** `https://<page>.<tld>/` and one per public domain; empty without networking. */
  urls: Type.Array(Type.String()),
  /** Public domains (ACME certificates through the ingress). */
  domains: Type.Array(Type.String()),
  current: Nullable(PageVersionSchema),
  /** What a rollback brings back. */
  previous: Nullable(PageVersionSchema),
  createdAt: Type.Integer(),
  /** When the current version went online; null before the first. */
  updatedAt: Nullable(Type.Integer()),
  /** Links and special files the last deploy left out (a site is plain files and directories). */
  skipped: Type.Array(Type.String()),
});
export type PageInfo = Static<typeof PageInfoSchema>;

export const PageListSchema = Type.Object({ items: Type.Array(PageInfoSchema) });
export type PageList = Static<typeof PageListSchema>;

export const CreatePageBodySchema = Type.Object(
  {
    name: PageNameParam,
    /**
     * `archive`: created empty, content comes by upload (`dir` optional);
     * `git`: `url` (http or https, credentials allowed and kept secret), `branch` and `dir` optional;
     * `image`: `image` and `path`.
     */
    source: Type.Object(
      {
        type: StringEnum(PAGE_SOURCE_TYPES),
        url: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
        branch: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        dir: Type.Optional(RelativeDir),
        image: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
        path: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
      },
      { additionalProperties: false },
    ),
    build: Type.Optional(PageBuildSchema),
    domains: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { maxItems: 20 }),
    ),
  },
  { additionalProperties: false },
);
export type CreatePageBody = Static<typeof CreatePageBodySchema>;

export const PageParamsSchema = Type.Object({ name: PageNameParam });
export type PageParams = Static<typeof PageParamsSchema>;

export const PageDomainParamsSchema = Type.Object({
  name: PageNameParam,
  domain: Type.String({ minLength: 1, maxLength: 253 }),
});
export type PageDomainParams = Static<typeof PageDomainParamsSchema>;

/** The URL a git host calls on a push (POST, no body needed): it redeploys at once. */
export const PageHookSchema = Type.Object({ url: Type.String() });
export type PageHook = Static<typeof PageHookSchema>;

export const PageHookParamsSchema = Type.Object({
  name: PageNameParam,
  token: Type.String({ minLength: 1, maxLength: 128 }),
});
export type PageHookParams = Static<typeof PageHookParamsSchema>;

/** One line of a page's build log (the last deploy's: source, build, publish). */
export const PageLogLineSchema = Type.Object({
  time: Type.Integer(),
  stream: StringEnum(["stdout", "stderr", "town"]),
  text: Type.String(),
});
export type PageLogLine = Static<typeof PageLogLineSchema>;

export const PageLogSchema = Type.Object({
  items: Type.Array(PageLogLineSchema),
  /** Lines dropped from the front to keep the log bounded. */
  truncated: Type.Boolean(),
});
export type PageLog = Static<typeof PageLogSchema>;

/** An event of a followed build log: a line, or the deploy's end with the page's state. */
export type PageLogEvent =
  ({ type: "line" } & PageLogLine) | { type: "end"; state: PageState; error: string | null };
