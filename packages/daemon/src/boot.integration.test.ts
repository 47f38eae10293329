import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ApiError, TownClient } from "@townos/client";
import type { FetchedRepository, RepositoryFetcher } from "./catalog/catalog.js";
import { startDaemon } from "./daemon.js";

describe("the daemon while it boots", () => {
  it("answers its status at once, refuses other calls with `booting`, then becomes ready", async () => {
    const scratch = await mkdtemp(join(tmpdir(), "town-boot-"));
    let release = (): void => undefined;
    const loading = new Promise<void>((resolve) => {
      release = resolve;
    });
    // A fetcher whose local read hangs until released: boot stays in its repository step.
    const fetcher: RepositoryFetcher = {
      sync: () => Promise.reject(new Error("offline in this test")),
      readLocal: async (): Promise<FetchedRepository | undefined> => {
        await loading;
        return undefined;
      },
      remove: () => Promise.resolve(),
    };
    const daemon = await startDaemon({
      dataDir: join(scratch, "data"),
      host: "127.0.0.1",
      port: 0,
      defaultRepositoryUrl: "https://town-os.invalid/default-packages",
      logLevel: "silent",
      extraHosts: [],
      version: "test",
      fetcher,
      apps: false,
    });
    try {
      const client = new TownClient({ baseUrl: daemon.url });
      const booting = await client.status();
      assert.equal(booting.state, "booting");
      assert.equal(booting.step, "loading package repositories");
      assert.equal(booting.setupNeeded, null);
      await assert.rejects(
        () => client.setup({ username: "early", password: "password-123" }),
        (error: ApiError) => error.problem.status === 503 && error.problem.code === "booting",
      );
      release();
      await daemon.booted;
      const ready = await client.status();
      assert.deepEqual([ready.state, ready.setupNeeded], ["ready", true]);
      // The default repository was added on this first start, and its failure is its own status.
      const admin = new TownClient({ baseUrl: daemon.url });
      admin.token = (
        await admin.setup({
          username: "admin",
          password: "password-123",
          setupCode: daemon.setupCode,
        })
      ).token;
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
});
