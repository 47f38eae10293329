import type { IncomingMessage } from "node:http";
import { PassThrough } from "node:stream";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { TownError } from "@townos/format";
import type { PackFormat } from "../../storage/archive.js";
import { MAX_NAME_BYTES } from "../../storage/names.js";
import type { VolumeView } from "../../volumes/volumes.js";
import { pageOf, pageQuerySchema, pageSchema, type PageQuery, type Sortable } from "../paging.js";
import { type ApiOptions, services } from "../context.js";
import { nameParam } from "./schemas.js";

/** Content types an archive upload may be sent as; the archive's own bytes say which format it is. */
export const ARCHIVE_CONTENT_TYPES = [
  "application/octet-stream",
  "application/gzip",
  "application/x-gzip",
  "application/x-xz",
  "application/x-bzip2",
  "application/x-tar",
  "application/zip",
];
/** Most paths one download may name. */
const MAX_DOWNLOAD_PATHS = 1000;

const volumeNameParam = {
  type: "string",
  minLength: 1,
  maxLength: MAX_NAME_BYTES,
  pattern: "^[a-zA-Z0-9][a-zA-Z0-9._-]*$",
} as const;
const volumeParams = { type: "object", properties: { name: volumeNameParam } } as const;
const snapshotParams = {
  type: "object",
  properties: { name: volumeNameParam, snapshot: nameParam },
} as const;
/** Bytes, or a size with a unit ("10gb"); null lifts the quota. */
const quotaSchema = { type: ["integer", "string", "null"], maxLength: 32 } as const;

const volumeSchema = {
  type: "object",
  required: ["name", "kind", "quota", "usedBytes", "owner", "snapshots"],
  properties: {
    name: { type: "string" },
    kind: { type: "string", enum: ["package", "user", "uninstalled"] },
    package: {
      type: ["object", "null"],
      properties: {
        repo: { type: "string" },
        instance: { type: "string" },
        volume: { type: "string" },
      },
    },
    usedBy: { type: ["string", "null"] },
    uninstalledAt: { type: ["integer", "null"] },
    quota: { type: ["integer", "null"] },
    usedBytes: { type: "integer" },
    exclusiveBytes: { type: ["integer", "null"] },
    usagePartial: { type: "boolean" },
    owner: {
      type: "object",
      properties: { uid: { type: "integer" }, gid: { type: "integer" } },
    },
    snapshots: { type: "integer" },
  },
} as const;

const snapshotSchema = {
  type: "object",
  required: ["volume", "name", "createdAt"],
  properties: {
    volume: { type: "string" },
    name: { type: "string" },
    createdAt: { type: "integer" },
  },
} as const;

const uploadResultSchema = {
  type: "object",
  required: ["volume", "format", "entries", "bytes", "refused", "refusedCount"],
  properties: {
    volume: { type: "string" },
    heldApp: { type: ["string", "null"] },
    format: { type: "string" },
    entries: { type: "integer" },
    bytes: { type: "integer" },
    refused: {
      type: "array",
      items: {
        type: "object",
        properties: { path: { type: "string" }, reason: { type: "string" } },
      },
    },
    refusedCount: { type: "integer" },
  },
} as const;

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

type VolumeParams = { name: string };
type SnapshotParams = { name: string; snapshot: string };
type Quota = number | string | null;

const volumeTarget = (request: FastifyRequest): string => (request.params as VolumeParams).name;

