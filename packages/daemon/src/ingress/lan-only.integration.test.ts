/**
 * The real HAProxy and Caddy with a public domain next to the dashboard and a local app,
 * asked from three places: loopback, a LAN address (10.213.x.x, a namespace
 * of this test) and a public-looking address (TEST-NET-3, 203.0.113.x, that
 * exists only on this test's veth pair). The public domain answers
 * everyone; the dashboard and the local name answer only loopback and the
 * LAN, whatever name the TLS handshake gave.
 */
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { eventually } from "../../test/net.js";
import { createTestNetns, netnsMissing, type TestNetns } from "../../test/netns.js";
import { freePorts } from "../../test/runtime/podman-host.js";
import { compileIngress, withCaddyConfig, type JsonObject } from "./config.js";
import { Ingress } from "./ingress.js";

const run = promisify(execFile);
const caddyMissing =
  spawnSync("caddy", ["version"]).error === undefined ? false : "caddy is not installed";
const haproxyMissing =
  spawnSync("haproxy", ["-v"]).error === undefined ? false : "haproxy is not installed";

/** A /30 of TEST-NET-3 for this process: the "internet" side of the test's veth. */
const OUTSIDE = `203.0.113.${4 * (process.pid % 64)}`;
const outside = (n: 1 | 2): string => OUTSIDE.replace(/\d+$/, (last) => String(Number(last) + n));

describe(
  "local names answer only the LAN, public domains everyone (real HAProxy and Caddy)",
  { skip: caddyMissing || haproxyMissing || netnsMissing, timeout: 60_000 },
  () => {
    let dir = "";
    let app: http.Server;
    let supervisor: Ingress;
    let netns: TestNetns;
    let httpsPort = 0;
    let caFile = "";

    /**
     * curl from `where` to `connectTo`, TLS name `name`, Host header `host`:
     * the status, or `refused` when the connection was cut at the handshake.
     */
    async function ask(
      where: "host" | "namespace",
      connectTo: string,
      name: string,
      host = name,
    ): Promise<{ status: number | "refused"; body: string }> {
      const args = [
        "curl",
        "-sS",
        "--max-time",
        "5",
        "--cacert",
        caFile,
        "--resolve",
        `${name}:${httpsPort}:${connectTo}`,
        "-H",
        `Host: ${host}`,
        "-w",
        "\n%{http_code}",
        `https://${name}:${httpsPort}/`,
      ];
      try {
        const { stdout } =
          where === "host"
            ? await run(args[0] ?? "", args.slice(1))
            : { stdout: await netns.exec(args) };
        const split = stdout.lastIndexOf("\n");
        return { status: Number(stdout.slice(split + 1)), body: stdout.slice(0, split) };
      } catch (error) {
        // HAProxy cuts the connection right after the handshake named a local name
        // from there: curl fails in the handshake (35), or sending or reading the
        // request (55, 56) or finds no answer (52). No HTTP answer in any case.
        if ([35, 52, 55, 56].includes((error as { code?: number }).code ?? 0))
          return { status: "refused", body: "" };
        throw error;
      }
    }

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "town-lan-only-"));
      app = http.createServer((request, response) => {
        response.end(`upstream saw ${String(request.headers.host)}`);
      });
      await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
      const upstream = `127.0.0.1:${(app.address() as { port: number }).port}`;
      netns = await createTestNetns("town-lanonly", 0);
      await run("ip", ["addr", "add", `${outside(1)}/30`, "dev", netns.hostInterface]);
      await netns.exec(["ip", "addr", "add", `${outside(2)}/30`, "dev", netns.namespaceInterface]);

      supervisor = new Ingress({ dataDir: join(dir, "ingress"), pollIntervalMs: 200 });
      const [https = 0, httpPort = 0, sitesPort = 0, acmePort = 0] = await freePorts(4);
      httpsPort = https;
      const compiled = compileIngress({
        routes: [{ host: "wiki.default.home", upstream }],
        publicDomains: [{ host: "pub.example.org", upstream }],
        sites: [],
        publicSites: [],
        dashboard: { host: "town.home", upstream },
        httpsPort,
        httpPort,
        sitesAddress: `127.0.0.1:${sitesPort}`,
        acmeChallengeAddress: `127.0.0.1:${acmePort}`,
        ...supervisor.locations(),
      });
      // No public CA here: the public name's certificate comes from the local CA too.
      // Only the issuer changes; HAProxy's routes and source checks are what is tested.
      const config = structuredClone(compiled.config);
      const tls = (config["apps"] as JsonObject)["tls"] as JsonObject;
      const policies = (tls["automation"] as JsonObject)["policies"] as JsonObject[];
      for (const policy of policies) policy["issuers"] = [{ module: "internal" }];
      await supervisor.start();
      assert.equal(await supervisor.apply(withCaddyConfig(compiled, config)), "loaded");
      caFile = join(dir, "ca.pem");
      await writeFile(caFile, await supervisor.rootCertificate());
    });

    after(async () => {
      await supervisor.stop();
      await netns.remove();
      await new Promise((resolve) => app.close(resolve));
      await rm(dir, { recursive: true, force: true });
    });

    it("serves the public domain to a source on the internet", async () => {
      const answer = await eventually("the public domain from outside", async () => {
        const got = await ask("namespace", outside(1), "pub.example.org");
        assert.equal(got.status, 200, JSON.stringify(got));
        return got;
      });
      assert.equal(answer.body, "upstream saw pub.example.org");
    });

    it("refuses the dashboard and a local name to that source", async () => {
      for (const name of ["town.home", "wiki.default.home"]) {
        // Asked for by name: the connection is cut at the handshake, before any request.
        assert.deepEqual(await ask("namespace", outside(1), name), {
          status: "refused",
          body: "",
        });
        // Behind the public domain's handshake: the request is refused, never proxied.
        const fronted = await ask("namespace", outside(1), "pub.example.org", name);
        assert.equal(fronted.status, 403, JSON.stringify(fronted));
        assert.doesNotMatch(fronted.body, /upstream/);
      }
    });

    it("serves them to the LAN and to loopback", async () => {
      for (const name of ["town.home", "wiki.default.home"]) {
        const lan = await eventually(`${name} from the LAN`, async () => {
          const got = await ask("namespace", netns.hostAddress, name);
          assert.equal(got.status, 200, JSON.stringify(got));
          return got;
        });
        assert.equal(lan.body, `upstream saw ${name}`);
        const loopback = await ask("host", "127.0.0.1", name);
        assert.deepEqual(loopback, { status: 200, body: `upstream saw ${name}` });
      }
    });
  },
);
