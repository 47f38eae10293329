/**
 * Finding 3 of issue 10 end to end, against a real daemon over HTTP with
 * real Podman on plain-directory storage: an installed app's container
 * empties its git-seeded volume and leaves a "complete staging" link to a
 * host directory in it; the upgrade that recreates the container seeds the
 * volume again. The daemon must seed from git as asked and never move, read
 * or change anything of the host directory.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TownClient } from "@townos/client";
import { serveSeededSite, type GitServer } from "../../test/git-server.js";
import {
  podmanMissing,
  preparePodmanHost,
  removeAppLeftovers,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
} from "../../test/runtime/podman-host.js";
import { describeTree, makeOutside, PLANTED } from "../../test/storage/hostile.js";
import { setupAdmin, startPodmanDaemon } from "../../test/daemon.js";
import type { RunningDaemon } from "../daemon.js";
import type { Podman } from "../runtime/podman/client.js";
import type { ServiceState } from "../runtime/podman/service.js";
import { storageLocations } from "../storage/setup.js";
import { LABEL_APP } from "./labels.js";

const skip = podmanMissing || false;
if (skip) console.log(`# skipping the hostile seed test: ${skip}`);
const PASSWORD = "admin-password-51c0";

function sitePackage(version: string, gitUrl: string): string {
  return `
image: ${TEST_IMAGE}
description: A site seeded from git
entrypoint: ["/bin/busybox"]
command: ["sleep", "3600"]
environment:
  SITE_VERSION: "${version}"
volumes:
  www:
    mountpoint: /www
git_sources:
  - url: "${gitUrl}"
    volume: www
`;
}

describe(
  "a hostile container against the seeding of its volume",
  { skip, timeout: 180_000 },
  () => {
    const repo = `h${randomBytes(4).toString("hex")}`;
    let scratch: string;
    let server: GitServer | undefined;
    let daemon: RunningDaemon | undefined;
    let podman: Podman;
    let service: ServiceState = { started: false, pid: null };
    let admin: TownClient;

    before(async () => {
      await preparePodmanHost();
      scratch = await mkdtemp(join(tmpdir(), "town-hostile-seed-"));
      ({ podman, service } = await startTestPodman(scratch));
      server = await serveSeededSite(join(scratch, "git"), sitePackage);
      // No loop file: plain directories, where the host and the volumes share a file system.
      daemon = await startPodmanDaemon(scratch, podman);
      admin = await setupAdmin(daemon, PASSWORD);
      await admin.addRepository({ name: repo, url: server.url("apps.git") });
    });

    after(async () => {
      try {
        await daemon?.stop();
        await server?.close();
        await removeAppLeftovers(podman, [`${repo}/site`]);
      } finally {
        stopTestPodman({ podman, service });
        await rm(scratch, { recursive: true, force: true });
      }
    });

    it("seeds again from git and leaves the host alone", async () => {
      const installed = await admin.changeApp(
        { action: "install", request: { repo, name: "site", version: "1.0", answers: {} } },
        () => undefined,
      );
      assert.equal(installed.app.lastError, null, JSON.stringify(installed.app));
      assert.equal((await admin.storage()).mode, "directory");
      const [volume] = (await admin.volumes()).items.filter((v) => v.usedBy === `${repo}/site`);
      assert.ok(volume, "the app's volume");
      const www = join(storageLocations(join(scratch, "data")).root, "volumes", volume.name);
      assert.equal(await readFile(join(www, "index.html"), "utf8"), "seeded from git\n");

      const outside = join(scratch, "host");
      await makeOutside(outside);
      const host = await describeTree(outside);
      // The container empties its volume and leaves a "complete staging" leading to the host.
      const [container] = await podman.listContainers({ [LABEL_APP]: `${repo}/site` });
      assert.ok(container);
      const planted = await podman.exec(container.name, [
        "/bin/sh",
        "-c",
        `rm -rf /www/* /www/.git && mkdir /www/${PLANTED.readyTree} && ` +
          `ln -s ${outside} /www/${PLANTED.readyTree}/tree && ln -s ${outside} /www/${PLANTED.readyLink}`,
      ]);
      assert.equal(planted.exitCode, 0, planted.stderr);

      const upgraded = await admin.changeApp(
        { action: "upgrade", repo, name: "site", version: "2.0" },
        () => undefined,
      );
      assert.equal(upgraded.app.version, "2.0");
      assert.equal(upgraded.app.lastError, null, JSON.stringify(upgraded.app));
      assert.deepEqual(await describeTree(outside), host, "the host directory is untouched");
      const names = (await readdir(www)).sort();
      assert.ok(!names.includes("secret") && !names.includes("tree"), names.join(", "));
      assert.equal(await readFile(join(www, "index.html"), "utf8"), "seeded from git\n");
    });
  },
);
