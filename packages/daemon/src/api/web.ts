/**
 * The dashboard's files: hashed assets cached for a year, the page itself
 * never cached (so a new build is picked up at once), and every other
 * browser path answered with the page (the dashboard routes on the client).
 */
import { access } from "node:fs/promises";
import { join } from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

const ASSET_CACHE = "public, max-age=31536000, immutable";
const PAGE_CACHE = "no-cache";

/** Serves `root` (a Vite build) at `/`; false when it holds no build. */
export async function registerWeb(app: FastifyInstance, root: string): Promise<boolean> {
  try {
    await access(join(root, "index.html"));
  } catch {
    return false;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: "/",
    index: ["index.html"],
    // One route per file of the build: other paths stay 404 (or the page), never a file lookup.
    wildcard: false,
    // Directory listings and dotfiles are never shown.
    list: false,
    dotfiles: "deny",
    // Ours, set below, instead of the plugin's max-age=0.
    cacheControl: false,
    setHeaders: (response, path) => {
      response.setHeader("cache-control", path.includes("/assets/") ? ASSET_CACHE : PAGE_CACHE);
    },
  });
  return true;
}

/** A browser asking for a page the dashboard routes itself (not the API, not a file). */
export function wantsDashboardPage(request: FastifyRequest): boolean {
  return (
    request.method === "GET" &&
    !request.url.startsWith("/api/") &&
    !request.url.startsWith("/tls/") &&
    !request.url.startsWith("/assets/") &&
    (request.headers.accept ?? "").includes("text/html")
  );
}

/** Answers with the dashboard's page. */
export function sendDashboardPage(reply: FastifyReply): FastifyReply {
  return reply.header("cache-control", PAGE_CACHE).sendFile("index.html");
}

/** Whether a request is for the dashboard's own files, which anyone may fetch at any time. */
export function isWebRequest(url: string): boolean {
  return !url.startsWith("/api/") && !url.startsWith("/tls/");
}
