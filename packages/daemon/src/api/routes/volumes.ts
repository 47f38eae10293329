import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  CreateVolumeBodySchema,
  DownloadQuerySchema,
  PageQuerySchema,
  PageSchema,
  RestoreResultSchema,
  SetQuotaBodySchema,
  SnapshotBodySchema,
  SnapshotListSchema,
  SnapshotParamsSchema,
  SnapshotViewSchema,
  StorageViewSchema,
  UploadResultSchema,
  VolumeParamsSchema,
  VolumeViewSchema,
  type CreateVolumeBody,
  type DownloadQuery,
  type Page,
  type PageQuery,
  type RestoreResult,
  type SnapshotParams,
  type SnapshotView,
  type StorageView,
  type UploadResult,
  type VolumeParams,
  type VolumeView,
} from "@townos/api";
import { pageOf, type Sortable } from "../paging.js";
import { acceptArchiveBodies, consumeUpload } from "../upload-body.js";
import { type ApiOptions, services } from "../context.js";
import { managedAs } from "../managed.js";
import { parseVolumeName } from "../../storage/names.js";

const volumeSortable: Sortable<VolumeView> = {
  defaultSort: "name",
  fields: {
    name: (volume) => volume.name,
    kind: (volume) => `${volume.kind}\u0000${volume.name}`,
    usedBytes: (volume) => volume.usedBytes,
    quota: (volume) => volume.quota,
  },
  text: (volume) => `${volume.name} ${volume.usedBy ?? ""}`,
};

const volumeTarget = (request: FastifyRequest): string => (request.params as VolumeParams).name;
/** Only a person's volume can be declared, by its name without `user.`. */
const managedVolume = managedAs("volume", (request) => {
  const parsed = parseVolumeName(volumeTarget(request));
  return parsed?.kind === "user" ? parsed.name : undefined;
});

