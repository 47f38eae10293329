/**
 * Forwarding the router's 443 and 80 opens the whole ingress to the
 * internet, so it happens only with the administrator's opt-in: against a
 * real miniupnpd in a namespace of this test, an app with a public domain
 * gets no 443/80 lease until `forwardHttps` is on, and loses them when it
 * goes off again; in a real daemon, the setting `upnp.forward_https` set
 * over HTTP is what turns it on.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TownClient } from "@townos/client";
import { setupAdmin, testDaemonConfig } from "../../test/daemon.js";
import { eventually, freeNetworkPorts, networkMissing, scratchDir } from "../../test/net.js";
import { compileExample } from "../../test/runtime/examples.js";
import {
  routerMissing,
  startNetworkBehind,
  startTestRouter,
  type TestRouter,
} from "../../test/upnp-router.js";
import { startDaemon, type RunningDaemon } from "../daemon.js";
import type { Network, NetworkInputs } from "./network.js";

/** The router's TCP leases by external port. */
async function leased(router: TestRouter): Promise<number[]> {
  return (await router.leases())
    .filter((line) => line.startsWith("TCP:"))
    .map((line) => Number(line.split(":")[1]))
    .sort((a, b) => a - b);
}

describe(
  "the router forwards 443 and 80 only with the administrator's opt-in (miniupnpd)",
  { skip: networkMissing() || routerMissing, timeout: 90_000 },
  () => {
    let router: TestRouter;
    let scratch = "";
    let network: Network;

    /** An app with a public domain, and a game port the administrator exposed to the internet. */
    const inputs = (forwardHttps: boolean): NetworkInputs => ({
      tld: "home",
      dashboardPort: 5309,
      forwardHttps,
      pages: [],
      apps: [
        {
          repo: "default",
          name: "blog",
          names: ["blog.default.home"],
          ingress: { host: "blog.default.home", port: 20080 },
          domains: ["blog.example.org"],
          ports: [{ host: 27017, protocol: "tcp", exposure: "internet", instance: "blog" }],
        },
      ],
    });

    before(async () => {
      router = await startTestRouter(0);
      scratch = await scratchDir("town-net-fwd-");
      network = await startNetworkBehind(router, scratch);
    });

    after(async () => {
      await network.stopForTests();
      await router.stop();
      await rm(scratch, { recursive: true, force: true });
    });

    it("maps only the exposed port while the opt-in is off, and says why", async () => {
      await network.update(inputs(false));
      // The game's lease shows the UPnP pass ran; 443 and 80 must not be with it.
      await eventually("the exposed port's lease", async () => {
        assert.deepEqual(await leased(router), [27017], router.log());
      });
      const status = network.status();
      assert.equal(status.forwardHttps, false);
      assert.deepEqual(
        status.upnp?.mappings.map((mapping) => mapping.externalPort),
        [27017],
      );
      assert.match(status.problems.join("\n"), /forwarding the router's 443 and 80 is off/);
      // The public domain is still served, on the home network.
      assert.deepEqual(status.apps[0]?.urls.length, 2);
    });

    it("forwards 443 and 80 to the ingress once opted in, and stops again when opted out", async () => {
      await network.update(inputs(true));
      await eventually("the ingress's leases", async () => {
        assert.deepEqual(await leased(router), [80, 443, 27017], router.log());
      });
      assert.equal(network.status().forwardHttps, true);
      await network.update(inputs(false));
      await eventually("the ingress's leases to go", async () => {
        assert.deepEqual(await leased(router), [27017], router.log());
      });
    });
  },
);

describe(
  "the setting upnp.forward_https in a real daemon (miniupnpd)",
  { skip: networkMissing() || routerMissing, timeout: 90_000 },
  () => {
    let router: TestRouter;
    let scratch = "";
    let daemon: RunningDaemon;
    let admin: TownClient;

    before(async () => {
      router = await startTestRouter(1);
      scratch = await scratchDir("town-net-fwd-daemon-");
      daemon = await startDaemon(
        testDaemonConfig(scratch, {
          apps: false,
          network: {
            ...(await freeNetworkPorts()),
            lanAddresses: [router.netns.hostAddress],
            dnsDir: join(scratch, "dns"),
            gatewayUrl: router.descriptionUrl,
          },
        }),
      );
      await daemon.booted;
      admin = await setupAdmin(daemon);
    });

    after(async () => {
      const running = daemon.boot.services?.network;
      await daemon.stop();
      await running?.stopForTests();
      await router.stop();
      await rm(scratch, { recursive: true, force: true });
    });

    it("forwards nothing for a public domain by default, and 443 and 80 once the setting is on", async () => {
      const services = daemon.boot.services;
      assert.ok(services);
      // Apps are off here: the record stands for an installed app with a public domain.
      services.installs.put({
        repo: "default",
        name: "hello",
        version: "1.0",
        definitionHash: "test",
        answers: {},
        enabled: true,
        plan: { ...compileExample("hello", "1.0"), domains: ["hello.example.org"] },
        ingressPorts: { hello: 20081 },
      });
      assert.equal((await admin.setSetting("upnp.forward_https", false)).value, false);
      const off = await eventually("a network update with the domain", async () => {
        const status = await admin.netStatus();
        assert.equal(status.upnp?.router.state, "ok", JSON.stringify(status.upnp));
        assert.match(status.problems.join("\n"), /forwarding the router's 443 and 80 is off/);
        return status;
      });
      assert.equal(off.forwardHttps, false);
      assert.deepEqual(await leased(router), []);

      assert.equal((await admin.setSetting("upnp.forward_https", true)).value, true);
      await eventually("the ingress's leases", async () => {
        assert.deepEqual(await leased(router), [80, 443], router.log());
      });
      assert.equal((await admin.netStatus()).forwardHttps, true);
    });
  },
);
