/**
 * Virtual machines with real QEMU, Podman and storage (needs root): the time
 * from an install request to the guest's web server answering through its
 * forwarded port (the test guest of test/runtime/qemu/guest.ts: a Debian
 * kernel and busybox), first with the image downloaded and converted, then
 * with it in the store, beside a plain `qemu-system-x86_64` of the same
 * guest, devices and accelerator in the same run; and QEMU's memory beyond
 * the guest's RAM (its resident set minus the guest RAM mapping's, from
 * /proc/<pid>/smaps).
 * Run: npm run bench (target: install within 1.25× of plain QEMU with the
 * image in the store).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startDaemon } from "../src/daemon.js";
import { Podman } from "../src/runtime/podman/client.js";
import { podmanMissing, preparePodmanHost, freePort } from "../test/runtime/podman-host.js";
import { buildTestGuest, TEST_GUEST_DIR, testGuestMissing } from "../test/runtime/qemu/guest.js";
import { createRepo, startGitServer } from "../test/git-server.js";
import { processesMentioning } from "../test/processes.js";
import { answers, benchAdmin, median, run } from "./support.js";

const ROUNDS = 3;
const MEMORY_MIB = 128;
const BOOT_MS = 300_000;

const missing = podmanMissing || testGuestMissing();
if (missing) {
  console.log(`vm bench skipped: ${missing}`);
  process.exit(0);
}

await preparePodmanHost();
const scratch = await mkdtemp(join(tmpdir(), "town-vm-bench-"));
const dataDir = join(scratch, "data");
const repo = `v${Date.now().toString(36)}`;
const podman = new Podman({ socketPath: join(scratch, "podman.sock") });
const service = await podman.ensureService();
const guest = await buildTestGuest(TEST_GUEST_DIR);
const images = createServer((request, response) => {
  if (request.url !== "/guest.img") {
    response.writeHead(404).end();
    return;
  }
  void stat(guest.diskPath).then(({ size }) => {
    response.writeHead(200, { "content-length": size });
    createReadStream(guest.diskPath).pipe(response);
  });
});
await new Promise<void>((resolve) => images.listen(0, "127.0.0.1", resolve));
const address = images.address();
if (address === null || typeof address !== "object") throw new Error("no image server address");
const files: Record<string, string> = {};
for (let i = 0; i < ROUNDS; i++) {
  files[`packages/vm${i}/1.0.yaml`] = `vm:
  image: "http://127.0.0.1:${address.port}/guest.img"
  memory: ${MEMORY_MIB}mb
network:
  external:
    "@port@": "80"
questions:
  port: {type: port}
`;
}
await createRepo(join(scratch, "git"), "bench.git", files);
const git = await startGitServer({ root: join(scratch, "git") });
const daemon = await startDaemon({
  dataDir,
  host: "127.0.0.1",
  port: 0,
  defaultRepositoryUrl: "",
  logLevel: "silent",
  extraHosts: [],
  version: "bench",
  apps: { podman: { socketPath: podman.socketPath }, vms: { privateImageUrls: true } },
});
let plain: ChildProcess | undefined;

try {
  const client = await benchAdmin(daemon, { name: repo, url: git.url("bench.git") });

  const installTimes: number[] = [];
  let overhead = "";
  let accelerator: "kvm" | "tcg" = "tcg";
  for (let round = 0; round < ROUNDS; round++) {
    const port = await freePort();
    const start = performance.now();
    await client.installApp({ repo, name: `vm${round}`, answers: { port: String(port) } });
    await answers(port, BOOT_MS);
    installTimes.push(performance.now() - start);
    if (round === 0) accelerator = await acceleratorUsed((await client.app(repo, "vm0")).vm);
    if (round === ROUNDS - 1) overhead = await memoryOverhead(MEMORY_MIB);
    await client.uninstallApp(repo, `vm${round}`, { purge: true });
  }

  // The same guest by hand: QEMU on an overlay of the converted image, same devices.
  const base = join(scratch, "base.qcow2");
  await run("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", guest.diskPath, base]);
  const plainTimes: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const overlay = join(scratch, `plain-${round}.qcow2`);
    await run("qemu-img", ["create", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay]);
    const port = await freePort();
    const start = performance.now();
    plain = spawn(
      "qemu-system-x86_64",
      [
        ...["-nodefaults", "-display", "none", "-machine", "q35"],
        ...["-accel", accelerator, "-cpu", accelerator === "kvm" ? "host" : "max"],
        ...["-m", String(MEMORY_MIB), "-smp", "1"],
        ...["-drive", `file=${overlay},format=qcow2,if=none,id=disk`],
        ...["-device", "virtio-blk-pci,drive=disk,bootindex=0"],
        ...["-netdev", `user,id=net0,hostfwd=tcp:127.0.0.1:${port}-:80`],
        ...["-device", "virtio-net-pci,netdev=net0", "-serial", "null"],
      ],
      { stdio: "ignore" },
    );
    await answers(port, BOOT_MS);
    plainTimes.push(performance.now() - start);
    plain.kill("SIGKILL");
    plain = undefined;
  }

  const cold = installTimes[0] ?? 0;
  const warm = median(installTimes.slice(1));
  const byHand = median(plainTimes);
  console.log(`VM accelerator: ${accelerator}; guest RAM ${MEMORY_MIB} MiB, 1 CPU`);
  console.log(
    `install request → guest port answering, image downloaded and converted: ${cold.toFixed(0)} ms`,
  );
  console.log(
    `install request → guest port answering, image in the store: median ${warm.toFixed(0)} ms over ${ROUNDS - 1}`,
  );
  console.log(
    `plain qemu-system-x86_64 → answering:                       median ${byHand.toFixed(0)} ms over ${ROUNDS}`,
  );
  console.log(`ratio: ${(warm / byHand).toFixed(2)}× (target within 1.25×)`);
  console.log(`QEMU memory beyond the guest's RAM: ${overhead}`);
} finally {
  plain?.kill("SIGKILL");
  await daemon.stop();
  for (const pid of await processesMentioning(join(dataDir, "vms"))) process.kill(pid, "SIGKILL");
  await git.close();
  await new Promise((resolve) => images.close(resolve));
  podman.close();
  if (service.pid !== null) process.kill(service.pid);
  await rm(scratch, { recursive: true, force: true });
}

/** The accelerator the daemon's VM got: the app's view says it, else QEMU's command line. */
async function acceleratorUsed(
  vm: { accelerator: "kvm" | "tcg" | null } | null,
): Promise<"kvm" | "tcg"> {
  if (vm?.accelerator) return vm.accelerator;
  const [pid] = await processesMentioning(join(dataDir, "vms"));
  const command = pid === undefined ? "" : await readFile(`/proc/${pid}/cmdline`, "utf8");
  return command.includes("\0kvm\0") ? "kvm" : "tcg";
}

