import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import type { Workload } from "../workload.js";
import { environmentFile, escape, qemuArgs, type QemuArgsInput } from "./qemu-args.js";

const testdata = join(import.meta.dirname, "testdata");
/** `TOWN_UPDATE_GOLDENS=1` rewrites the golden files instead of comparing with them. */
const updateGoldens = process.env["TOWN_UPDATE_GOLDENS"] === "1";
const MIB = 1024 * 1024;

const machine = {
  memoryBytes: 256 * MIB,
  cpus: 1,
  disk: "/var/lib/town/volumes/pkg.default.router.vm-disk/disk.qcow2",
};
const vm: Workload = {
  kind: "vm",
  name: "town-default--router",
  hostname: "town-default--router",
  image: "openwrt-23.05",
  env: {},
  labels: { "town.repo": "default", "town.name": "router", "town.instance": "router" },
  mounts: [],
  ports: [],
  network: null,
  restart: "unless-stopped",
  machine,
};

function input(workload: Partial<Workload>, rest: Partial<QemuArgsInput> = {}): QemuArgsInput {
  return {
    workload: { ...vm, ...workload },
    accelerator: "tcg",
    baseImage: "/var/lib/town/vm-images/openwrt-23.05.qcow2",
    paths: {
      qmpSocket: "/var/lib/town/vms/0123456789abcdef/qmp.sock",
      environmentFile: "/var/lib/town/vms/0123456789abcdef/environment",
    },
    ...rest,
  };
}

function argsError(value: QemuArgsInput): TownError {
  try {
    qemuArgs(value);
  } catch (error) {
    assert.ok(error instanceof TownError, String(error));
    return error;
  }
  assert.fail("expected qemuArgs to fail");
}

describe("qemuArgs: goldens", () => {
  const cases: [string, QemuArgsInput][] = [
    ["minimal-tcg", input({})],
    [
      "full-kvm",
      input(
        {
          env: { TZ: "Europe/Berlin", ADMIN_EMAIL: "a@example.org", EMPTY: "" },
          ports: [
            { hostAddress: "0.0.0.0", hostPort: 8443, port: 443, protocol: "tcp" },
            { hostAddress: "127.0.0.1", hostPort: 2222, port: 22, protocol: "tcp" },
          ],
          mounts: [
            {
              source: "/var/lib/town/volumes/pkg.default.router.config",
              target: "/etc/config",
              name: "config",
            },
            { source: "/srv/with,comma", target: "/data", name: "data.1" },
          ],
          machine: {
            memoryBytes: 2048 * MIB,
            cpus: 2,
            disk: "/var/lib/town/volumes/x,y/disk.qcow2",
          },
        },
        { accelerator: "kvm" },
      ),
    ],
  ];
  for (const [name, value] of cases) {
    it(name, async () => {
      const args = qemuArgs(value);
      const file = join(testdata, `${name}.json`);
      if (updateGoldens) await writeFile(file, `${JSON.stringify(args, null, 2)}\n`);
      const golden: unknown = JSON.parse(await readFile(file, "utf8"));
      assert.deepEqual(args, golden, `${file} differs (TOWN_UPDATE_GOLDENS=1 rewrites it)`);
    });
  }
});

