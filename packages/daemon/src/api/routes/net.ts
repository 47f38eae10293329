import type { FastifyInstance } from "fastify";
import { TownError } from "@townos/format";
import { NETWORK_OFF } from "../../net/network.js";
import { type ApiOptions, services } from "../context.js";

/** Each part's own status object, passed through whole (see NetworkStatus). */
const partSchema = { type: ["object", "null"], additionalProperties: true } as const;

const statusSchema = {
  type: "object",
  required: [
    "state",
    "ingress",
    "dns",
    "mdns",
    "upnp",
    "dashboardUrl",
    "forwardHttps",
    "apps",
    "problems",
  ],
  properties: {
    state: { type: "string", enum: ["on", "off"] },
    ingress: partSchema,
    dns: partSchema,
    mdns: partSchema,
    upnp: partSchema,
    dashboardUrl: { type: ["string", "null"] },
    forwardHttps: { type: "boolean" },
    apps: {
      type: "array",
      items: {
        type: "object",
        required: ["repo", "name", "urls"],
        properties: {
          repo: { type: "string" },
          name: { type: "string" },
          urls: { type: "array", items: { type: "string" } },
        },
      },
    },
    problems: { type: "array", items: { type: "string" } },
    updatedAt: { type: ["integer", "null"] },
  },
} as const;

/** `/api/v1/net/…`: the state of ingress, DNS, mDNS and UPnP. */
export function registerNetRoutes(api: FastifyInstance, options: ApiOptions): void {
  api.get(
    "/net/status",
    {
      config: { access: "user" },
      schema: {
        summary: "State of the HTTPS ingress, DNS, mDNS and UPnP, with every app's URLs",
        response: { 200: statusSchema },
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
