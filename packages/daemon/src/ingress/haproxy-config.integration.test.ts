/**
 * The real HAProxy on the compiled files, in front of plain node servers for
 * the apps, Caddy's sites server and Caddy's ACME solver. The test's home
 * network is `::1` alone (its LAN list is rewritten), so 127.0.0.1 plays a
 * client from the internet: the local name answers over IPv6 loopback only.
 */
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { HAPROXY, haproxyDir, haproxyMissing, writeHaproxyFiles } from "../../test/haproxy.js";
import { eventually } from "../../test/net.js";
import { freePort } from "../../test/runtime/podman-host.js";
import { haproxyFiles } from "./haproxy-config.js";

const run = promisify(execFile);

/** What a node server behind HAProxy saw of a request. */
interface Seen {
  server: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

describe(
  "HAProxy routes by name, keeps local names local (real HAProxy)",
  { skip: haproxyMissing(), timeout: 60_000 },
  () => {
    let dir = "";
    let certFile = "";
    let haproxy: ChildProcess | undefined;
    const servers: http.Server[] = [];
    let httpsPort = 0;
    let httpPort = 0;

    /** A server on `host`:free port that answers every request with what it saw. */
    async function echoServer(name: string, host: string): Promise<number> {
      const port = await freePort();
      const server = http.createServer((request, response) => {
        const seen: Seen = { server: name, url: request.url ?? "", headers: request.headers };
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify(seen));
      });
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(port, host, resolve));
      return port;
    }

    /**
     * curl to `name` on HAProxy's HTTPS port through `connectTo`, trusting
     * the test's certificate; `status` is `refused` when no HTTP answer came.
     */
    async function ask(
      connectTo: string,
      name: string,
      headers: readonly string[] = [],
      path = "/",
    ): Promise<{ status: number | "refused"; body: string }> {
      const args = [
        "-sS",
        "--max-time",
        "5",
        "--cacert",
        certFile,
        "--resolve",
        `${name}:${httpsPort}:${connectTo}`,
        "-w",
        "\n%{http_code}",
        ...headers.flatMap((header) => ["-H", header]),
        `https://${name}:${httpsPort}${path}`,
      ];
      try {
        const { stdout } = await run("curl", args);
        const at = stdout.lastIndexOf("\n");
        return { status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) };
      } catch (error) {
        // Cut at or right after the handshake: curl fails there (35), sending or
        // reading the request (55, 56), or finds no answer (52). Anything else
        // (nothing listening: 7) is a failure of the test.
        if ([35, 52, 55, 56].includes((error as { code?: number }).code ?? 0))
          return { status: "refused", body: "" };
        throw error;
      }
    }

    async function seen(
      connectTo: string,
      name: string,
      headers: readonly string[] = [],
      path = "/",
    ): Promise<Seen> {
      const { status, body } = await ask(connectTo, name, headers, path);
      assert.equal(status, 200, body);
      return JSON.parse(body) as Seen;
    }

    /** A plain GET on HAProxy's HTTP port with the Host given (fetch would put its own). */
    function askHttp(
      host: string,
      path: string,
    ): Promise<{ status: number | undefined; location: string | undefined; body: string }> {
      return new Promise((resolve, reject) => {
        http
          .get({ host: "127.0.0.1", port: httpPort, path, headers: { host } }, (response) => {
            let body = "";
            response.setEncoding("utf8");
            response.on("data", (chunk: string) => (body += chunk));
            response.on("end", () => {
              resolve({ status: response.statusCode, location: response.headers.location, body });
            });
          })
          .on("error", reject);
      });
    }

    before(async () => {
      ({ dir, certFile } = await haproxyDir(["town.home", "git.example.org", "blog.example.org"]));
      httpsPort = await freePort();
      httpPort = await freePort();
      const files = haproxyFiles({
        local: [{ host: "town.home", upstream: `[::1]:${await echoServer("dashboard", "::1")}` }],
        publicRoutes: [
          { host: "blog.example.org", root: "blog/1" },
          {
            host: "git.example.org",
            upstream: `localhost:${await echoServer("git", "127.0.0.1")}`,
          },
        ],
        httpsPort,
        httpPort,
        sitesAddress: `127.0.0.1:${await echoServer("sites", "127.0.0.1")}`,
        acmeChallengeAddress: `127.0.0.1:${await echoServer("acme", "127.0.0.1")}`,
        dir,
      });
      const configFile = await writeHaproxyFiles(dir, files);
      await writeFile(join(dir, "lan-sources.lst"), "::1/128\n");
      haproxy = spawn(HAPROXY, ["-db", "-f", configFile], { stdio: "ignore" });
      await eventually("HAProxy answering", async () => {
        assert.equal((await ask("127.0.0.1", "git.example.org")).status, 200);
      });
    });

    after(async () => {
      haproxy?.kill();
      for (const server of servers) server.close();
      await rm(dir, { recursive: true, force: true });
    });

    it("proxies a public name to its app with the peer as X-Forwarded-For, the client's own dropped", async () => {
      const request = await seen(
        "127.0.0.1",
        "git.example.org",
        ["X-Forwarded-For: 203.0.113.9", "Forwarded: for=203.0.113.9", "X-Forwarded-Proto: http"],
        "/a/b?c=d",
      );
      assert.equal(request.server, "git");
      assert.equal(request.url, "/a/b?c=d");
      assert.equal(request.headers["x-forwarded-for"], "127.0.0.1");
      assert.equal(request.headers["x-forwarded-proto"], "https");
      assert.equal(request.headers["x-forwarded-host"], `git.example.org:${httpsPort}`);
      assert.equal(request.headers.forwarded, undefined);
    });

    it("passes a site's request to Caddy's sites server with the Host unchanged", async () => {
      const request = await seen("127.0.0.1", "blog.example.org", [], "/post/");
      assert.equal(request.server, "sites");
      assert.equal(request.headers.host, `blog.example.org:${httpsPort}`);
    });

    it("answers a local name on the home network, over an IPv6 upstream", async () => {
      const request = await seen("::1", "town.home");
      assert.equal(request.server, "dashboard");
      assert.equal(request.headers["x-forwarded-for"], "::1");
    });

    it("refuses a local name from outside: the handshake is cut, a local Host under a public name gets 403", async () => {
      assert.deepEqual(await ask("127.0.0.1", "town.home"), { status: "refused", body: "" });
      assert.deepEqual(await ask("127.0.0.1", "git.example.org", ["Host: TOWN.home:1"]), {
        status: 403,
        body: "This name answers only on the home network.\n",
      });
    });

    it("answers an unknown name with 404", async () => {
      assert.deepEqual(await ask("127.0.0.1", "git.example.org", ["Host: nowhere.example.org"]), {
        status: 404,
        body: "No site has this name here.\n",
      });
    });

    it("redirects HTTP to the HTTPS URL, except ACME challenges, which go to Caddy's solver", async () => {
      const redirect = await askHttp(`git.example.org:${httpPort}`, "/a/b?c=d");
      assert.equal(redirect.status, 308);
      assert.equal(redirect.location, `https://git.example.org:${httpsPort}/a/b?c=d`);
      const challenge = await askHttp("git.example.org", "/.well-known/acme-challenge/token");
      assert.equal(challenge.status, 200);
      const request = JSON.parse(challenge.body) as Seen;
      assert.equal(request.server, "acme");
      assert.equal(request.url, "/.well-known/acme-challenge/token");
    });
  },
);
