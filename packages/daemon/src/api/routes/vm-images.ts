import type { FastifyInstance, FastifyRequest } from "fastify";
import { TownError } from "@townos/format";
import {
  AddVmImageBodySchema,
  VmImageDownloadSchema,
  VmImageListSchema,
  VmImageParamsSchema,
  type AddVmImageBody,
  type VmImageDownload,
  type VmImageList,
  type VmImageParams,
} from "@townos/api";
import { vmImageUsers } from "../../apps/vm-image-users.js";
import { vmImageName } from "../../runtime/qemu/image-name.js";
import type { VmImageDownload as StoreDownload } from "../../runtime/qemu/images.js";
import { type ApiOptions, services } from "../context.js";

// Every route is for administrators: an image runs as a whole operating system on the box.

function downloadView(download: StoreDownload): VmImageDownload {
  return {
    name: download.name,
    url: download.url,
    phase: download.phase,
    receivedBytes: download.receivedBytes,
    totalBytes: download.totalBytes,
    error: download.error ?? null,
  };
}

export function registerVmImageRoutes(api: FastifyInstance, options: ApiOptions): void {
  // Downloads outlive their request, not the server: closing it stops them (their part is kept to resume).
  const closing = new AbortController();
  api.addHook("onClose", (_instance, done) => {
    closing.abort(new TownError("unavailable", "the daemon is stopping"));
    done();
  });

  api.get<{ Reply: VmImageList }>(
    "/vm-images",
    {
      config: { access: "admin" },
      schema: {
        summary:
          "The VM image store: images with their sizes, source and the apps using them; downloads under way with their progress, and failed ones until dismissed or retried",
        response: { 200: VmImageListSchema },
      },
    },
    async () => {
      const { vmImages, installs } = services(options);
      const users = vmImageUsers(installs.list());
      return {
        images: (await vmImages.list()).map((image) => ({
          name: image.name,
          source: image.url,
          sha256: image.sha256,
          format: image.format,
          virtualSize: image.virtualSize,
          fileSize: image.fileSize,
          // The store keeps ISO 8601; a date it cannot read shows as the epoch rather than failing the listing.
          addedAt: Date.parse(image.addedAt) || 0,
          usedBy: users.get(image.name) ?? [],
        })),
        downloads: vmImages.downloads().map(downloadView),
      };
    },
  );

  api.post<{ Body: AddVmImageBody; Reply: { 202: VmImageDownload } }>(
    "/vm-images",
    {
      config: {
        access: "admin",
        audit: {
          action: "vm-image.add",
          target: (r) => {
            const body = r.body as AddVmImageBody;
            return body.name ?? vmImageName(body.url);
          },
        },
      },
      schema: {
        summary:
          "Add an image from an http(s) URL (LAN addresses allowed): 202 at once, the download goes on in the background with its progress in the listing; an image of that name already there is a conflict (409)",
        body: AddVmImageBodySchema,
        response: { 202: VmImageDownloadSchema },
      },
    },
    async (request, reply) => {
      const { url, sha256 } = request.body;
      const name = request.body.name ?? vmImageName(url);
      const store = services(options).vmImages;
      if (await store.get(name)) {
        throw new TownError(
          "conflict",
          `VM image "${name}" is already in the store; delete it first to download it again`,
        );
      }
      // A person adds the image by hand: the URL may be on the home network.
      const adding = store.add(url, {
        name,
        ...(sha256 === undefined ? {} : { sha256 }),
        allowPrivateAddresses: true,
        signal: closing.signal,
      });
      // Nobody waits for it here: its failure stays in the listing.
      adding.catch(() => undefined);
      const started = store.downloads().find((d) => d.name === name && d.error === undefined);
      if (!started) {
        // The store refused before starting: a bad URL, name or checksum, or another URL under this name.
        await adding;
        throw new TownError("internal", `the download of VM image "${name}" did not start`);
      }
      return reply.status(202).send(downloadView(started));
    },
  );

  api.delete<{ Params: VmImageParams }>(
    "/vm-images/:name",
    {
      config: {
        access: "admin",
        audit: {
          action: "vm-image.remove",
          target: (r: FastifyRequest) => (r.params as VmImageParams).name,
        },
      },
      schema: {
        summary:
          "Delete an image, or dismiss its failed download; refused (409) while an installed app or a dependency of one runs a VM on it",
        params: VmImageParamsSchema,
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const { vmImages, installs } = services(options);
      const users = vmImageUsers(installs.list()).get(name) ?? [];
      if (users.length > 0 && (await vmImages.get(name))) {
        throw new TownError(
          "conflict",
          `VM image "${name}" is used by ${users.join(", ")}: uninstall ${users.length === 1 ? "that app" : "those apps"} first`,
        );
      }
      const failed = vmImages.downloads().some((d) => d.name === name && d.error !== undefined);
      if (!(await vmImages.remove(name)) && !failed) {
        throw new TownError("not_found", `there is no VM image "${name}"`);
      }
      return reply.status(204).send();
    },
  );
}
