/**
 * The public Town OS package repository on a real box: every package of
 * `../shared/fixtures/townos-default-packages`, unchanged, served by git over
 * smart HTTP and installed through a real daemon over HTTP, with real
 * Podman (netavark + aardvark-dns), btrfs on a loop file, Caddy and dnsmasq.
 * No registry is reachable, so each image is a local stand-in tagged under
 * the exact name the daemon asks for (real redis-server and PostgreSQL from
 * Debian, busybox servers otherwise: test/runtime/public-stand-ins.ts).
 *
 * Per package: its containers run; a dependency answers from inside the
 * dependent container at the host name and port its environment gives; its
 * HTTPS names answer through the ingress and are in the box's DNS; its notes
 * are rendered, and the endpoints they name answer; secret answers never
 * reach a user who is not an administrator.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ApiError, TownClient, type AppView } from "@townos/client";
import { normalizeImage } from "@townos/format";
import { readTree, upstreamFixtures, upstreamMissing } from "../../../format/test/support.js";
import {
  setupAdmin,
  signedInAccount,
  startPodmanDaemon,
  until,
  untilAppsAvailable,
} from "../../test/daemon.js";
import { createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
import {
  dig,
  eventually,
  loopbackNetwork,
  networkMissing,
  scratchDir,
  viaCaddy,
} from "../../test/net.js";
import {
  freePort,
  podmanMissing,
  preparePodmanHost,
  startTestPodman,
  stopTestPodman,
} from "../../test/runtime/podman-host.js";
import { publicStandIn, standInBanner } from "../../test/runtime/public-stand-ins.js";
import {
  buildStandIn,
  pruneStandIns,
  tagStandIn,
  untagStandIns,
} from "../../test/runtime/stand-in-images.js";
import { btrfsUnavailable } from "../../test/storage/loop-btrfs.js";
import type { RunningDaemon } from "../daemon.js";
import type { Podman } from "../runtime/podman/client.js";
import type { ServiceState } from "../runtime/podman/service.js";
import { LABEL_INSTANCE, LABEL_NAME } from "../runtime/package-workload.js";
import { mountedAt, storageLocations, unmount } from "../storage/setup.js";
import { LABEL_APP, LABEL_BOX } from "./labels.js";

const skip =
  upstreamMissing || podmanMissing || networkMissing() || (await btrfsUnavailable()) || false;
if (skip) console.log(`# skipping the public repository test: ${skip}`);

const PASSWORD = "admin-password-51c8";
const USER_PASSWORD = "user-password-9a2d";
const MiB = 1024 * 1024;
/** A marker the compiler left in place: `@port@`, `@PACKAGE_DNS@`. */
const RAW_MARKER = /@[A-Za-z_][A-Za-z0-9_]*@/;

