/**
 * Names an administrator or a package may not take, over the real daemon's
 * HTTP API (real Podman for the one app that is installed): a public TLD as
 * the box's TLD, and public domains under the box's TLD, under a special-use
 * name, or already served for another app.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ApiError, TownClient } from "@townos/client";
import { createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
import { setupAdmin, startPodmanDaemon, untilAppsAvailable } from "../../test/daemon.js";
import { scratchDir } from "../../test/net.js";
import {
  podmanMissing,
  preparePodmanHost,
  removeAppLeftovers,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
} from "../../test/runtime/podman-host.js";
import type { RunningDaemon } from "../daemon.js";
import type { Podman } from "../runtime/podman/client.js";
import type { ServiceState } from "../runtime/podman/service.js";
import { LABEL_APP } from "./labels.js";

if (podmanMissing) console.log(`# skipping the domains integration test: ${podmanMissing}`);

/** A site on an `http` port that also wants the public `domain`. */
const site = (domain: string): string => `
image: ${TEST_IMAGE}
description: A site with a public domain
entrypoint: ["/bin/busybox"]
command: ["httpd", "-f", "-p", "8080", "-h", "/"]
network:
  internal:
    http: "8080"
  domains: ["${domain}"]
`;

function refused(status: number, code: string, pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ApiError, String(error));
    assert.equal(error.problem.status, status, JSON.stringify(error.problem));
    assert.equal(error.problem.code, code);
    assert.match(error.problem.detail, pattern);
    return true;
  };
}

describe("names that may not be taken", { skip: podmanMissing, timeout: 90_000 }, () => {
  // Names of this run only: containers and networks are host-wide.
  const repo = `d${randomBytes(4).toString("hex")}`;
  const domain = `${repo}.example.org`;
  let scratch = "";
  let server: GitServer | undefined;
  let daemon: RunningDaemon | undefined;
  let podman: Podman;
  let service: ServiceState = { started: false, pid: null };
  let admin: TownClient;

  before(async () => {
    await preparePodmanHost();
    scratch = await scratchDir("town-domains-");
    ({ podman, service } = await startTestPodman(scratch));
    await createRepo(join(scratch, "git"), "apps.git", {
      "packages/site/1.0.yaml": site(domain),
      "packages/copycat/1.0.yaml": site(domain.toUpperCase()),
      "packages/dashboard/1.0.yaml": site("town.home"),
      "packages/local/1.0.yaml": site(`nas.${repo}.home`),
      "packages/mdns/1.0.yaml": site("printer.local"),
    });
    server = await startGitServer({ root: join(scratch, "git") });
    daemon = await startPodmanDaemon(scratch, podman);
    admin = await setupAdmin(daemon);
    await admin.addRepository({ name: repo, url: server.url("apps.git") });
    await untilAppsAvailable(admin);
  });

  after(async () => {
    try {
      await daemon?.stop();
      await server?.close();
      await removeAppLeftovers(
        podman,
        ["site", "copycat", "dashboard", "local", "mdns"].map((name) => `${repo}/${name}`),
      );
    } finally {
      stopTestPodman({ podman, service });
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("refuses a public top-level domain as the box's TLD", async () => {
    for (const tld of ["com", "app", "box", "local", "example.org"]) {
      await assert.rejects(
        () => admin.setSetting("dns.tld", tld),
        refused(400, "invalid_argument", /never a public top-level domain/),
        tld,
      );
    }
    for (const tld of ["home.arpa", "internal", "lan", "home"])
      assert.equal((await admin.setSetting("dns.tld", tld)).value, tld);
  });

  it("refuses public domains under the box's TLD or a special-use name, before making anything", async () => {
    for (const [name, pattern] of [
      ["dashboard", /"town\.home" is under the box's own top-level domain \.home/],
      ["local", new RegExp(`"nas\\.${repo}\\.home" is under the box's own top-level domain`)],
      ["mdns", /"printer\.local" is under \.local, which is not a public domain/],
    ] as const) {
      await assert.rejects(
        () => admin.installApp({ repo, name, answers: {} }),
        refused(422, "invalid_package", pattern),
        name,
      );
      // The install check shows it at the domain.
      const preview = await admin.previewInstall({ repo, name, answers: {} });
      assert.deepEqual(
        preview.problems.map((issue) => issue.field),
        ["network.domains.0"],
      );
      assert.deepEqual(await podman.listContainers({ [LABEL_APP]: `${repo}/${name}` }), []);
    }
    assert.equal((await admin.apps()).total, 0);
  });

  it("refuses a public domain another app serves", async () => {
    const first = await admin.installApp({ repo, name: "site", answers: {} });
    assert.deepEqual(first.urls, [`https://site.${repo}.home/`, `https://${domain}/`]);
    await assert.rejects(
      () => admin.installApp({ repo, name: "copycat", answers: {} }),
      refused(409, "conflict", new RegExp(`"${domain}" is served for ${repo}/site already`)),
    );
    assert.deepEqual(
      (await admin.apps()).items.map((app) => app.name),
      ["site"],
    );
    assert.deepEqual(await podman.listContainers({ [LABEL_APP]: `${repo}/copycat` }), []);
  });
});
