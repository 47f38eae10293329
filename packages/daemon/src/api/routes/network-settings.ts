import type { FastifyInstance } from "fastify";
import {
  NetworkSettingsStatusSchema,
  SetNetworkSettingsBodySchema,
  type NetworkSettingsStatus,
  type SetNetworkSettingsBody,
} from "@townos/api";
import { type ApiOptions, services } from "../context.js";

/** The box's own address (DHCP or fixed): administrators only, like everything root can do. */
export function registerNetworkSettingsRoutes(api: FastifyInstance, options: ApiOptions): void {
  api.get<{ Reply: NetworkSettingsStatus }>(
    "/system/network",
    {
      config: { access: "admin" },
      schema: {
        summary: "How the box gets its address (DHCP or fixed), and its wired interfaces",
        response: { 200: NetworkSettingsStatusSchema },
      },
    },
    async () => services(options).osNetwork.status(),
  );

  api.put<{ Body: SetNetworkSettingsBody; Reply: NetworkSettingsStatus }>(
    "/system/network",
    {
      config: {
        access: "admin",
        audit: {
          action: "system.network",
          target: (request) => {
            const body = request.body as SetNetworkSettingsBody | undefined;
            return body?.mode === "static" ? `static ${body.address ?? ""}` : "dhcp";
          },
        },
      },
      schema: {
        summary: "Save how the box gets its address (kept on the data pool; applied on the image)",
        body: SetNetworkSettingsBodySchema,
        response: { 200: NetworkSettingsStatusSchema },
      },
      // Applied once the answer is out: a new address cuts the connection it came over.
      onResponse: (request, reply, done) => {
        if (reply.statusCode === 200) {
          services(options)
            .osNetwork.apply()
            .catch((error: unknown) => {
              request.log.error({ err: error }, "the network settings were not applied");
            });
        }
        done();
      },
    },
    async (request) => {
      const network = services(options).osNetwork;
      await network.replace(request.body);
      return network.status();
    },
  );
}