describe("the public Town OS repository on a real box", { skip, timeout: 420_000 }, () => {
  // A repository name of this run only: container and network names are host-wide.
  const repo = `p${randomBytes(4).toString("hex")}`;
  const started = Date.now();
  let scratch: string;
  let server: GitServer | undefined;
  let daemon: RunningDaemon | undefined;
  let podman: Podman;
  let service: ServiceState = { started: false, pid: null };
  let admin: TownClient;
  let user: TownClient;
  let httpsPort: number;
  let dnsPort: number;
  let caFile: string;
  let packages: string[] = [];
  /** The public image names tagged for this run, taken away at the end. */
  const tagged = new Set<string>();
  /** The cached stand-ins this run used: kept for the next run, older ones pruned. */
  const cached = new Set<string>();
  /** Each package's own image, as the daemon names it. */
  const images = new Map<string, string>();
  /** The answers each package is installed with: free ports instead of taken ones. */
  const answers: Record<string, Record<string, string>> = {};

  before(async () => {
    await preparePodmanHost();
    scratch = await scratchDir("town-public-");
    ({ podman, service } = await startTestPodman(scratch));
    const files = Object.fromEntries(
      (await readTree(upstreamFixtures)).map((file) => [file.path, file.text]),
    );
    await createRepo(join(scratch, "git"), "townos.git", files);
    server = await startGitServer({ root: join(scratch, "git") });
    const network = await loopbackNetwork(scratch);
    httpsPort = network.httpsPort;
    daemon = await startPodmanDaemon(scratch, podman, {
      apps: { storageLoopBytes: 1024 * MiB },
      network,
    });
    admin = await setupAdmin(daemon, PASSWORD);
    user = await signedInAccount(daemon, admin, "member", USER_PASSWORD);
    await admin.addRepository({ name: repo, url: server.url("townos.git") });
    await untilAppsAvailable(admin, 30_000);
    // Volumes on btrfs in a loop file, with quotas (immich's photo volume has one).
    assert.equal((await admin.storage()).mode, "btrfs-loop");
    caFile = join(scratch, "ca.crt");
    // Caddy makes its local CA once it has started.
    await writeFile(caFile, await eventually("the box's CA", () => admin.caCertificate(), 30_000));
    const port = (await admin.netStatus()).dns?.listen?.port;
    assert.ok(port, "dnsmasq listens");
    dnsPort = port;

    const catalog = await admin.catalog({ repo, limit: 100 });
    packages = catalog.items.map((p) => p.name).sort();
    // Every package of the fixture is offered, at a valid version.
    const written = (await readdir(join(upstreamFixtures, "packages"))).sort();
    assert.deepEqual(packages, written);
    for (const p of catalog.items) assert.ok(p.latestVersion, `${p.name} has a valid version`);

    // Ports a host may already use (and the dependencies of immich take) get free ones.
    const free = async (...names: string[]): Promise<Record<string, string>> => {
      const ports: Record<string, string> = {};
      for (const name of names) ports[name] = String(await freePort());
      return ports;
    };
    Object.assign(answers, {
      gitea: await free("sshport"),
      immich: { photosize: "64mb" },
      "immich-postgres": { user: "photos", database: "photos", ...(await free("port")) },
      "immich-machine-learning": await free("port"),
      irc: await free("plainport", "tlsport"),
      postgres: { user: "town", database: "town", ...(await free("port")) },
      redis: await free("port"),
    });

    // The images exactly as the daemon names them: each package's own, as its
    // catalog entry writes it and normalised as Podman pulls it, and every one
    // its install (dependencies included) would pull.
    for (const { name, latestVersion } of catalog.items) {
      const detail = await admin.packageVersion(repo, name, latestVersion ?? "");
      const image = normalizeImage(detail.preview?.image ?? "");
      assert.ok(image, name);
      images.set(name, image);
    }
    for (const name of packages) {
      const preview = await admin.previewInstall({ repo, name, answers: answers[name] ?? {} });
      assert.deepEqual(preview.problems, [], `${name}: ${JSON.stringify(preview.problems)}`);
      assert.deepEqual(preview.questionsToAnswer, [], name);
      for (const image of preview.images) {
        assert.ok([...images.values()].includes(image), `${name} needs ${image}`);
      }
    }
    const built = await Promise.all(
      [...images].map(
        async ([name, image]) => [image, await buildStandIn(publicStandIn(name, image))] as const,
      ),
    );
    for (const [image, tag] of built) {
      cached.add(tag);
      await tagStandIn(tag, image);
      tagged.add(image);
    }
    console.log(`# stand-in images ready after ${Math.round((Date.now() - started) / 1000)} s`);

    // All at once, as a box would take them: each install answers after its first reconcile.
    await Promise.all(
      packages.map((name) => admin.installApp({ repo, name, answers: answers[name] ?? {} })),
    );
    console.log(`# all installed after ${Math.round((Date.now() - started) / 1000)} s`);
  });

  after(async () => {
    try {
      if (daemon) {
        await Promise.all(
          packages.map((name) =>
            admin.uninstallApp(repo, name, { purge: true }).catch(() => undefined),
          ),
        );
      }
      const network = daemon?.boot.services?.network;
      const box = daemon?.boot.services?.apps.box;
      await daemon?.stop();
      await network?.stopForTests();
      await server?.close();
      // Whatever a failed uninstall left of this daemon's apps.
      if (box) {
        for (const container of await podman.listContainers({ [LABEL_BOX]: box })) {
          await podman.removeContainer(container.id, { timeoutSeconds: 0 });
        }
        for (const left of await podman.listNetworks({ [LABEL_BOX]: box })) {
          await podman.removeNetwork(left.name);
        }
      }
      await untagStandIns(tagged);
      if (cached.size > 0) await pruneStandIns(cached);
    } finally {
      stopTestPodman({ podman, service });
      const { root } = storageLocations(join(scratch, "data"));
      if (await mountedAt(root)) await unmount(root);
      await rm(scratch, { recursive: true, force: true });
      console.log(
        `# the public repository test took ${Math.round((Date.now() - started) / 1000)} s`,
      );
    }
  });

  /** The app once every container of it runs. */
  async function running(name: string): Promise<AppView> {
    return until(
      `${name} to run`,
      60_000,
      () => admin.app(repo, name),
      (app) => app.containers.length > 0 && app.containers.every((c) => c.state === "running"),
    );
  }

  it("runs every package's containers, its dependencies' too", async () => {
    for (const name of packages) {
      const app = await running(name);
      assert.equal(app.lastError, null, name);
      const containers = await podman.listContainers({
        [LABEL_BOX]: daemon?.boot.services?.apps.box ?? "",
        [LABEL_APP]: `${repo}/${name}`,
      });
      assert.deepEqual(
        containers.map((c) => c.name).sort(),
        app.containers.map((c) => c.name).sort(),
        name,
      );
    }
    // immich brings its database, cache and machine learning along.
    const immich = await admin.app(repo, "immich");
    assert.equal(immich.containers.length, 4);
  });

  it("reaches each dependency at the host name and port the dependent's environment gives", async () => {
    const hostsReached = new Map<string, string[]>();
    for (const name of packages) {
      await running(name);
      const containers = await podman.listContainers({ [LABEL_APP]: `${repo}/${name}` });
      const root = containers.find((c) => c.labels[LABEL_INSTANCE] === name);
      assert.ok(root, `${name}: its own container`);
      const dependencies = containers.filter((c) => c !== root);
      if (dependencies.length === 0) continue;
      const env = parseEnv((await podman.exec(root.name, ["env"])).stdout);
      // Where each dependency is, as its dependent's resolver sees it.
      const addressOf = new Map<string, string>();
      for (const dependency of dependencies) {
        addressOf.set(
          await resolveIn(root.name, dependency.name),
          dependency.labels[LABEL_NAME] ?? "",
        );
      }
      // Every host:port in the environment of an app with dependencies is one of them.
      const reached = new Set<string>();
      const hosts: string[] = [];
      for (const endpoint of endpointsIn(env)) {
        const address = await resolveIn(root.name, endpoint.host);
        const pkg = addressOf.get(address);
        assert.ok(pkg, `${name}: ${endpoint.host} (${address}) is not a dependency`);
        await eventually(
          `${name} to reach ${endpoint.host}:${endpoint.port} (${pkg})`,
          () => probe(root.name, pkg, endpoint),
          30_000,
        );
        reached.add(pkg);
        hosts.push(endpoint.host);
      }
      hostsReached.set(name, hosts);
      assert.deepEqual(
        [...reached].sort(),
        dependencies.map((d) => d.labels[LABEL_NAME]).sort(),
        `${name}: every dependency reached by a name in its environment`,
      );
    }
    // immich's own connection strings use the dependency keys as host names.
    for (const alias of ["db", "redis", "ml"]) {
      assert.ok(hostsReached.get("immich")?.includes(alias), `immich reaches ${alias}`);
    }
  });

  it("answers every HTTPS name through the ingress, and has it in the box's DNS", async () => {
    let checked = 0;
    for (const name of packages) {
      const app = await running(name);
      for (const url of app.urls) {
        const host = new URL(url).hostname;
        const page = await eventually(`${url} through Caddy`, () =>
          viaCaddy(caFile, host, httpsPort),
        );
        assert.equal(page.trim(), standInBanner(images.get(name) ?? ""), `${url} reaches ${name}`);
        await eventually(`${host} in DNS`, async () => {
          assert.equal(await dig(dnsPort, host), "127.0.0.1");
        });
        checked++;
      }
    }
    // gitea, immich, immich-machine-learning and vaultwarden have an `http` port.
    assert.ok(checked >= 4, `${checked} names`);
  });

  it("renders every note, and the endpoints the notes name answer", async () => {
    for (const name of packages) {
      const app = await running(name);
      for (const note of app.notes) {
        assert.doesNotMatch(note.value, RAW_MARKER, `${name}: note ${note.label}`);
        assert.notEqual(note.value, "", `${name}: note ${note.label} has a value`);
        if (note.type !== "url") continue;
        const url = new URL(note.value);
        if (url.protocol === "https:") {
          // A real box's ingress is on 443, this one on a free port; the paths
          // (vaultwarden's /admin) are the real app's, which a stand-in lacks.
          assert.ok(app.urls.includes(`https://${url.hostname}/`), `${name}: ${note.value}`);
          const page = await eventually(`${note.value} through Caddy`, () =>
            viaCaddy(caFile, url.hostname, httpsPort),
          );
          assert.equal(page.trim(), standInBanner(images.get(name) ?? ""), note.value);
        } else {
          // postgresql://…@postgres.<repo>.home:PORT, ssh://git@gitea.<repo>.home:PORT
          const address = await dig(dnsPort, url.hostname);
          assert.equal(address, "127.0.0.1", `${name}: ${url.hostname} in DNS`);
          await eventually(`${name}: ${url.protocol}//${url.hostname}:${url.port}`, () =>
            connect(address, Number(url.port)),
          );
        }
      }
    }
  });

  it("never shows a secret answer to a user who is not an administrator", async () => {
    const secretNotes: string[] = [];
    for (const name of packages) {
      const asAdmin = await running(name);
      const asUser = await user.app(repo, name);
      const { version, answers: given } = await admin.lastAnswers(repo, name);
      const { questions } = await admin.packageVersion(repo, name, version);
      const secrets = questions
        .filter((q) => q.type === "secret")
        .map((q) => given[q.name] ?? "")
        .filter((value) => value !== "");
      const seen = JSON.stringify(asUser);
      for (const secret of secrets) assert.ok(!seen.includes(secret), `${name}: a secret shown`);
      for (const [i, note] of asAdmin.notes.entries()) {
        const shown = asUser.notes[i];
        assert.equal(shown?.label, note.label);
        if (note.secret) {
          secretNotes.push(`${name}: ${note.label}`);
          assert.ok(
            secrets.some((s) => note.value.includes(s)),
            `${name}: ${note.label}`,
          );
          assert.equal(shown.value, "", `${name}: ${note.label} masked`);
        } else {
          assert.equal(shown.value, note.value, `${name}: ${note.label} shown`);
        }
      }
      await assert.rejects(
        () => user.lastAnswers(repo, name),
        (error: ApiError) => error.problem.status === 403,
      );
    }
    // The connection URLs with their passwords, and ergo's operator password.
    for (const expected of [
      "postgres: Connection",
      "immich-postgres: Connection",
      "irc: Operator password",
    ]) {
      assert.ok(secretNotes.includes(expected), `${expected} is secret: ${secretNotes.join(", ")}`);
    }
  });

  it("runs the irc package's own bootstrap: its config names this box", async () => {
    await running("irc");
    const server = await podman.listContainers({ [LABEL_APP]: `${repo}/irc` });
    const name = server[0]?.name;
    assert.ok(name);
    const config = await podman.exec(name, ["cat", "/ircd/ircd.yaml"]);
    assert.equal(config.exitCode, 0, config.stderr);
    assert.match(config.stdout, /^ {4}name: TownNet$/m);
    assert.match(config.stdout, new RegExp(`^ {4}name: irc\\.${repo}\\.`, "m"));
    assert.match(config.stdout, /path: \/ircd-bin\/languages/);
    assert.doesNotMatch(config.stdout, /0123456789abcdef0123456789abcdef/);
    for (const port of ["plainport", "tlsport"]) {
      await eventually(`irc on its ${port}`, () =>
        connect("127.0.0.1", Number(answers.irc?.[port])),
      );
    }
  });

  /** The address `host` has inside `container` (its first A record), once it has one. */
  function resolveIn(container: string, host: string): Promise<string> {
    return eventually(`${host} to resolve in ${container}`, () => lookUp(container, host), 10_000);
  }

  async function lookUp(container: string, host: string): Promise<string> {
    const result = await podman.exec(container, ["nslookup", "-type=a", host]);
    const addresses = [...result.stdout.matchAll(/^Address: (\d+\.\d+\.\d+\.\d+)$/gm)];
    const address = addresses[0]?.[1];
    if (result.exitCode !== 0 || address === undefined) {
      throw new Error(`${host} does not resolve in ${container}: ${result.stdout}${result.stderr}`);
    }
    return address;
  }

  /** Speaks the dependency's protocol to it from inside the dependent container. */
  async function probe(container: string, pkg: string, endpoint: Endpoint): Promise<void> {
    const { host, port } = endpoint;
    const talk = async (script: string, expected: RegExp): Promise<void> => {
      const result = await podman.exec(container, ["sh", "-c", script], { timeoutMs: 10_000 });
      assert.match(result.stdout, expected, `${host}:${port}: ${result.stdout}${result.stderr}`);
    };
    if (pkg === "redis") return talk(`printf 'PING\\r\\n' | nc -w 3 ${host} ${port}`, /^\+PONG/);
    if (pkg.endsWith("postgres")) {
      // An SSLRequest: PostgreSQL answers N (no TLS here) and waits for a startup message.
      return talk(
        `printf '\\000\\000\\000\\010\\004\\322\\026\\057' | nc -w 3 ${host} ${port}`,
        /^N/,
      );
    }
    if (endpoint.scheme === "http") {
      // No -T: busybox 1.35 wget crashes with it.
      return talk(`wget -qO- http://${host}:${port}/`, /^stand-in for /);
    }
    return talk(`nc -w 3 ${host} ${port} </dev/null && echo connected`, /connected/);
  }
});

