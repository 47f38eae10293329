/**
 * Hostile package repositories served by real git over smart HTTP, added to
 * and refreshed by a real daemon, which is then restarted with them on disk.
 * Throughout, `GET /api/v1/status` is probed without pause: each answer must
 * come within 100 ms (the test and the daemon share one event loop, so a
 * blocked loop shows as a slow probe), and every repository shows its error.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { ApiError, TownClient, type Repository } from "@townos/client";
import { MAX_REPOSITORY_BYTES, MAX_REPOSITORY_FILES } from "@townos/format";
import { startDaemon, type DaemonConfig, type RunningDaemon } from "../daemon.js";
import { setupAdmin, testDaemonConfig, until } from "../../test/daemon.js";
import { createRepo, startGitServer, type GitServer } from "../../test/git-server.js";

const MiB = 1024 * 1024;
/** Small, so that the slow repository is stopped quickly; no fair repository comes near it. */
const BUDGET_MS = 3000;
const root = join(import.meta.dirname, "../../../..");

/** Package files that try to freeze or crash the parser, and one fair package. */
function bombs(): Record<string, string> {
  // 100 aliases of a dependency with 2,500 responses: 250,000 nodes to walk.
  const responses = Array.from({ length: 2500 }, (_, i) => `r${i}: x`).join(", ");
  const dependencies = Array.from({ length: 100 }, (_, i) => `d${i}: *dep`).join(", ");
  return {
    "packages/fair/1.0.yaml": "image: docker.io/library/nginx:1\ndescription: fair\n",
    // 200,000 aliases in about 1 MiB: minutes of CPU before.
    "packages/aliases/1.0.yaml": `image: app\ndescription: &a x\nsupplies: [${Array(200_000).fill("*a").join(",")}]\n`,
    "packages/billion/1.0.yaml": `image: app\nx-base: &dep {package: p, responses: {${responses}}}\ndependencies: {${dependencies}}\n`,
    // 500,000 levels of nesting: seconds, then a stack overflow or worse.
    "packages/deep/1.0.yaml": `image: app\ndescription: ${"[".repeat(500_000)}${"]".repeat(500_000)}\n`,
    "packages/huge/1.0.yaml": `image: app\ndescription: "${"x".repeat(3 * MiB)}"\n`,
    // Not a package file, but git must still take it in: 32 MiB that pack to almost nothing.
    "blob.bin": "\0".repeat(32 * MiB),
    // Its names would have run into another app's objects: `--` separates names now.
    "packages/x--y/1.0.yaml": "image: app\n",
  };
}

/** Fair files, but more of them than a repository may hold. */
function many(): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i <= MAX_REPOSITORY_FILES; i++) files[`packages/p${i}/1.0.yaml`] = "image: a\n";
  return files;
}

/** Seventeen files just under the size of one: more bytes than a repository may hold. */
function heavy(): Record<string, string> {
  const files: Record<string, string> = {};
  const count = MAX_REPOSITORY_BYTES / MiB + 1;
  for (let i = 0; i < count; i++) {
    files[`packages/p${i}/1.0.yaml`] = `image: a\n#${"x".repeat(MiB - 16)}\n`;
  }
  return files;
}

/** Within every bound, yet slow to parse: mappings of 30,000 keys, a dozen times. */
function slow(): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < 12; i++) {
    const env = Array.from({ length: 30_000 }, (_, k) => `  V${k}: "value ${i} ${k}"`);
    files[`packages/p${i}/1.0.yaml`] = `image: a\nenvironment:\n${env.join("\n")}\n`;
  }
  return files;
}

const HOSTILE = ["bombs", "many", "heavy", "slow", "inflate"] as const;

/** Asks for the status every few ms until stopped; keeps the slowest answer. */
interface StatusTimes {
  count: number;
  p95Ms: number;
  worstMs: number;
}

/**
 * Polls the status endpoint until stopped. Reading a hostile repository on the event loop would
 * stall answers for seconds; a loaded CI machine delays single answers by tens of milliseconds. So
 * the checks bound the 95th percentile tightly and the worst answer loosely.
 */
function probeStatus(url: string): { stop: () => Promise<StatusTimes> } {
  const state = { running: true };
  const times: number[] = [];
  const loop = (async () => {
    while (state.running) {
      const started = performance.now();
      const response = await fetch(`${url}/api/v1/status`);
      await response.arrayBuffer();
      times.push(performance.now() - started);
      assert.equal(response.status, 200);
      await sleep(10);
    }
  })();
  return {
    stop: async () => {
      state.running = false;
      await loop;
      const sorted = [...times].sort((a, b) => a - b);
      const at = (fraction: number) => sorted[Math.floor((sorted.length - 1) * fraction)] ?? 0;
      return { count: sorted.length, p95Ms: at(0.95), worstMs: at(1) };
    },
  };
}

function checkResponsive({ count, p95Ms, worstMs }: StatusTimes): void {
  assert.ok(count > 20, `only ${count} probes`);
  assert.ok(p95Ms < 100, `95% of status answers took up to ${Math.round(p95Ms)} ms`);
  assert.ok(worstMs < 1000, `a status answer took ${Math.round(worstMs)} ms`);
}

function byName(repos: readonly Repository[]): Map<string, Repository> {
  return new Map(repos.map((repo) => [repo.name, repo]));
}

