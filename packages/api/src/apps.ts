import { Type, type Static } from "@sinclair/typebox";
import { IssueSchema, NameParam } from "./common.js";
import { ExposureSchema, PlannedPortSchema, PlannedVolumeSchema, RuntimeSchema } from "./plan.js";
import { Dictionary, Nullable, StringEnum } from "./schema.js";

export const AppNoteSchema = Type.Object({
  label: Type.String(),
  value: Type.String({ description: "empty in a secret note, except for administrators" }),
  type: Type.String(),
  secret: Type.Boolean({ description: "holds the value of a secret answer" }),
});
export type AppNote = Static<typeof AppNoteSchema>;

/** What a running VM is made of, for an app whose own package runs as a virtual machine. */
export const VmFactsSchema = Type.Object({
  /** The install instance that runs the VM (the app's own). */
  instance: Type.String(),
  /** `vm.image` of the plan: a URL or the name of an image in the VM image store. */
  image: Type.String(),
  /** `kvm` or `tcg` (emulation); null while the VM does not exist. */
  accelerator: Type.Unsafe<"kvm" | "tcg" | null>({
    type: ["string", "null"],
    enum: ["kvm", "tcg", null],
  }),
  memoryBytes: Type.Integer(),
  cpus: Type.Integer(),
  /** The disk as the guest sees it; null while the VM does not exist. */
  diskVirtualBytes: Nullable(Type.Integer()),
  /** What the VM's own disk file takes on the host; null while the VM does not exist. */
  diskAllocatedBytes: Nullable(Type.Integer()),
  /** QEMU's run state (`running`, `paused`…); null while QEMU does not run. */
  qmpStatus: Nullable(Type.String()),
  /** Host ports forwarded to the guest. */
  ports: Type.Array(
    Type.Object({
      hostAddress: Type.String(),
      hostPort: Type.Integer(),
      guestPort: Type.Integer(),
    }),
  ),
});
export type VmFacts = Static<typeof VmFactsSchema>;

export const AppViewSchema = Type.Object({
  repo: Type.String(),
  name: Type.String(),
  version: Type.String(),
  enabled: Type.Boolean(),
  /** Should run now (false once stopped); `held` while an upload into its volume goes on. */
  running: Type.Boolean(),
  held: Type.Boolean(),
  /** An upgrade's post_update commands have not run yet. */
  postUpdatePending: Type.Boolean(),
  /** Where people open the app: its HTTPS name (and public domains) through the ingress. */
  urls: Type.Array(Type.String()),
  /** The app's names are in the box's DNS. */
  dnsPublished: Type.Boolean(),
  installedAt: Type.Integer(),
  /** Published host ports, with who can reach them. */
  ports: Type.Array(
    Type.Object({
      instance: Type.String(),
      name: Nullable(Type.String()),
      host: Type.Integer(),
      container: Type.Integer(),
      exposure: ExposureSchema,
    }),
  ),
  volumes: Type.Array(Type.Required(PlannedVolumeSchema)),
  notes: Type.Array(AppNoteSchema),
  /** One per container of the app (dependencies first); `missing` when it does not exist. */
  containers: Type.Array(Type.Object({ name: Type.String(), state: Type.String() })),
  lastError: Nullable(Type.String()),
  /**
   * The app's virtual machine; null for a container app. Listings leave out
   * what only the running VM tells (accelerator, disk, QMP state: null).
   */
  vm: Nullable(VmFactsSchema),
});
export type AppView = Static<typeof AppViewSchema>;

export const AnswersSchema = Dictionary(Type.String({ maxLength: 4096 }), { maxProperties: 200 });

const VersionParam = Type.String({ minLength: 1, maxLength: 64 });

const OAuthFlowsSchema = Dictionary(Type.String({ maxLength: 64 }), {
  description:
    "Question → id of a finished account link (POST /oauth/flows): the box answers the question with its token",
  maxProperties: 16,
});

