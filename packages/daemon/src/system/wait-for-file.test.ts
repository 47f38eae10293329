import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { waitForFile } from "./wait-for-file.js";

describe("waitForFile", () => {
  it("resolves once the file appears, not before", async () => {
    const dir = await mkdtemp(join(tmpdir(), "town-wait-"));
    try {
      const path = join(dir, "data");
      let done = false;
      const waiting = waitForFile(path, new AbortController().signal).then(() => {
        done = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 250));
      assert.equal(done, false);
      await writeFile(path, "disk /dev/vdb\n");
      await waiting;
      assert.equal(done, true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("stops waiting when aborted", async () => {
    const abort = new AbortController();
    const waiting = waitForFile("/nonexistent/town-os/data", abort.signal);
    abort.abort(new Error("the daemon is stopping"));
    await assert.rejects(waiting, /the daemon is stopping/);
  });
});