/** The errors each hostile repository must show, whether it was just fetched or read at boot. */
function checkErrors(repos: Map<string, Repository>): void {
  assert.match(repos.get("many")?.status.error ?? "", /more than 20000 package directories/);
  assert.match(repos.get("heavy")?.status.error ?? "", /more than 16777216 bytes/);
  assert.match(
    repos.get("inflate")?.status.error ?? "",
    /holds an object larger than 67108864 bytes/,
  );
  assert.match(
    repos.get("slow")?.status.error ?? "",
    /reading the repository took longer than 3 s; it was stopped/,
  );
  assert.equal(repos.get("bombs")?.status.error, null);
}

describe("hostile package repositories", () => {
  let scratch: string;
  let server: GitServer;
  let config: DaemonConfig;
  let daemon: RunningDaemon;
  let admin: TownClient;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-hostile-"));
    const gitRoot = join(scratch, "git");
    await createRepo(gitRoot, "bombs.git", bombs());
    await createRepo(gitRoot, "many.git", many());
    await createRepo(gitRoot, "heavy.git", heavy());
    await createRepo(gitRoot, "slow.git", slow());
    // 256 MiB of zeros pack to about 256 KiB: isomorphic-git would inflate them whole.
    await createRepo(gitRoot, "inflate.git", { "blob.bin": "\0".repeat(256 * MiB) });
    server = await startGitServer({ root: gitRoot });
    config = testDaemonConfig(scratch, { apps: false, repositoryLimits: { budgetMs: BUDGET_MS } });
    daemon = await startDaemon(config);
    await daemon.booted;
    admin = await setupAdmin(daemon, "password-123");
  });

  after(async () => {
    await daemon.stop();
    await server.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it("adds and refreshes them while answering its status promptly", async () => {
    const probe = probeStatus(daemon.url);
    for (const name of HOSTILE) {
      await admin.addRepository({ name, url: server.url(`${name}.git`) });
    }
    await admin.refreshRepositories();
    checkResponsive(await probe.stop());
    checkErrors(byName((await admin.repositories()).items));
  });

  it("lists the bombs as invalid versions of their own, the fair package as valid", async () => {
    const version = async (name: string) => (await admin.package("bombs", name)).versions[0];
    assert.equal((await version("fair"))?.valid, true);
    const errorOf = async (name: string) => (await version(name))?.errors[0]?.message ?? "";
    assert.match(await errorOf("aliases"), /more than 100 aliases/);
    assert.match(await errorOf("billion"), /too many nodes/);
    assert.match(await errorOf("deep"), /nest deeper than 64 levels/);
    assert.match(await errorOf("x--y"), /"--"/);
    const bombs = byName((await admin.repositories()).items).get("bombs");
    assert.deepEqual(
      bombs?.status.skipped.map((file) => file.path),
      ["packages/huge/1.0.yaml"],
    );
  });

  it("boots with them on disk: ready at once, status promptly, each error shown", async () => {
    await daemon.stop();
    daemon = await startDaemon(config);
    const probe = probeStatus(daemon.url);
    await daemon.booted;
    admin = new TownClient({ baseUrl: daemon.url });
    admin.token = (await admin.login({ username: "admin", password: "password-123" })).token;
    const loaded = await until(
      "every repository to be read",
      60_000,
      () => admin.repositories(),
      (page) => page.items.every((repo) => !repo.status.loading),
    );
    checkResponsive(await probe.stop());
    checkErrors(byName(loaded.items));
    assert.equal((await admin.package("bombs", "fair")).versions[0]?.valid, true);
    await assert.rejects(
      () => admin.package("slow", "p0"),
      (error: ApiError) => error.problem.code === "not_found",
    );
  });

  it(
    "starts the compiled worker when the daemon runs from its build",
    { timeout: 120_000 },
    async (t) => {
      const built = join(root, "packages/daemon/dist/index.js");
      if (!existsSync(built)) {
        t.skip("packages/daemon/dist is not built: run npm run build");
        return;
      }
      assert.ok(
        existsSync(join(root, "packages/daemon/dist/catalog/repository-worker.js")),
        "packages/daemon/dist is older than its sources: run npm run build",
      );
      // A child process without tsx or the source condition: everything comes from dist.
      const dataDir = join(scratch, "built");
      const script = `
      import { startDaemon } from ${JSON.stringify(built)};
      const daemon = await startDaemon({ dataDir: ${JSON.stringify(dataDir)}, host: "127.0.0.1",
        port: 0, defaultRepositoryUrl: ${JSON.stringify(server.url("bombs.git"))},
        logLevel: "silent", extraHosts: [], version: "built", apps: false });
      await daemon.booted;
      console.log(JSON.stringify({ url: daemon.url, setupCode: daemon.setupCode }));
      process.stdin.resume();
      process.stdin.on("end", () => void daemon.stop().then(() => process.exit(0)));
    `;
      const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
        stdio: ["pipe", "pipe", "inherit"],
      });
      try {
        const line = await new Promise<string>((resolve, reject) => {
          child.stdout.once("data", (chunk: Buffer) => {
            resolve(chunk.toString());
          });
          child.once("exit", (code) => {
            reject(new Error(`the built daemon exited (${String(code)})`));
          });
        });
        const started = JSON.parse(line) as { url: string; setupCode?: string };
        const client = await setupAdmin(started, "password-123");
        const refreshed = await client.refreshRepository("default");
        assert.equal(refreshed.status.error, null);
        const version = (await client.package("default", "aliases")).versions[0];
        assert.match(version?.errors[0]?.message ?? "", /more than 100 aliases/);
        assert.equal((await client.package("default", "fair")).versions[0]?.valid, true);
      } finally {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.stdin.end();
        if (child.exitCode === null && child.signalCode === null) await exited;
      }
    },
  );
});