/** An install (or its preview); `oauthFlows` names finished account links whose tokens answer those questions. */
export const InstallRequestSchema = Type.Object(
  {
    repo: NameParam,
    name: NameParam,
    /** Absent: the latest valid version in that repository. */
    version: Type.Optional(VersionParam),
    answers: Type.Optional(AnswersSchema),
    /** Take back volumes an earlier uninstall kept (default true): the newest of each. */
    reuseVolumes: Type.Optional(Type.Boolean()),
    /** Take back only volumes kept from this version (implies reuseVolumes). */
    importFromVersion: Type.Optional(VersionParam),
    oauthFlows: Type.Optional(OAuthFlowsSchema),
  },
  { additionalProperties: false },
);
export type InstallRequest = Static<typeof InstallRequestSchema>;

export const UpgradeBodySchema = Type.Object(
  {
    version: Type.Optional(VersionParam),
    answers: Type.Optional(AnswersSchema),
    oauthFlows: Type.Optional(OAuthFlowsSchema),
  },
  { additionalProperties: false },
);
export type UpgradeBody = Static<typeof UpgradeBodySchema>;

export const ExposeBodySchema = Type.Object(
  { port: Type.Integer({ minimum: 1, maximum: 65535 }), exposure: ExposureSchema },
  { additionalProperties: false },
);
export type ExposeBody = Static<typeof ExposeBodySchema>;

export const PublishNamesBodySchema = Type.Object(
  { published: Type.Boolean() },
  { additionalProperties: false },
);

export const AppParamsSchema = Type.Object({ repo: NameParam, name: NameParam });
export type AppParams = Static<typeof AppParamsSchema>;

export const UninstallQuerySchema = Type.Object({ purge: Type.Optional(Type.Boolean()) });

/** The answers last given for a package, to offer again on reinstall or upgrade. */
export const LastAnswersSchema = Type.Object({ version: Type.String(), answers: AnswersSchema });
export type LastAnswers = Static<typeof LastAnswersSchema>;

/** What an install would do, with the answers given; nothing is changed. */
export const AppInstallPreviewSchema = Type.Object({
  repo: Type.String(),
  name: Type.String(),
  version: Type.String(),
  runtime: RuntimeSchema,
  images: Type.Array(Type.String()),
  /** One per volume of the app and its dependencies. */
  volumes: Type.Array(
    Type.Object({
      instance: Type.String(),
      name: Type.String(),
      volume: Type.String(),
      mountpoint: Type.String(),
      quota: Nullable(Type.Integer()),
      /** `create`: new and empty; `reuse`: taken back from an uninstall (`from`). */
      action: StringEnum(["create", "reuse"]),
      from: Nullable(Type.String()),
    }),
  ),
  ports: Type.Array(PlannedPortSchema),
  disk: Type.Object({
    /** Quotas of the volumes to create, added up: the most they can take. */
    quotaBytes: Type.Integer(),
    /** Volumes to create that have no quota: their growth is bounded only by the disk. */
    unboundedVolumes: Type.Integer(),
    freeBytes: Nullable(Type.Integer()),
    quotasEnforced: Type.Boolean(),
    fits: Type.Boolean(),
  }),
  /** Questions that still need an answer (or a better one). */
  questionsToAnswer: Type.Array(Type.String()),
  /** What is wrong with each of those answers, as an install would say it. */
  answerProblems: Type.Array(IssueSchema),
  problems: Type.Array(IssueSchema),
});
export type AppInstallPreview = Static<typeof AppInstallPreviewSchema>;

/** One line of a change's progress, as streamed (`Accept: text/event-stream`). */
export const AppProgressSchema = Type.Object({
  step: Type.String(),
  state: StringEnum(["started", "done"]),
  /** A line of what the step is doing (pull progress, say). */
  detail: Type.Optional(Type.String()),
  at: Type.Integer(),
});
export type AppProgress = Static<typeof AppProgressSchema>;

/** An event of a change's progress stream: steps, then the result. */
export type AppChangeEvent =
  { type: "progress"; progress: AppProgress } | { type: "done"; settled: boolean; app: AppView };
