/**
 * What os/test.sh serves the Town OS image under test: a package repository
 * over git smart HTTP and a container registry holding its app's image, both
 * on this host's loopback, which QEMU's user network shows the guest as
 * 10.0.2.2. The app, `notebook`, makes a token in its volume on its first
 * start and prints it (`token=HEX`) at every start: the same token after a
 * reboot means the volume came back.
 *
 *   node --conditions=source --import tsx packages/daemon/test/image-repository.ts DIR
 *
 * Writes DIR/served.env (`REGISTRY=`, `REPOSITORY=`, as the guest names them)
 * once both answer, and serves until it is stopped.
 */
import { execFile } from "node:child_process";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { createRepo, startGitServer } from "./git-server.js";
import { startRegistry } from "./registry.js";
import { preparePodmanHost, TEST_IMAGE } from "./runtime/podman-host.js";

const run = promisify(execFile);
/** The host, as a guest on QEMU's user network reaches it. */
const GUEST_HOST = "10.0.2.2";

const dir = resolve(process.argv[2] ?? "");
if (!process.argv[2]) throw new Error("usage: image-repository.ts DIR");
await mkdir(dir, { recursive: true });
await preparePodmanHost();
const registry = await startRegistry(dir);
const port = registry.address.split(":")[1] ?? "";
await run("podman", [
  "push",
  "--tls-verify=false",
  TEST_IMAGE,
  `${registry.address}/town/busybox:image-test`,
]);
await createRepo(join(dir, "git"), "apps.git", {
  "packages/notebook/1.0.yaml": [
    `image: ${GUEST_HOST}:${port}/town/busybox:image-test`,
    "description: Keeps a token it made on its first start in its volume",
    'entrypoint: ["/bin/busybox"]',
    "command:",
    "  - sh",
    "  - -c",
    "  - >-",
    "    [ -s /data/token ] || od -An -N8 -tx1 /dev/urandom | tr -d ' ' > /data/token;",
    "    echo -n token=; cat /data/token; exec sleep 2147483647",
    "volumes:",
    "  data:",
    "    mountpoint: /data",
    "    quota: 16mb",
    "",
  ].join("\n"),
});
const git = await startGitServer({ root: join(dir, "git") });
const served = join(dir, "served.env");
await writeFile(
  `${served}.new`,
  `REGISTRY=${GUEST_HOST}:${port}\nREPOSITORY=${git.url("apps.git").replace("127.0.0.1", GUEST_HOST)}\n`,
);
await rename(`${served}.new`, served);

const stop = () => {
  registry.close();
  void git.close().then(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
