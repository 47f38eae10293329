/**
 * Route tests over a real API server whose services the test puts together:
 * sessions that know one administrator's and one user's token, and a server
 * on a free loopback port that checks every answer against its schema.
 */
import type { FastifyInstance } from "fastify";
import { TownError } from "@townos/format";
import type { BootState } from "../src/api/context.js";
import { Metrics } from "../src/api/metrics.js";
import { buildApi } from "../src/api/server.js";

export const ADMIN_TOKEN = "an-administrator";
export const USER_TOKEN = "an-ordinary-user";

/** The `sessions` service of a route test: the two tokens above, nothing else. */
export const testSessions = {
  verify(token: string) {
    if (token === ADMIN_TOKEN) return { account: { id: 1, username: "a", role: "admin" } };
    if (token === USER_TOKEN) return { account: { id: 2, username: "u", role: "user" } };
    throw new TownError("unauthenticated", "not a session");
  },
};

/** Builds the API over `boot` (its services set by the test) and listens; close `app` after. */
export async function listenApi(
  boot: BootState,
): Promise<{ app: FastifyInstance; baseUrl: string }> {
  const app = await buildApi({
    version: "test",
    boot,
    metrics: new Metrics(),
    isAllowedHost: () => true,
    logger: false,
    checkResponses: true,
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { app, baseUrl: `http://127.0.0.1:${port}` };
}
