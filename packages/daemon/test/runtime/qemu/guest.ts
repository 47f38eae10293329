/**
 * Test helper: a tiny bootable disk image for the VM tests, made from Debian
 * packages on this machine (nothing downloaded, nothing prebuilt):
 *
 *   - a FAT file system (mkfs.fat on an image file, no mounting) made
 *     bootable with syslinux, holding the kernel of the Debian kernel package
 *     scripts/setup-tests.sh unpacks, an initramfs, and syslinux.cfg;
 *   - the initramfs: busybox-static with its applets, the kernel modules the
 *     guest needs (virtio disk and network, fw_cfg, power button, evdev), and
 *     `/init` (see `initScript`): network 10.0.2.15/24 via 10.0.2.2 (QEMU's
 *     user networking), a marker written on first boot and a boot count in
 *     the state region, busybox httpd on port 80, and a graceful power-off on
 *     the ACPI power button (QMP `system_powerdown`);
 *   - the state region: STATE_BYTES right after the FAT file system, the
 *     guest's persistent "disk file". It sits at a fixed offset, not at the
 *     disk's end, so that a disk grown later keeps it.
 *
 * Every step prints `town-guest: …` on the serial console (ttyS0).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  truncate,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { newcArchive, type NewcEntry } from "./newc.js";

const run = promisify(execFile);

/** A directory for `buildTestGuest` that every test process shares (images are named by their inputs). */
export const TEST_GUEST_DIR = join(tmpdir(), "town-test-guest");

/** Where scripts/setup-tests.sh unpacks the guest's kernel package. */
export const TEST_GUEST_KERNEL_DIR = "/var/cache/town-tests/kernel";

/** What `/` of the guest's web server answers. */
export const TEST_GUEST_GREETING = "hello from the town test guest\n";

/** How the marker the guest writes on its first boot begins (a UUID follows). */
export const TEST_GUEST_MARKER_PREFIX = "TOWN-GUEST first-boot ";

/** The QEMU fw_cfg file whose contents the guest serves as `/env`. */
export const TEST_GUEST_FW_CFG_ENVIRONMENT = "opt/town/environment";

/** The state region's size: sector 0 holds the marker, sector 1 the boot count. */
export const STATE_BYTES = 1024 * 1024;

const SECTOR = 512;
const MIB = 1024 * 1024;

/**
 * Modules the guest loads (with what they depend on), unless built in:
 * virtio over PCI for the disk and the network, the power button and evdev
 * for acpid, and fw_cfg (optional: `/env` is then absent).
 */
const REQUIRED_MODULES = ["virtio_pci", "virtio_blk", "virtio_net", "button", "evdev"];
const OPTIONAL_MODULES = ["qemu_fw_cfg"];

export interface TestGuestOptions {
  /** The unpacked kernel package; default TEST_GUEST_KERNEL_DIR. */
  kernelDir?: string;
  /** busybox-static's binary; default /bin/busybox. */
  busybox?: string;
  /**
   * More pages for the guest's web server: file name → content, served as
   * `/<name>` (e.g. `{ version: "2\n" }` to tell two images apart). Names
   * are plain file names; `index.html`, `marker`, `boots` and `env` are the
   * guest's own.
   */
  pages?: Readonly<Record<string, string>>;
}

export interface TestGuest {
  /**
   * A raw disk image, shared by every caller with the same inputs: read it
   * (convert it, put an overlay on it), never boot it directly or write it.
   */
  diskPath: string;
  /** The guest kernel's release, e.g. `6.1.0-57-amd64`. */
  kernelVersion: string;
}

/** Why the guest cannot be built and booted here (for `skip`), or false. */
export function testGuestMissing(options: TestGuestOptions = {}): string | false {
  const kernelDir = options.kernelDir ?? TEST_GUEST_KERNEL_DIR;
  if (!existsSync(join(kernelDir, "boot"))) {
    return `no guest kernel in ${kernelDir} (scripts/setup-tests.sh unpacks it)`;
  }
  const programs = [
    "/usr/bin/qemu-system-x86_64",
    "/usr/bin/qemu-img",
    "/usr/sbin/mkfs.fat",
    "/usr/bin/syslinux",
    "/usr/bin/mcopy",
    options.busybox ?? "/bin/busybox",
  ];
  const absent = programs.find((program) => !existsSync(program));
  return absent === undefined ? false : `${absent} is missing (scripts/setup-tests.sh installs it)`;
}

/**
 * Builds the test guest's disk image into `dir`, or finds it there: the file
 * is named by a hash of every input (kernel, modules, busybox, syslinux,
 * init script, pages), so test files and processes share one build, and a
 * changed input makes a new one. Takes a second or two.
 */