export function registerVolumeRoutes(api: FastifyInstance, options: ApiOptions): void {
  const volumes = () => services(options).volumes;

  api.get<{ Reply: StorageView }>(
    "/storage",
    {
      config: { access: "user" },
      schema: {
        summary: "How volumes are stored, and what is enforced (quotas, snapshots, usage)",
        response: { 200: StorageViewSchema },
      },
    },
    async () => volumes().info(),
  );

  api.get<{ Querystring: PageQuery; Reply: Page<VolumeView> }>(
    "/volumes",
    {
      config: { access: "user" },
      schema: {
        summary: "Every volume: kind, the app using it, quota, usage, owner, snapshots",
        querystring: PageQuerySchema,
        response: { 200: PageSchema(VolumeViewSchema) },
      },
    },
    async (request) => pageOf(await volumes().list(), request.query, volumeSortable),
  );

  api.post<{ Body: CreateVolumeBody; Reply: { 201: VolumeView } }>(
    "/volumes",
    {
      config: {
        access: "admin",
        audit: {
          action: "volume.create",
          target: (r) => `user.${(r.body as { name: string }).name}`,
        },
      },
      schema: {
        summary:
          "Make a user volume `user.<name>` (quota default: the storage.default_quota setting)",
        body: CreateVolumeBodySchema,
        response: { 201: VolumeViewSchema },
      },
    },
    async (request, reply) => {
      const { name, quota } = request.body;
      return reply.status(201).send(await volumes().create(name, quota));
    },
  );

  api.get<{ Params: VolumeParams; Reply: VolumeView }>(
    "/volumes/:name",
    {
      config: { access: "user" },
      schema: {
        summary: "One volume",
        params: VolumeParamsSchema,
        response: { 200: VolumeViewSchema },
      },
    },
    async (request) => volumes().get(request.params.name),
  );

  api.delete<{ Params: VolumeParams }>(
    "/volumes/:name",
    {
      config: {
        access: "admin",
        managed: managedVolume,
        audit: { action: "volume.remove", target: volumeTarget },
      },
      schema: {
        summary:
          "Delete a volume and its snapshots; a package volume of an installed app is refused (409)",
        params: VolumeParamsSchema,
      },
    },
    async (request, reply) => {
      await volumes().remove(request.params.name);
      return reply.status(204).send();
    },
  );

  api.put<{ Params: VolumeParams; Body: { quota: number | string | null }; Reply: VolumeView }>(
    "/volumes/:name/quota",
    {
      config: {
        access: "admin",
        managed: managedVolume,
        audit: { action: "volume.quota", target: volumeTarget },
      },
      schema: {
        summary: "Set a volume's quota (bytes or e.g. 10gb), or lift it with null",
        params: VolumeParamsSchema,
        body: SetQuotaBodySchema,
        response: { 200: VolumeViewSchema },
      },
    },
    async (request) => volumes().setQuota(request.params.name, request.body.quota),
  );

  api.get<{ Params: VolumeParams; Reply: SnapshotView[] }>(
    "/volumes/:name/snapshots",
    {
      config: { access: "user" },
      schema: {
        summary: "A volume's snapshots, by name",
        params: VolumeParamsSchema,
        response: { 200: SnapshotListSchema },
      },
    },
    async (request) => volumes().snapshots(request.params.name),
  );

  api.post<{
    Params: VolumeParams;
    Body: { name?: string } | undefined;
    Reply: { 201: SnapshotView };
  }>(
    "/volumes/:name/snapshots",
    {
      config: { access: "admin", audit: { action: "volume.snapshot", target: volumeTarget } },
      schema: {
        summary: "Take a snapshot (name default: the time, YYYYMMDDTHHMMSSZ)",
        params: VolumeParamsSchema,
        body: SnapshotBodySchema,
        response: { 201: SnapshotViewSchema },
      },
    },
    async (request, reply) => {
      return reply
        .status(201)
        .send(await volumes().snapshot(request.params.name, request.body?.name));
    },
  );

  api.delete<{ Params: SnapshotParams }>(
    "/volumes/:name/snapshots/:snapshot",
    {
      config: {
        access: "admin",
        audit: {
          action: "volume.snapshot.remove",
          target: (r) => {
            const { name, snapshot } = r.params as SnapshotParams;
            return `${name}@${snapshot}`;
          },
        },
      },
      schema: { summary: "Delete a snapshot", params: SnapshotParamsSchema },
    },
    async (request, reply) => {
      await volumes().removeSnapshot(request.params.name, request.params.snapshot);
      return reply.status(204).send();
    },
  );

  api.post<{ Params: SnapshotParams; Reply: RestoreResult }>(
    "/volumes/:name/snapshots/:snapshot/restore",
    {
      config: {
        access: "admin",
        audit: {
          action: "volume.restore",
          target: (r) => {
            const { name, snapshot } = r.params as SnapshotParams;
            return `${name}@${snapshot}`;
          },
        },
      },
      schema: {
        summary:
          "Give a volume the content of one of its snapshots (which stay); a package volume's app is stopped meanwhile",
        params: SnapshotParamsSchema,
        response: { 200: RestoreResultSchema },
      },
    },
    async (request) => volumes().restore(request.params.name, request.params.snapshot),
  );

  // Packing a package volume hands out the app's data, secrets included: administrators only.
  api.get<{ Params: VolumeParams; Querystring: DownloadQuery }>(
    "/volumes/:name/archive",
    {
      config: { access: "admin" },
      schema: {
        summary: "Download a volume, or chosen paths in it, as tar.gz or tar.xz (streamed)",
        params: VolumeParamsSchema,
        querystring: DownloadQuerySchema,
      },
    },
    async (request, reply) => {
      const format = request.query.format ?? "tar.gz";
      const { stream, filename } = await volumes().download(request.params.name, {
        format,
        ...(request.query.path ? { paths: request.query.path } : {}),
      });
      return reply
        .header("content-type", format === "tar.gz" ? "application/gzip" : "application/x-xz")
        .header("content-disposition", `attachment; filename="${filename}"`)
        .send(stream);
    },
  );

  // The upload's body goes to the unpacker as it arrives: Fastify neither buffers it nor applies its bodyLimit.
  void api.register(async (uploads) => {
    acceptArchiveBodies(uploads);
    uploads.put<{ Params: VolumeParams; Reply: UploadResult }>(
      "/volumes/:name/archive",
      {
        config: {
          access: "admin",
          audit: {
            action: "volume.upload",
            target: volumeTarget,
            detail: (r) => ({
              contentType: r.headers["content-type"],
              contentLength: r.headers["content-length"],
            }),
          },
        },
        schema: {
          summary:
            "Upload an archive (tar, tar.gz, tar.xz, tar.bz2, zip) into a volume; entries that would escape it are refused and listed",
          params: VolumeParamsSchema,
          response: { 200: UploadResultSchema },
        },
      },
      async (request, reply) =>
        consumeUpload(request, reply, (input, declaredBytes) =>
          volumes().upload(request.params.name, input, {
            ...(declaredBytes === undefined ? {} : { declaredBytes }),
          }),
        ),
    );
  });
}
