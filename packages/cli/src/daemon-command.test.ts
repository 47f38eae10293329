import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const repository = fileURLToPath(new URL("../../..", import.meta.url));
const main = fileURLToPath(new URL("./main.ts", import.meta.url));

describe("town daemon", () => {
  let scratch: string;
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-daemon-command-"));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it("ends on its own when stopped while it waits for its data disk", async () => {
    const dataDir = join(scratch, "data");
    const daemon = spawn(
      process.execPath,
      ["--conditions=source", "--import", "tsx", main, "daemon"],
      {
        cwd: repository,
        env: {
          ...process.env,
          TOWN_DATA_DIR: dataDir,
          TOWN_DATA_READY_FILE: join(scratch, "never"),
          TOWN_LISTEN: "127.0.0.1:0",
          TOWN_NETWORK: "off",
          TOWN_MONITORING: "off",
          TOWN_VMS: "off",
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const exited = once(daemon, "exit");
    let output = "";
    daemon.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      daemon.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Server listening")) resolve();
      });
      void exited.then(() => {
        reject(new Error(`it exited before listening:\n${output}`));
      });
    });
    daemon.kill("SIGTERM");
    const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, output);
    // It never had its disk's decision, so it never made its data directory.
    await assert.rejects(access(dataDir), { code: "ENOENT" });
  });
});