export function buildTestGuest(dir: string, options: TestGuestOptions = {}): Promise<TestGuest> {
  const key = JSON.stringify([dir, options.kernelDir, options.busybox, options.pages]);
  let building = builds.get(key);
  if (!building) {
    building = build(dir, options);
    builds.set(key, building);
    // A failed build is tried again by the next caller.
    building.catch(() => builds.delete(key));
  }
  return building;
}

const builds = new Map<string, Promise<TestGuest>>();

async function build(dir: string, options: TestGuestOptions): Promise<TestGuest> {
  const kernelDir = options.kernelDir ?? TEST_GUEST_KERNEL_DIR;
  const busybox = options.busybox ?? "/bin/busybox";
  const pages = checkedPages(options.pages ?? {});
  const { kernelVersion, vmlinuz } = await findKernel(kernelDir);
  const modulesDir = join(kernelDir, "lib/modules", kernelVersion);
  const modules = moduleLoadOrder(
    await readFile(join(modulesDir, "modules.dep"), "utf8"),
    await readFile(join(modulesDir, "modules.builtin"), "utf8"),
    REQUIRED_MODULES,
    OPTIONAL_MODULES,
  );
  const { stdout: appletList } = await run(busybox, ["--list"]);
  const initrd = gzipSync(
    newcArchive(
      initramfsEntries({
        busybox: await readFile(busybox),
        applets: appletList.split("\n").filter((name) => name !== ""),
        modules: await Promise.all(
          modules.map(async (path) => ({
            name: moduleName(path),
            data: await readFile(join(modulesDir, path)),
          })),
        ),
        pages,
      }),
    ),
  );
  const kernel = await readFile(vmlinuz);
  // Room for both files, syslinux's and the FAT's own.
  const fatBytes = Math.ceil((kernel.length + initrd.length) / MIB + 2) * MIB;
  const config = syslinuxConfig(fatBytes / SECTOR);
  const hash = createHash("sha256");
  for (const part of [kernel, initrd, config, await readFile(SYSLINUX_LOADER)]) {
    hash.update(createHash("sha256").update(part).digest());
  }
  const diskPath = join(dir, `town-test-guest-${hash.digest("hex").slice(0, 16)}.raw`);
  if (existsSync(diskPath)) return { diskPath, kernelVersion };

  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(dir, ".town-test-guest-"));
  try {
    const image = join(work, "disk.raw");
    await writeFile(image, "");
    await truncate(image, fatBytes + STATE_BYTES);
    // A block count (KiB) below the file's size leaves the state region outside the FAT.
    await run("mkfs.fat", ["--invariant", "-n", "TOWNGUEST", image, String(fatBytes / 1024)]);
    await run("syslinux", ["--install", image]);
    await writeFile(join(work, "vmlinuz"), kernel);
    await writeFile(join(work, "initrd.gz"), initrd);
    await writeFile(join(work, "syslinux.cfg"), config);
    const files = ["vmlinuz", "initrd.gz", "syslinux.cfg"].map((name) => join(work, name));
    // The image is no whole disk geometry mtools knows: don't let it refuse.
    await run("mcopy", ["-i", image, ...files, "::"], {
      env: { ...process.env, MTOOLS_SKIP_CHECK: "1" },
    });
    // Another process may have made the same image meanwhile (its files dated a moment apart): either will do.
    await rename(image, diskPath);
    return { diskPath, kernelVersion };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** What syslinux --install copies in; part of the cache key. */
const SYSLINUX_LOADER = "/usr/lib/syslinux/modules/bios/ldlinux.c32";

/** The kernel's release and vmlinuz: exactly one in `kernelDir`/boot. */
async function findKernel(kernelDir: string): Promise<{ kernelVersion: string; vmlinuz: string }> {
  const names = (await readdir(join(kernelDir, "boot"))).filter((name) =>
    name.startsWith("vmlinuz-"),
  );
  if (names.length !== 1 || names[0] === undefined) {
    throw new Error(`expected one vmlinuz-* in ${kernelDir}/boot, found ${names.length}`);
  }
  return {
    kernelVersion: names[0].slice("vmlinuz-".length),
    vmlinuz: join(kernelDir, "boot", names[0]),
  };
}

/** syslinux.cfg: boot the kernel at once, console on the serial port, the state region's sector. */
export function syslinuxConfig(stateSector: number): string {
  return [
    "DEFAULT town",
    "PROMPT 0",
    "TIMEOUT 0",
    "LABEL town",
    "  LINUX vmlinuz",
    "  INITRD initrd.gz",
    // A dotted parameter is a module's: the kernel ignores it, /init reads it from /proc/cmdline.
    `  APPEND console=ttyS0,115200 quiet town.state=${stateSector}`,
    "",
  ].join("\n");
}

const PAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const OWN_PAGES = new Set(["index.html", "marker", "boots", "env"]);

function checkedPages(pages: Readonly<Record<string, string>>): [string, string][] {
  const entries = Object.entries(pages).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name] of entries) {
    if (!PAGE_NAME.test(name) || OWN_PAGES.has(name))
      throw new Error(`test guest: bad page name ${JSON.stringify(name)}`);
  }
  return entries;
}