interface Endpoint {
  host: string;
  port: number;
  scheme?: string;
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const equals = line.indexOf("=");
    if (equals > 0) env[line.slice(0, equals)] = line.slice(equals + 1);
  }
  return env;
}

/**
 * The host:port pairs an environment names: URLs (`http://ml:3003`) and
 * `X_HOST`/`X_HOSTNAME` with `X_PORT` or `X_PORT_*` beside it.
 */
function endpointsIn(env: Readonly<Record<string, string>>): Endpoint[] {
  const endpoints: Endpoint[] = [];
  for (const [key, value] of Object.entries(env)) {
    const url = /^([a-z][a-z0-9+.-]*):\/\/(?:[^@/]*@)?([A-Za-z0-9.-]+):(\d+)/.exec(value);
    if (url?.[2] && url[3]) {
      endpoints.push({ scheme: url[1] ?? "", host: url[2], port: Number(url[3]) });
      continue;
    }
    const named = /^(.*)_HOST(?:NAME)?$/.exec(key);
    if (!named?.[1]) continue;
    const prefix = `${named[1]}_PORT`;
    for (const [portKey, port] of Object.entries(env)) {
      if ((portKey === prefix || portKey.startsWith(`${prefix}_`)) && /^\d+$/.test(port)) {
        endpoints.push({ host: value, port: Number(port) });
      }
    }
  }
  return endpoints;
}

/** Resolves once a TCP connection to `address:port` from the host is accepted. */
function connect(address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port, timeout: 3_000 });
    socket.once("connect", () => {
      socket.destroy();
      resolve();
    });
    socket.once("timeout", () => {
      socket.destroy();
      reject(new Error(`${address}:${port}: no answer`));
    });
    socket.once("error", reject);
  });
}
