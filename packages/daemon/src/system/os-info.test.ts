import assert from "node:assert/strict";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseDataDecision, parseRelease, readOsInfo } from "./os-info.js";

describe("the Town OS image's files", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "town-os-info-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads the image's version and the data decision", async () => {
    const release = join(dir, "release");
    const data = join(dir, "data");
    await writeFile(
      release,
      'TOWN_OS_VERSION="2026.12.04-1419e90"\nTOWN_OS_BUILT=2026-12-04T19:30:00Z\n',
    );
    await writeFile(data, "ram no data disk was found\n");
    assert.deepEqual(await readOsInfo({ release, data }), {
      image: { version: "2026.12.04-1419e90", built: "2026-12-04T19:30:00Z" },
      data: { storage: "ram", detail: "no data disk was found", degraded: false },
    });
  });

  it("says nothing off the image (no files), nor through a planted link", async () => {
    assert.deepEqual(await readOsInfo({ release: join(dir, "none"), data: join(dir, "none") }), {
      image: null,
      data: null,
    });
    const target = join(dir, "target");
    await writeFile(target, "disk /dev/sdb\n");
    const link = join(dir, "link");
    await symlink(target, link);
    assert.equal((await readOsInfo({ release: link, data: link })).data, null);
  });

  it("takes only what the files' formats allow", () => {
    assert.deepEqual(parseDataDecision("disk /dev/vdb\n"), {
      storage: "disk",
      detail: "/dev/vdb",
      degraded: false,
    });
    assert.deepEqual(parseDataDecision("disk-degraded /dev/vdb\n"), {
      storage: "disk",
      detail: "/dev/vdb",
      degraded: true,
    });
    assert.deepEqual(parseDataDecision("ram\n"), { storage: "ram", detail: "", degraded: false });
    for (const bad of [
      "",
      "tape /dev/st0",
      "ram-degraded x",
      "ram \u001b[31mred",
      `ram ${"x".repeat(201)}`,
    ])
      assert.equal(parseDataDecision(bad), null, JSON.stringify(bad));
    assert.equal(parseRelease("NAME=Debian\n"), null);
    assert.deepEqual(parseRelease("TOWN_OS_VERSION=1\nTOWN_OS_BUILT=\u0007\n"), {
      version: "1",
      built: null,
    });
  });
});