/** A module's name from its path in modules.dep (`kernel/…/virtio_net.ko` → `virtio_net`). */
export function moduleName(path: string): string {
  return basename(path)
    .replace(/\.ko(\.(xz|zst|gz))?$/, "")
    .replaceAll("-", "_");
}

/**
 * The module files (paths relative to lib/modules/VERSION) to load, in an
 * order where each comes after what it depends on: `required` and `optional`
 * with their dependencies, from modules.dep, less those built in. A required
 * module that is neither a module nor built in is an error, an optional one
 * is left out.
 */
export function moduleLoadOrder(
  modulesDep: string,
  modulesBuiltin: string,
  required: readonly string[],
  optional: readonly string[] = [],
): string[] {
  const builtin = new Set(
    modulesBuiltin
      .split("\n")
      .filter((line) => line !== "")
      .map(moduleName),
  );
  const paths = new Map<string, string>();
  const depends = new Map<string, string[]>();
  for (const line of modulesDep.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const name = moduleName(path);
    paths.set(name, path);
    depends.set(
      name,
      line
        .slice(colon + 1)
        .split(/\s+/)
        .filter((dep) => dep !== "")
        .map(moduleName),
    );
  }
  for (const path of paths.values()) {
    if (/\.ko\.(xz|zst|gz)$/.test(path)) {
      throw new Error(`test guest: ${path} is compressed; busybox insmod wants plain .ko files`);
    }
  }
  // Every module a name needs, itself included (modules.dep may list only direct ones).
  const closures = new Map<string, Set<string>>();
  const closure = (name: string, trail: readonly string[]): Set<string> => {
    const known = closures.get(name);
    if (known) return known;
    if (trail.includes(name))
      throw new Error(`test guest: modules depend on each other: ${[...trail, name].join(" → ")}`);
    const all = new Set<string>([name]);
    for (const dep of depends.get(name) ?? []) {
      if (!paths.has(dep))
        throw new Error(`test guest: ${name} needs ${dep}, which modules.dep does not list`);
      for (const inner of closure(dep, [...trail, name])) all.add(inner);
    }
    closures.set(name, all);
    return all;
  };
  const wanted = new Set<string>();
  for (const [names, needed] of [
    [required, true],
    [optional, false],
  ] as const) {
    for (const raw of names) {
      const name = moduleName(raw);
      if (builtin.has(name)) continue;
      if (!paths.has(name)) {
        if (needed) throw new Error(`test guest: kernel has no module ${name}, nor is it built in`);
        continue;
      }
      for (const inner of closure(name, [])) wanted.add(inner);
    }
  }
  // A module's closure strictly contains each of its dependencies' closures: sorting by size orders them.
  return [...wanted]
    .sort(
      (a, b) =>
        (closures.get(a)?.size ?? 0) - (closures.get(b)?.size ?? 0) || (a < b ? -1 : a > b ? 1 : 0),
    )
    .map((name) => paths.get(name) ?? name);
}

interface InitramfsParts {
  busybox: Uint8Array;
  /** Names from `busybox --list`: each becomes a link to busybox in /bin. */
  applets: readonly string[];
  /** In load order. */
  modules: readonly { name: string; data: Uint8Array }[];
  pages: readonly [string, string][];
}

