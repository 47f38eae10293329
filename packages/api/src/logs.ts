import { Type, type Static } from "@sinclair/typebox";
import { NameParam } from "./common.js";
import { Nullable, StringEnum } from "./schema.js";

/** Most lines one page (or a follow's history) may ask for. */
export const MAX_LOG_PAGE = 1000;

export const LogEntrySchema = Type.Object({
  container: Type.String(),
  instance: Type.String(),
  stream: StringEnum(["stdout", "stderr"]),
  time: Type.Integer({ description: "ms since the epoch, whole seconds" }),
  text: Type.String(),
  /** The line was longer than the line limit and was cut. */
  truncated: Type.Boolean(),
});
export type LogEntry = Static<typeof LogEntrySchema>;

export const LogPageSchema = Type.Object({
  /** Oldest first. */
  items: Type.Array(LogEntrySchema),
  /** Cursor for the page before this one (pass as `before`); null when nothing is older. */
  before: Nullable(Type.String()),
  /** The scan stopped at its byte bound: older matches may exist beyond `before`. */
  partial: Type.Boolean(),
  /** Bytes of log text read to make this page. */
  scannedBytes: Type.Integer(),
});
export type LogPage = Static<typeof LogPageSchema>;

/** An event of a live log stream: a line, or a container attached, detached or missing. */
export type LogEvent =
  | ({ type: "line" } & LogEntry)
  | {
      type: "container";
      container: string;
      instance: string;
      /** `attached`: following it (again); `detached`: it stopped; `missing`: it does not exist. */
      state: "attached" | "detached" | "missing";
    };

const InstanceParam = Type.String({
  ...NameParam,
  description: "only this package of the app's tree",
});
const SearchParam = Type.String({
  minLength: 1,
  maxLength: 200,
  description: "case-insensitive substring",
});

export const LogsQuerySchema = Type.Object(
  {
    instance: Type.Optional(InstanceParam),
    search: Type.Optional(SearchParam),
    before: Type.Optional(Type.String({ maxLength: 40, pattern: "^[0-9]+\\.[0-9]+\\.[0-9]+$" })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LOG_PAGE, default: 200 })),
  },
  { additionalProperties: false },
);
export type LogsQuery = Static<typeof LogsQuerySchema>;

export const LogStreamQuerySchema = Type.Object(
  {
    instance: Type.Optional(InstanceParam),
    search: Type.Optional(SearchParam),
    tail: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_LOG_PAGE, default: 100 })),
  },
  { additionalProperties: false },
);
export type LogStreamQuery = Static<typeof LogStreamQuerySchema>;

export const ContainerHealthSchema = Type.Object({
  container: Type.String(),
  instance: Type.String(),
  state: StringEnum(["running", "paused", "restarting", "exited", "created", "missing"]),
  /** Exit code of the last run; null while it never ended or runs. */
  exitCode: Nullable(Type.Integer()),
  restartCount: Type.Integer(),
  /** Ms since the epoch, or null. */
  startedAt: Nullable(Type.Integer()),
  finishedAt: Nullable(Type.Integer()),
  oomKilled: Type.Boolean(),
  /** Why the last start failed, or null. */
  error: Nullable(Type.String()),
  health: Type.Object({
    status: StringEnum(["healthy", "unhealthy", "starting", "none"]),
    failingStreak: Type.Integer(),
    /** Output of the last probe (bounded), or null when none ran. */
    lastOutput: Nullable(Type.String()),
    lastExitCode: Nullable(Type.Integer()),
    lastCheckAt: Nullable(Type.Integer()),
    nextCheckAt: Nullable(Type.Integer()),
  }),
});
export type ContainerHealth = Static<typeof ContainerHealthSchema>;

export const AppHealthSchema = Type.Object({
  repo: Type.String(),
  name: Type.String(),
  enabled: Type.Boolean(),
  /** Whether it should be running now (false once somebody stopped it). */
  running: Type.Boolean(),
  /** One per container of the app, dependencies first. */
  containers: Type.Array(ContainerHealthSchema),
});
export type AppHealth = Static<typeof AppHealthSchema>;
