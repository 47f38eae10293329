/**
 * Pulling an app's image from a real registry: Debian's docker-registry on
 * loopback stands in for one on the home network (plain HTTP, so it is named
 * in the `registries.insecure` setting). The install shows Podman's pull
 * progress and the app runs from the pulled image.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { runTownCaptured } from "../../../cli/test/run-town.js";
import { registryMissing, startRegistry, type Registry } from "../../test/registry.js";
import { setupAdmin, startPodmanDaemon, untilAppsAvailable } from "../../test/daemon.js";
import { createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
import {
  podmanMissing,
  preparePodmanHost,
  startTestPodman,
  stopTestPodman,
  TEST_IMAGE,
} from "../../test/runtime/podman-host.js";
import type { RunningDaemon } from "../daemon.js";
import type { Podman } from "../runtime/podman/client.js";
import type { ServiceState } from "../runtime/podman/service.js";
import { appLabels } from "./labels.js";

const run = promisify(execFile);
const skip = podmanMissing || registryMissing;
if (skip) console.log(`# skipping the pull integration test: ${skip}`);

describe("pulling an image from a registry on the home network", { skip, timeout: 120_000 }, () => {
  const repo = `p${randomBytes(4).toString("hex")}`;
  const tag = randomBytes(4).toString("hex");
  let scratch: string;
  let registry: Registry | undefined;
  let registryAddress: string;
  let image: string;
  let server: GitServer | undefined;
  let daemon: RunningDaemon | undefined;
  let podman: Podman;
  let service: ServiceState = { started: false, pid: null };

  before(async () => {
    await preparePodmanHost();
    scratch = await mkdtemp(join(tmpdir(), "town-pull-"));
    registry = await startRegistry(scratch);
    registryAddress = registry.address;
    image = `${registryAddress}/town/pulltest:${tag}`;
    // The test image goes into the registry, and its name under the registry leaves this host.
    await run("podman", ["push", "--tls-verify=false", TEST_IMAGE, image]);
    await run("podman", ["rmi", image]).catch(() => undefined);

    ({ podman, service } = await startTestPodman(scratch));
    await createRepo(join(scratch, "git"), "apps.git", {
      "packages/pulled/1.0.yaml": [
        `image: ${image}`,
        "description: An app whose image comes from a registry",
        'entrypoint: ["/bin/busybox"]',
        'command: ["sleep", "3600"]',
        "",
      ].join("\n"),
    });
    server = await startGitServer({ root: join(scratch, "git") });
    daemon = await startPodmanDaemon(scratch, podman);
  });

  after(async () => {
    try {
      await daemon?.stop();
      await server?.close();
      for (const container of await podman.listContainers(
        appLabels(daemon?.boot.services?.apps.box ?? "", repo, "pulled"),
      )) {
        await podman.removeContainer(container.id, { timeoutSeconds: 0 });
      }
      await run("podman", ["network", "rm", "-f", `town-${repo}--pulled`]).catch(() => undefined);
      await run("podman", ["rmi", "-f", image]).catch(() => undefined);
    } finally {
      registry?.close();
      stopTestPodman({ podman, service });
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("installs with the pull's progress, over plain HTTP once the registry is named", async () => {
    assert.ok(daemon && server);
    const admin = await setupAdmin(daemon, "admin-password-5a1b");
    await admin.setSetting("registries.insecure", registryAddress);
    await admin.addRepository({ name: repo, url: server.url("apps.git") });
    await untilAppsAvailable(admin);
    assert.equal(await podman.imageExists(image), false);
    const env = { TOWN_SERVER: daemon.url, XDG_CONFIG_HOME: join(scratch, "config") };
    const login = await runTownCaptured(
      ["login", "--username", "admin", "--password", "admin-password-5a1b"],
      { cwd: scratch, env },
    );
    assert.equal(login.code, 0, login.stderr);
    const install = await runTownCaptured(["app", "install", `${repo}/pulled`], {
      cwd: scratch,
      env,
    });
    assert.equal(install.code, 0, install.stderr);
    assert.match(install.stderr, new RegExp(`… pull image ${image.replace(/[.]/g, "\\.")}`));
    // Podman's own progress lines, passed through.
    assert.match(install.stderr, /\n {2}(Copying|Writing|Storing)/);
    assert.match(install.stdout, /container town-.*-pulled: running/);
    assert.equal(await podman.imageExists(image), true);
  });
});