describe("qemuArgs", () => {
  it("gives the overlay its backing node by name, never from its header", () => {
    const args = qemuArgs(input({}));
    const blockdevs = args.flatMap((arg, i) =>
      args[i - 1] === "-blockdev" ? [JSON.parse(arg) as Record<string, unknown>] : [],
    );
    assert.deepEqual(blockdevs.at(-1), {
      driver: "qcow2",
      file: "disk-file",
      backing: "base",
      "node-name": "disk",
    });
    assert.equal(
      blockdevs.filter((b) => b["read-only"] === true).length,
      2,
      "the base is read-only",
    );
    assert.ok(
      !args.includes("-drive"),
      "no -drive: it would open the backing file the header names",
    );
  });

  it("doubles commas in paths QEMU's option syntax reads", () => {
    assert.equal(escape("/a,b,,c"), "/a,,b,,,,c");
    const args = qemuArgs(
      input(
        { mounts: [{ source: "/v/a,b", target: "/x", name: "v" }] },
        {
          paths: { qmpSocket: "/s,1/qmp.sock", environmentFile: "/s,1/environment" },
        },
      ),
    );
    assert.ok(args.includes("unix:/s,,1/qmp.sock,server=on,wait=off"));
    assert.ok(args.includes("name=opt/town/environment,file=/s,,1/environment"));
    assert.ok(args.some((a) => a.startsWith("local,path=/v/a,,b,mount_tag=v,")));
  });

  it("rounds memory up to whole MiB", () => {
    const args = qemuArgs(input({ machine: { ...machine, memoryBytes: 100 * MIB + 1 } }));
    assert.equal(args[args.indexOf("-m") + 1], "101");
  });

  it("refuses what QEMU cannot take or should not be given", () => {
    const cases: [QemuArgsInput, RegExp][] = [
      [input({ kind: "container" }), /not a VM/],
      [{ ...input({}), workload: { ...vm, kind: "vm", machine: undefined as never } }, /not a VM/],
      [input({ command: ["sh"] }), /no entrypoint or command/],
      [input({ name: "bad,name" }), /not a workload name/],
      [input({ machine: { ...machine, memoryBytes: 1024 } }), /bytes of memory/],
      [input({ machine: { ...machine, memoryBytes: 1.5 } }), /bytes of memory/],
      [input({ machine: { ...machine, cpus: 0 } }), /0 CPUs/],
      [input({ machine: { ...machine, cpus: 1000 } }), /1000 CPUs/],
      [
        input({ machine: { ...machine, disk: "relative.qcow2" } }),
        /not a normalized absolute path/,
      ],
      [
        input({ machine: { ...machine, disk: "/a/../etc/shadow" } }),
        /not a normalized absolute path/,
      ],
      [input({ machine: { ...machine, disk: "/a/b\nc" } }), /control character/],
      [input({ machine: { ...machine, disk: "/a/b\tc" } }), /control character/],
      [input({}, { baseImage: "/images/x\u0085y" }), /control character/],
      [input({ env: { "BAD-NAME": "x" } }), /not an environment variable name/],
      [input({ env: { GOOD: "two\nlines" } }), /control character/],
      [
        input({ ports: [{ hostAddress: "::1", hostPort: 80, port: 80, protocol: "tcp" }] }),
        /not an IPv4 address/,
      ],
      [
        input({ ports: [{ hostAddress: "localhost", hostPort: 80, port: 80, protocol: "tcp" }] }),
        /not an IPv4 address/,
      ],
      [
        input({ ports: [{ hostAddress: "0.0.0.0", hostPort: 0, port: 80, protocol: "tcp" }] }),
        /not a port number/,
      ],
      [
        input({ ports: [{ hostAddress: "0.0.0.0", hostPort: 80, port: 70000, protocol: "tcp" }] }),
        /not a port number/,
      ],
      [input({ mounts: [{ source: "/v", target: "/x" }] }), /has no name/],
      [input({ mounts: [{ source: "/v", target: "/x", name: "a,b" }] }), /not a 9p mount tag/],
      [
        input({ mounts: [{ source: "/v", target: "/x", name: "x".repeat(32) }] }),
        /not a 9p mount tag/,
      ],
      [
        input({
          mounts: [
            { source: "/v", target: "/x", name: "same" },
            { source: "/w", target: "/y", name: "same" },
          ],
        }),
        /two mounts are named same/,
      ],
      [
        input({}, { paths: { qmpSocket: `/${"d".repeat(100)}/qmp.sock`, environmentFile: "/e" } }),
        /longer than a unix socket path/,
      ],
    ];
    for (const [value, pattern] of cases) {
      const error = argsError(value);
      assert.equal(error.code, "invalid_argument");
      assert.match(error.message, pattern);
    }
  });
});

describe("environmentFile", () => {
  it("writes sorted KEY=VALUE lines, tabs kept", () => {
    assert.equal(environmentFile({ B: "2", A: "x=y\tz", C: "" }), "A=x=y\tz\nB=2\nC=\n");
    assert.equal(environmentFile({}), "");
  });
});