/**
 * The running VM's QEMU resident set minus its guest RAM mapping's (the
 * anonymous mapping the size of the guest's memory): what QEMU itself costs.
 */
async function memoryOverhead(memoryMib: number): Promise<string> {
  const [pid] = await processesMentioning(join(dataDir, "vms"));
  if (pid === undefined) return "no QEMU running";
  const smaps = await readFile(`/proc/${pid}/smaps`, "utf8");
  const mappings: { sizeKb: number; rssKb: number; anonymous: boolean }[] = [];
  for (const line of smaps.split("\n")) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      mappings.push({ sizeKb: 0, rssKb: 0, anonymous: (header[1] ?? "") === "" });
      continue;
    }
    const field = /^(Size|Rss):\s+(\d+) kB$/.exec(line);
    const current = mappings.at(-1);
    if (!field || !current) continue;
    if (field[1] === "Size") current.sizeKb = Number(field[2]);
    else current.rssKb = Number(field[2]);
  }
  const totalKb = mappings.reduce((sum, mapping) => sum + mapping.rssKb, 0);
  const ram = mappings
    .filter((mapping) => mapping.anonymous && mapping.sizeKb >= memoryMib * 1024)
    .sort((a, b) => a.sizeKb - b.sizeKb)[0];
  const ramKb = ram?.rssKb ?? 0;
  const mib = (kb: number): string => `${(kb / 1024).toFixed(1)} MiB`;
  return `${mib(totalKb - ramKb)} (resident ${mib(totalKb)}, of which guest RAM touched ${mib(ramKb)} of ${memoryMib} MiB)`;
}
