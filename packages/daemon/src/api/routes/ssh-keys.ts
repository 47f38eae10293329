import type { FastifyInstance } from "fastify";
import {
  SetSshKeysBodySchema,
  SshKeysSchema,
  type SetSshKeysBody,
  type SshKeys as SshKeysWire,
} from "@townos/api";
import { type ApiOptions, services } from "../context.js";
import { readOsInfo } from "../../system/os-info.js";

/** Root's SSH keys on the Town OS image: administrators only, like everything root can do. */
export function registerSshKeyRoutes(api: FastifyInstance, options: ApiOptions): void {
  // The image's sshd reads the keys; elsewhere they are kept but nothing reads them.
  const served = async () => (await readOsInfo(options.osFiles)).image !== null;

  api.get<{ Reply: SshKeysWire }>(
    "/system/ssh-keys",
    {
      config: { access: "admin" },
      schema: {
        summary: "The SSH keys that may log in to the Town OS image as root",
        response: { 200: SshKeysSchema },
      },
    },
    async () => ({ keys: await services(options).sshKeys.list(), served: await served() }),
  );

  api.put<{ Body: SetSshKeysBody; Reply: SshKeysWire }>(
    "/system/ssh-keys",
    {
      config: {
        access: "admin",
        audit: {
          action: "system.ssh-keys",
          target: (request) =>
            `${(request.body as SetSshKeysBody | undefined)?.keys.length ?? 0} keys`,
        },
      },
      schema: {
        summary:
          "Replace the SSH keys that may log in as root (one authorized_keys line each; kept on the data pool)",
        body: SetSshKeysBodySchema,
        response: { 200: SshKeysSchema },
      },
    },
    async (request) => ({
      keys: await services(options).sshKeys.replace(request.body.keys),
      served: await served(),
    }),
  );
}
