import assert from "node:assert/strict";
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ApiError, TownClient } from "@townos/client";
import type { FetchedRepository, RepositoryFetcher } from "./catalog/catalog.js";
import { startDaemon } from "./daemon.js";
import { setupAdmin, testDaemonConfig, until } from "../test/daemon.js";

describe("the daemon while it boots", () => {
  it("becomes ready without waiting for its repositories, which show as loading", async () => {
    const scratch = await mkdtemp(join(tmpdir(), "town-boot-"));
    let release = (): void => undefined;
    const loading = new Promise<void>((resolve) => {
      release = resolve;
    });
    // A fetcher whose local read hangs until released: before, boot waited for it.
    const fetcher: RepositoryFetcher = {
      sync: () => Promise.reject(new Error("offline in this test")),
      readLocal: async (): Promise<FetchedRepository | undefined> => {
        await loading;
        return undefined;
      },
      remove: () => Promise.resolve(),
    };
    const daemon = await startDaemon(
      testDaemonConfig(scratch, {
        defaultRepositoryUrl: "https://town-os.invalid/default-packages",
        fetcher,
        apps: false,
      }),
    );
    try {
      await daemon.booted;
      const client = new TownClient({ baseUrl: daemon.url });
      const ready = await client.status();
      assert.deepEqual([ready.state, ready.setupNeeded], ["ready", true]);
      // The default repository was added on this first start, and its failure is its own status.
      const admin = await setupAdmin(daemon, "password-123");
      const listed = await admin.repositories();
      assert.deepEqual(
        listed.items.map((repo) => [repo.name, repo.status.loading]),
        [["default", true]],
      );
      // What needs the repository's packages says it is loading, not that they do not exist.
      await assert.rejects(
        () => admin.package("default", "anything"),
        (error: ApiError) => error.problem.status === 503 && error.problem.code === "unavailable",
      );
      release();
      await until(
        "the repository to be read",
        5000,
        () => admin.repositories(),
        (page) => page.items.every((repo) => !repo.status.loading),
      );
      const repos = await admin.refreshRepositories();
      assert.deepEqual(
        repos.map((repo) => [repo.name, repo.status.error]),
        [["default", "offline in this test"]],
      );
    } finally {
      release();
      await daemon.stop();
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("opens its data directory only once the data pool's decision exists (dataReadyFile), then says it booted (bootedFile)", async () => {
    const scratch = await mkdtemp(join(tmpdir(), "town-boot-"));
    const decision = join(scratch, "run", "data");
    const booted = join(scratch, "run", "daemon");
    const daemon = await startDaemon(
      testDaemonConfig(scratch, { dataReadyFile: decision, bootedFile: booted, apps: false }),
    );
    try {
      const client = new TownClient({ baseUrl: daemon.url });
      // It answers meanwhile, and says what it waits for.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const waiting = await client.status();
      assert.deepEqual([waiting.state, waiting.step], ["booting", "waiting for the data disk"]);
      await assert.rejects(access(join(scratch, "data")), "the data directory is not made yet");
      await mkdir(join(scratch, "run"));
      await assert.rejects(access(booted), "not booted yet");
      await writeFile(decision, "disk /dev/vdb\n");
      await daemon.booted;
      assert.equal((await client.status()).state, "ready");
      await access(join(scratch, "data", "town.db"));
      assert.equal(await readFile(booted, "utf8"), "ready\n");
    } finally {
      await daemon.stop();
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("stops while it waits for the data disk, and says the boot failed (bootedFile)", async () => {
    const scratch = await mkdtemp(join(tmpdir(), "town-boot-"));
    const booted = join(scratch, "daemon");
    const daemon = await startDaemon(
      testDaemonConfig(scratch, {
        dataReadyFile: join(scratch, "never"),
        bootedFile: booted,
        apps: false,
      }),
    );
    try {
      await daemon.stop();
      assert.equal(daemon.boot.state, "failed");
      assert.equal(await readFile(booted, "utf8"), "failed\n");
      await assert.rejects(access(join(scratch, "data")));
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
