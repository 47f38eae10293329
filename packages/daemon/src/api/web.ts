/**
 * The dashboard's files: hashed assets cached for a year, the page itself
 * never cached (so a new build is picked up at once), and every other
 * browser path answered with the page (the dashboard routes on the client).
 *
 * Each file of the build gets a route of its own, declared public and
 * available while booting: access comes from the matched route like every
 * other, never from the shape of the URL.
 */
import { access, readdir } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

const ASSET_CACHE = "public, max-age=31536000, immutable";
const PAGE_CACHE = "no-cache";
const PAGE = "index.html";

/** Serves `root` (a Vite build) at `/`; false when it holds no build. */
export async function registerWeb(app: FastifyInstance, root: string): Promise<boolean> {
  try {
    await access(join(root, PAGE));
  } catch {
    return false;
  }
  await app.register(fastifyStatic, {
    root,
    // Only the decorator: routes are declared below, one per file.
    serve: false,
    // Dotfiles are never sent, even when named.
    dotfiles: "deny",
    // Ours, set below, instead of the plugin's max-age=0.
    cacheControl: false,
    setHeaders: (response, path) => {
      response.setHeader("cache-control", path.includes("/assets/") ? ASSET_CACHE : PAGE_CACHE);
    },
  });
  const config = { access: "public", duringBoot: true, web: true } as const;
  for (const file of await buildFiles(root)) {
    const url = file === PAGE ? "/" : `/${file}`;
    app.get(url, { config, schema: { hide: true } }, (_request, reply) => reply.sendFile(file));
  }
  return true;
}

/** The build's files, relative with `/`, dotfiles and links left out. */
async function buildFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && !entry.name.startsWith("."))
    .map((entry) => relative(root, join(entry.parentPath, entry.name)).split(sep).join("/"))
    .filter((file) => !file.split("/").some((part) => part.startsWith(".")))
    .sort();
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
  return reply.header("cache-control", PAGE_CACHE).sendFile(PAGE);
}
