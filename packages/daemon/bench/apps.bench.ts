/**
 * Apps with real Podman (needs root): time from an install request to the
 * app answering on its port, beside a plain `podman run` of the same image
 * and command in the same run; then a reconcile pass over 50 installed apps
 * with nothing to do: its time, and the Podman calls it makes.
 * Run: npm run bench (targets: install within 1.5× of podman run; the pass
 * under 200 ms with zero mutating calls).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startDaemon } from "../src/daemon.js";
import { appNetworkName } from "../src/apps/names.js";
import { LABEL_APP } from "../src/apps/labels.js";
import { appReconciler } from "../src/apps/seeder.js";
import { Podman } from "../src/runtime/podman/client.js";
import { PodmanRuntime } from "../src/runtime/podman/runtime.js";
import { setupStorage } from "../src/storage/setup.js";
import { createRepo, startGitServer } from "../test/git-server.js";
import {
  freePort,
  podmanMissing,
  preparePodmanHost,
  TEST_IMAGE,
} from "../test/runtime/podman-host.js";
import { answers, benchAdmin, median, run } from "./support.js";

const ROUNDS = 5;
const APPS = 50;
const COMMAND = ["httpd", "-f", "-p", "8080", "-h", "/www"];

if (podmanMissing) {
  console.log(`apps bench skipped: ${podmanMissing}`);
  process.exit(0);
}

const packageFile = (i: number): string => `image: ${TEST_IMAGE}
entrypoint: ["/bin/busybox"]
command: ${JSON.stringify(COMMAND)}
network:
  external:
    "@port@": "8080"
volumes:
  www:
    mountpoint: /www
questions:
  port: {type: port}
templates:
  index: {volume: www, path: index.html, content: "app ${i}\\n"}
`;

await preparePodmanHost();
const scratch = await mkdtemp(join(tmpdir(), "town-apps-bench-"));
const repo = `b${Date.now().toString(36)}`;
const podman = new Podman({ socketPath: join(scratch, "podman.sock") });
const service = await podman.ensureService();
const files: Record<string, string> = {};
for (let i = 0; i < APPS; i++) files[`packages/web${i}/1.0.yaml`] = packageFile(i);
await createRepo(join(scratch, "git"), "bench.git", files);
const server = await startGitServer({ root: join(scratch, "git") });
const daemon = await startDaemon({
  dataDir: join(scratch, "data"),
  host: "127.0.0.1",
  port: 0,
  defaultRepositoryUrl: "",
  logLevel: "silent",
  extraHosts: [],
  version: "bench",
  apps: { podman: { socketPath: podman.socketPath } },
});

try {
  const client = await benchAdmin(daemon, { name: repo, url: server.url("bench.git") });

  const installTimes: number[] = [];
  const plainTimes: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const port = await freePort();
    const start = performance.now();
    await client.installApp({ repo, name: `web${round}`, answers: { port: String(port) } });
    await answers(port);
    installTimes.push(performance.now() - start);

    // The same image, command and volume content, by hand.
    const www = join(scratch, `plain-${round}`);
    await mkdir(www);
    await writeFile(join(www, "index.html"), `app ${round}\n`);
    const plainPort = await freePort();
    const plainStart = performance.now();
    await run("podman", [
      "--url",
      `unix://${podman.socketPath}`,
      "run",
      "-d",
      "--name",
      `${repo}-plain-${round}`,
      "--label",
      `${LABEL_APP}=${repo}/plain`,
      "-p",
      `${plainPort}:8080`,
      "-v",
      `${www}:/www`,
      "--entrypoint",
      "/bin/busybox",
      TEST_IMAGE,
      ...COMMAND,
    ]);
    await answers(plainPort);
    plainTimes.push(performance.now() - plainStart);
  }
  const install = median(installTimes);
  const plain = median(plainTimes);
  console.log(`install request → app answering: median ${install.toFixed(0)} ms over ${ROUNDS}`);
  console.log(`podman run -d → answering:       median ${plain.toFixed(0)} ms over ${ROUNDS}`);
  console.log(`ratio: ${(install / plain).toFixed(2)}× (target within 1.5×)`);

  for (let i = ROUNDS; i < APPS; i++) {
    await client.installApp({ repo, name: `web${i}`, answers: { port: String(await freePort()) } });
  }
  const services = daemon.boot.services;
  if (!services) throw new Error("the daemon has no services");
  await services.apps.idle();

  // Count every Podman call one pass makes, through a counting view of the driver.
  let calls = 0;
  const counted = new Proxy(podman, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  // The daemon's own periodic pass: every app through its work queue, four at a time.
  const queuedStart = performance.now();
  await services.apps.resync();
  await services.apps.idle();
  const queued = performance.now() - queuedStart;

  const storage = await setupStorage({ dataDir: join(scratch, "data") });
  const reconciler = appReconciler({
    runtime: new PodmanRuntime(counted),
    storage: storage.driver,
    desired: services.installs,
    clock: Date.now,
    box: services.apps.box,
  });
  const passStart = performance.now();
  let mutations = 0;
  for (let i = 0; i < APPS; i++)
    mutations += (await reconciler.reconcile(repo, `web${i}`)).mutations.length;
  const pass = performance.now() - passStart;
  console.log(
    `reconcile pass over ${APPS} converged apps, one after another: ${pass.toFixed(0)} ms, ${calls} Podman calls, ${mutations} mutating`,
  );
  console.log(
    `the daemon's resync pass (one container listing for all apps, then its work queue): ${queued.toFixed(0)} ms (target < 200 ms, 0 mutating)`,
  );
} finally {
  await daemon.stop();
  await server.close();
  const leftovers = await podman.listContainers({});
  for (const container of leftovers.filter(
    (c) => c.name.startsWith(`town-${repo}-`) || c.name.startsWith(`${repo}-`),
  )) {
    await podman.removeContainer(container.name, { timeoutSeconds: 0 });
  }
  for (let i = 0; i < APPS; i++)
    await podman.removeNetwork(appNetworkName(repo, `web${i}`)).catch(() => false);
  podman.close();
  if (service.pid !== null) process.kill(service.pid);
  await rm(scratch, { recursive: true, force: true });
}