/** The initramfs's files: busybox and its applets, the modules, /init, the power button's action, the pages. */
export function initramfsEntries(parts: InitramfsParts): NewcEntry[] {
  const directories = [
    "bin",
    "dev",
    "etc",
    "etc/acpi",
    "etc/acpi/PWRF",
    "lib",
    "lib/modules",
    "proc",
    "sys",
    "www",
  ];
  return [
    ...directories.map((path): NewcEntry => ({ type: "directory", path })),
    { type: "directory", path: "tmp", mode: 0o1777 },
    // The kernel opens it for /init's output before /init can mount devtmpfs.
    { type: "character-device", path: "dev/console", major: 5, minor: 1 },
    { type: "file", path: "bin/busybox", data: parts.busybox, mode: 0o755 },
    ...parts.applets
      .filter(
        (name) => name !== "busybox" && /^[\w.[-]+$/.test(name) && name !== "." && name !== "..",
      )
      .map((name): NewcEntry => ({ type: "symlink", path: `bin/${name}`, target: "busybox" })),
    ...parts.modules.map(({ name, data }): NewcEntry => ({
      type: "file",
      path: `lib/modules/${name}.ko`,
      data,
    })),
    {
      type: "file",
      path: "init",
      data: initScript(parts.modules.map(({ name }) => name)),
      mode: 0o755,
    },
    // busybox acpid runs /etc/acpi/<action>/<parameter> for an event; PWRF/00000080 is the power button.
    { type: "file", path: "etc/acpi/PWRF/00000080", data: POWER_BUTTON_ACTION, mode: 0o755 },
    { type: "file", path: "www/index.html", data: TEST_GUEST_GREETING },
    ...parts.pages.map(([name, content]): NewcEntry => ({
      type: "file",
      path: `www/${name}`,
      data: content,
    })),
  ];
}

const POWER_BUTTON_ACTION = `#!/bin/sh
echo "town-guest: power button: syncing and powering off" >/dev/console
sync
poweroff -f
`;

/** /init: PID 1 of the guest, a busybox shell script; `modules` are loaded in this order. */
export function initScript(modules: readonly string[]): string {
  for (const name of modules) {
    if (!/^\w+$/.test(name)) throw new Error(`test guest: bad module name ${JSON.stringify(name)}`);
  }
  return `#!/bin/sh
# /init of the town test guest: packages/daemon/test/runtime/qemu/guest.ts.
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
say() { echo "town-guest: $*"; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
say "init started, kernel $(uname -r)"

for module in ${modules.join(" ")}; do
  insmod "/lib/modules/$module.ko" || say "could not load module $module"
done
say "modules loaded"

# Waits up to 10 s for a path: drivers find their devices in the background.
wait_for() {
  tries=0
  while [ ! -e "$1" ]; do
    tries=$((tries + 1))
    [ "$tries" -le 100 ] || return 1
    sleep 0.1
  done
}

# The state region's first sector, from the kernel command line (syslinux.cfg).
state=
for word in $(cat /proc/cmdline); do
  case "$word" in town.state=*) state=\${word#town.state=} ;; esac
done
case "$state" in '' | *[!0-9]*) state= ;; esac

# A sector's first line, printable characters only (the disk may hold anything).
read_sector() { dd if=/dev/vda bs=512 skip="$1" count=1 2>/dev/null | head -n 1 | tr -cd 'A-Za-z0-9 ._-'; }
# fsync: sync(2) flushes no disk cache, and a QEMU killed before its own flush loses the write.
write_sector() { printf '%s\\n' "$2" | dd of=/dev/vda bs=512 seek="$1" count=1 conv=sync,fsync 2>/dev/null; }

if [ -z "$state" ]; then
  say "no town.state on the kernel command line: no marker, no boot count"
elif ! wait_for /dev/vda; then
  say "no disk /dev/vda: no marker, no boot count"
else
  marker=$(read_sector "$state")
  case "$marker" in
    "${TEST_GUEST_MARKER_PREFIX}"*)
      boots=$(read_sector $((state + 1)))
      say "marker found: $marker"
      ;;
    *)
      marker="${TEST_GUEST_MARKER_PREFIX}$(cat /proc/sys/kernel/random/uuid)"
      boots=0
      write_sector "$state" "$marker"
      say "first boot: marker written: $marker"
      ;;
  esac
  case "$boots" in '' | *[!0-9]*) boots=0 ;; esac
  boots=$((boots + 1))
  write_sector $((state + 1)) "$boots"
  sync
  printf '%s\\n' "$marker" >/www/marker
  printf '%s\\n' "$boots" >/www/boots
  say "boot $boots"
fi

ip link set lo up
if wait_for /sys/class/net/eth0; then
  ip addr add 10.0.2.15/24 dev eth0
  ip link set eth0 up
  ip route add default via 10.0.2.2
  say "network up: eth0 10.0.2.15/24 via 10.0.2.2"
else
  say "no network device eth0"
fi

environment=/sys/firmware/qemu_fw_cfg/by_name/${TEST_GUEST_FW_CFG_ENVIRONMENT}/raw
if [ -r "$environment" ]; then
  cat "$environment" >/www/env
  say "environment from fw_cfg: $(wc -c </www/env) bytes"
elif [ -d /sys/firmware/qemu_fw_cfg ]; then
  say "fw_cfg has no ${TEST_GUEST_FW_CFG_ENVIRONMENT}"
else
  say "no fw_cfg"
fi

# acpid opens the input devices there are when it starts: the power button's first.
if wait_for /dev/input/event0; then
  acpid -f -c /etc/acpi -l /dev/null &
  say "acpid ready: the power button powers off"
else
  say "no input device: the power button does nothing"
fi

httpd -f -p 80 -h /www &
say "http ready on port 80"

while :; do sleep 3600; done
`;
}