export function registerVolumeRoutes(api: FastifyInstance, options: ApiOptions): void {
  const volumes = () => services(options).volumes;

  api.get(
    "/storage",
    {
      config: { access: "user" },
      schema: {
        summary: "How volumes are stored, and what is enforced (quotas, snapshots, usage)",
        response: {
          200: {
            type: "object",
            required: ["mode", "reason", "capabilities", "notes"],
            properties: {
              mode: { type: "string", enum: ["btrfs", "btrfs-loop", "directory"] },
              reason: { type: "string" },
              capabilities: {
                type: "object",
                properties: {
                  quotas: { type: "boolean" },
                  snapshots: { type: "string", enum: ["atomic", "copy"] },
                  usage: { type: "string", enum: ["accounted", "walked"] },
                },
              },
              notes: { type: "array", items: { type: "string" } },
              disk: {
                type: ["object", "null"],
                properties: {
                  totalBytes: { type: "integer" },
                  freeBytes: { type: "integer" },
                },
              },
            },
          },
        },
      },
    },
    async () => volumes().info(),
  );

  api.get<{ Querystring: PageQuery }>(
    "/volumes",
    {
      config: { access: "user" },
      schema: {
        summary: "Every volume: kind, the app using it, quota, usage, owner, snapshots",
        querystring: { type: "object", properties: pageQuerySchema },
        response: { 200: pageSchema(volumeSchema) },
      },
    },
    async (request) => pageOf(await volumes().list(), request.query, volumeSortable),
  );

  api.post<{ Body: { name: string; quota?: Quota } }>(
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
        body: {
          type: "object",
          required: ["name"],
          additionalProperties: false,
          properties: { name: nameParam, quota: quotaSchema },
        },
        response: { 201: volumeSchema },
      },
    },
    async (request, reply) => {
      const { name, quota } = request.body;
      return reply.status(201).send(await volumes().create(name, quota));
    },
  );

  api.get<{ Params: VolumeParams }>(
    "/volumes/:name",
    {
      config: { access: "user" },
      schema: { summary: "One volume", params: volumeParams, response: { 200: volumeSchema } },
    },
    async (request) => volumes().get(request.params.name),
  );

  api.delete<{ Params: VolumeParams }>(
    "/volumes/:name",
    {
      config: { access: "admin", audit: { action: "volume.remove", target: volumeTarget } },
      schema: {
        summary:
          "Delete a volume and its snapshots; a package volume of an installed app is refused (409)",
        params: volumeParams,
      },
    },
    async (request, reply) => {
      await volumes().remove(request.params.name);
      return reply.status(204).send();
    },
  );

  api.put<{ Params: VolumeParams; Body: { quota: Quota } }>(
    "/volumes/:name/quota",
    {
      config: { access: "admin", audit: { action: "volume.quota", target: volumeTarget } },
      schema: {
        summary: "Set a volume's quota (bytes or e.g. 10gb), or lift it with null",
        params: volumeParams,
        body: {
          type: "object",
          required: ["quota"],
          additionalProperties: false,
          properties: { quota: quotaSchema },
        },
        response: { 200: volumeSchema },
      },
    },
    async (request) => volumes().setQuota(request.params.name, request.body.quota),
  );

  api.get<{ Params: VolumeParams }>(
    "/volumes/:name/snapshots",
    {
      config: { access: "user" },
      schema: {
        summary: "A volume's snapshots, by name",
        params: volumeParams,
        response: { 200: { type: "array", items: snapshotSchema } },
      },
    },
    async (request) => volumes().snapshots(request.params.name),
  );

  api.post<{ Params: VolumeParams; Body: { name?: string } | undefined }>(
    "/volumes/:name/snapshots",
    {
      config: { access: "admin", audit: { action: "volume.snapshot", target: volumeTarget } },
      schema: {
        summary: "Take a snapshot (name default: the time, YYYYMMDDTHHMMSSZ)",
        params: volumeParams,
        body: {
          type: "object",
          additionalProperties: false,
          properties: { name: nameParam },
        },
        response: { 201: snapshotSchema },
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
      schema: { summary: "Delete a snapshot", params: snapshotParams },
    },
    async (request, reply) => {
      await volumes().removeSnapshot(request.params.name, request.params.snapshot);
      return reply.status(204).send();
    },
  );

  // Packing a package volume hands out the app's data, secrets included: administrators only.
  api.get<{ Params: VolumeParams; Querystring: { format?: PackFormat; path?: string[] } }>(
    "/volumes/:name/archive",
    {
      config: { access: "admin" },
      schema: {
        summary: "Download a volume, or chosen paths in it, as tar.gz or tar.xz (streamed)",
        params: volumeParams,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            format: { type: "string", enum: ["tar.gz", "tar.xz"], default: "tar.gz" },
            path: {
              type: "array",
              maxItems: MAX_DOWNLOAD_PATHS,
              items: { type: "string", minLength: 1, maxLength: 4096 },
            },
          },
        },
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
    uploads.addContentTypeParser(ARCHIVE_CONTENT_TYPES, (_request, payload, done) => {
      done(null, payload);
    });
    uploads.put<{ Params: VolumeParams }>(
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
          params: volumeParams,
          response: { 200: uploadResultSchema },
        },
      },
      async (request, reply) => {
        const raw = request.body as IncomingMessage;
        // The unpacker destroys what it reads when it stops early; the request must live on to be answered.
        const input = new PassThrough();
        raw.pipe(input);
        raw.once("close", () => {
          if (!raw.complete) input.destroy(new TownError("io", "the upload was cut off"));
        });
        const length = request.headers["content-length"];
        try {
          return await volumes().upload(request.params.name, input, {
            ...(length === undefined ? {} : { declaredBytes: Number(length) }),
          });
        } finally {
          // What follows a failure (or the archive's end) is not read: the connection cannot carry another request.
          if (!raw.readableEnded) {
            raw.unpipe(input);
            void reply.header("connection", "close");
          }
        }
      },
    );
  });
}
