import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  initramfsEntries,
  initScript,
  moduleLoadOrder,
  moduleName,
  syslinuxConfig,
} from "./guest.js";

// The shape of a real modules.dep (kernel 6.1, as depmod writes it: every module a module needs).
const MODULES_DEP = [
  "kernel/drivers/virtio/virtio.ko:",
  "kernel/drivers/virtio/virtio_ring.ko:",
  "kernel/net/core/failover.ko:",
  "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko",
  "kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko",
  "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
  "kernel/drivers/acpi/button.ko:",
  "kernel/drivers/char/hw_random/rng-core.ko:",
  "",
].join("\n");
const BUILTIN = "kernel/drivers/input/evdev.ko\nkernel/drivers/tty/serial/8250/8250.ko\n";

describe("moduleLoadOrder", () => {
  it("loads each module after what it depends on, and nothing built in or unasked", () => {
    const order = moduleLoadOrder(MODULES_DEP, BUILTIN, ["virtio_net", "virtio_blk", "evdev"]);
    assert.deepEqual(order, [
      "kernel/net/core/failover.ko",
      "kernel/drivers/virtio/virtio.ko",
      "kernel/drivers/virtio/virtio_ring.ko",
      "kernel/drivers/net/net_failover.ko",
      "kernel/drivers/block/virtio_blk.ko",
      "kernel/drivers/net/virtio_net.ko",
    ]);
  });

  it("follows dependencies a modules.dep lists only directly", () => {
    const direct = "a.ko: b.ko\nb.ko: c.ko\nc.ko:\n";
    assert.deepEqual(moduleLoadOrder(direct, "", ["a"]), ["c.ko", "b.ko", "a.ko"]);
  });

  it("fails for a required module the kernel lacks and leaves out an optional one", () => {
    assert.throws(
      () => moduleLoadOrder(MODULES_DEP, BUILTIN, ["qemu_fw_cfg"]),
      /no module qemu_fw_cfg/,
    );
    assert.deepEqual(moduleLoadOrder(MODULES_DEP, BUILTIN, ["button"], ["qemu_fw_cfg"]), [
      "kernel/drivers/acpi/button.ko",
    ]);
  });

  it("refuses compressed modules, cycles and dependencies modules.dep does not list", () => {
    assert.throws(() => moduleLoadOrder("a.ko.xz:\n", "", ["a"]), /compressed/);
    assert.throws(
      () => moduleLoadOrder("a.ko: b.ko\nb.ko: a.ko\n", "", ["a"]),
      /depend on each other/,
    );
    assert.throws(() => moduleLoadOrder("a.ko: b.ko\n", "", ["a"]), /needs b/);
  });

  it("names modules as the kernel does", () => {
    assert.equal(moduleName("kernel/drivers/char/hw_random/rng-core.ko"), "rng_core");
    assert.equal(moduleName("kernel/x/virtio_net.ko.xz"), "virtio_net");
  });
});

describe("the guest's boot files", () => {
  it("puts the state region's sector on the kernel command line with the serial console", () => {
    const config = syslinuxConfig(24576);
    assert.match(config, /^ {2}APPEND console=ttyS0,115200 quiet town\.state=24576$/m);
    assert.match(config, /^DEFAULT town$/m);
  });

  it("makes an initramfs with a console, busybox's applets, the modules in order and /init", () => {
    const entries = initramfsEntries({
      busybox: Buffer.from("ELF"),
      applets: ["busybox", "sh", "httpd", "../evil", "["],
      modules: [
        { name: "virtio", data: Buffer.from("1") },
        { name: "virtio_blk", data: Buffer.from("2") },
      ],
      pages: [["version", "2\n"]],
    });
    const byPath = new Map(entries.map((entry) => [entry.path, entry]));
    assert.deepEqual(byPath.get("dev/console"), {
      type: "character-device",
      path: "dev/console",
      major: 5,
      minor: 1,
    });
    assert.deepEqual(byPath.get("bin/sh"), { type: "symlink", path: "bin/sh", target: "busybox" });
    assert.ok(byPath.has("bin/["));
    assert.ok(!byPath.has("bin/../evil"), "an applet name that is no file name");
    assert.equal(byPath.get("bin/busybox")?.type, "file");
    const init = byPath.get("init");
    assert.ok(init?.type === "file" && init.mode === 0o755);
    assert.match(String(init.data), /for module in virtio virtio_blk; do/);
    const page = byPath.get("www/version");
    assert.ok(page?.type === "file" && page.data === "2\n");
  });

  it("refuses a module name that would be shell text", () => {
    assert.throws(() => initScript(["virtio; reboot"]), /bad module name/);
  });
});
