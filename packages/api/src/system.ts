import { Type, type Static } from "@sinclair/typebox";
import { Nullable, StringEnum } from "./schema.js";

/** Whether the daemon is booting or ready, and whether first-run setup is needed. */
export const StatusSchema = Type.Object({
  state: StringEnum(["booting", "ready", "failed"]),
  step: Type.String(),
  error: Nullable(Type.String()),
  version: Type.String(),
  /** Null while booting: the accounts are not read yet. */
  setupNeeded: Nullable(Type.Boolean()),
});
export type Status = Static<typeof StatusSchema>;

export const SystemUsageSchema = Type.Object({
  cpu: Type.Object({
    cores: Type.Integer(),
    /** Share of CPU time spent working since the previous sample. */
    busyPercent: Type.Number(),
    /** 1, 5 and 15 minute load averages. */
    load: Type.Array(Type.Number()),
  }),
  memory: Type.Object({ totalBytes: Type.Integer(), availableBytes: Type.Integer() }),
  uptimeSeconds: Type.Integer(),
});
export type SystemUsage = Static<typeof SystemUsageSchema>;

/** What the Town OS image says about the box; both null off the image. */
export const OsInfoSchema = Type.Object({
  /** The running image (`/etc/town-os-release`). */
  image: Nullable(Type.Object({ version: Type.String(), built: Nullable(Type.String()) })),
  /**
   * Where apps and settings are kept, as decided at boot: `disk` (the data
   * pool, `detail` its disks; `degraded` when a disk of a RAID1 pool is
   * missing) or `ram` (lost at reboot, `detail` why).
   */
  data: Nullable(
    Type.Object({
      storage: StringEnum(["disk", "ram"]),
      detail: Type.String(),
      degraded: Type.Boolean(),
    }),
  ),
});
export type OsInfo = Static<typeof OsInfoSchema>;

/** A public key that may log in to the Town OS image as root over SSH. */
export const SshKeySchema = Type.Object({
  type: Type.String(),
  /** As `ssh-keygen -l` shows it (`SHA256:…`). */
  fingerprint: Type.String(),
  comment: Type.String(),
  /** The whole authorized_keys line. */
  line: Type.String(),
});
export type SshKey = Static<typeof SshKeySchema>;

export const SshKeysSchema = Type.Object({
  keys: Type.Array(SshKeySchema),
  /** Whether this box runs an SSH server that reads them (the Town OS image). */
  served: Type.Boolean(),
});
export type SshKeys = Static<typeof SshKeysSchema>;

/** The keys, each one authorized_keys line (`TYPE BASE64 [COMMENT]`), replacing all. */
export const SetSshKeysBodySchema = Type.Object({
  keys: Type.Array(Type.String({ maxLength: 8192 }), { maxItems: 100 }),
});
export type SetSshKeysBody = Static<typeof SetSshKeysBodySchema>;

/** Root's password for the box's own screen and keyboard (never SSH): only whether there is one. */
export const ConsolePasswordSchema = Type.Object({
  set: Type.Boolean(),
  /** Whether this box is the Town OS image, whose console login uses it. */
  served: Type.Boolean(),
});
export type ConsolePassword = Static<typeof ConsolePasswordSchema>;

/** Kept as a hash only. The daemon wants 8 to 256 characters (not UTF-16 units), no control characters. */
export const SetConsolePasswordBodySchema = Type.Object({
  password: Type.String({ maxLength: 1024 }),
});
export type SetConsolePasswordBody = Static<typeof SetConsolePasswordBodySchema>;
