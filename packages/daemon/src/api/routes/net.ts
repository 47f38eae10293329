import type { FastifyInstance } from "fastify";
import { NetworkStatusSchema, type NetworkStatus } from "@townos/api";
import { TownError } from "@townos/format";
import { NETWORK_OFF } from "../../net/network.js";
import { type ApiOptions, services } from "../context.js";

/** `/api/v1/net/…`: the state of ingress, DNS, mDNS and UPnP. */
export function registerNetRoutes(api: FastifyInstance, options: ApiOptions): void {
  api.get<{ Reply: NetworkStatus }>(
    "/net/status",
    {
      config: { access: "user" },
      schema: {
        summary: "State of the HTTPS ingress, DNS, mDNS and UPnP, with every app's URLs",
        response: { 200: NetworkStatusSchema },
      },
    },
    async () => services(options).network?.status() ?? NETWORK_OFF,
  );
}

/**
 * `/tls/ca.crt`, outside the API and without login: a device must trust the
 * box's local CA before it can use the dashboard over HTTPS.
 */
export function registerCaRoute(app: FastifyInstance, options: ApiOptions): void {
  app.get(
    "/tls/ca.crt",
    {
      config: { access: "public" },
      schema: {
        summary: "The root certificate of the box's local CA (PEM), to install on devices",
        produces: ["application/x-pem-file"],
      },
    },
    async (_request, reply) => {
      const network = services(options).network;
      if (network === undefined)
        throw new TownError("unavailable", "networking is turned off in this daemon");
      const pem = await network.rootCertificate();
      return reply
        .type("application/x-pem-file")
        .header("content-disposition", 'attachment; filename="town-os-ca.crt"')
        .send(pem);
    },
  );
}
