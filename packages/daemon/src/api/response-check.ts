import type { FastifyInstance } from "fastify";
import { undeclaredFields } from "@townos/api";
import { TownError } from "@townos/format";

/**
 * Makes a handler that answers with a field its response schema lacks fail
 * with a 500 naming the fields, where Fastify's serializer would drop them
 * without a word. The daemon's tests turn this on (`checkResponses`), so any
 * route a test calls holds to the contract in @townos/api; production skips
 * the walk.
 */
export function checkResponses(app: FastifyInstance): void {
  app.addHook("preSerialization", async (request, reply, payload) => {
    const schemas = request.routeOptions.schema?.response as Record<string, unknown> | undefined;
    const schema = schemas?.[reply.statusCode];
    if (schema === undefined) return payload;
    const fields = undeclaredFields(schema, payload);
    if (fields.length > 0) {
      throw new TownError(
        "internal",
        `${request.method} ${request.routeOptions.url ?? request.url} answered ${reply.statusCode} with fields its response schema lacks: ${listed(fields)}`,
      );
    }
    return payload;
  });
}

/** The first few paths, and how many more: a list of a thousand items names a field a thousand times. */
function listed(fields: readonly string[]): string {
  const shown = fields.slice(0, 5).join(", ");
  return fields.length > 5 ? `${shown} and ${fields.length - 5} more` : shown;
}
