#!/usr/bin/env bash
# Builds the Town OS stick image, dist/town-os.img, as root on Debian 12:
#   1. the project (daemon, web, CLI) and its production node_modules;
#   2. a Debian bookworm root file system (mmdebstrap, minbase) with the
#      system programs the daemon runs, Node.js 20, the project and os/rootfs;
#   3. its squashfs (TOWN_OS_SQUASHFS_COMP: zstd, the default, at level
#      TOWN_OS_ZSTD_LEVEL (15), or xz);
#   4. a GPT disk image with one FAT partition, made without mounting
#      anything (mkfs.vfat on a file, mtools): syslinux boots it with BIOS,
#      GRUB with UEFI; /live holds the kernel, the initramfs and the squashfs,
#      which live-boot mounts and town-os-to-ram then moves into RAM.
# Prints each stage's time and the sizes of the root file system, squashfs and
# image. Work files are in dist/os-work (kept for inspection).
set -euo pipefail
cd "$(dirname "$0")/.."
readonly repo=$PWD
readonly work=$repo/dist/os-work
readonly out=$repo/dist/town-os.img
readonly comp=${TOWN_OS_SQUASHFS_COMP:-zstd}
readonly zstd_level=${TOWN_OS_ZSTD_LEVEL:-15}
readonly mirror=http://deb.debian.org/debian
readonly security_mirror=http://deb.debian.org/debian-security
readonly nodesource=https://deb.nodesource.com/node_20.x
# What the daemon runs (Podman with runc, netavark and aardvark-dns; Caddy,
# dnsmasq, Prometheus, Node Exporter, QEMU, btrfs, restic), what boots the
# image into RAM (kernel, live-boot), and what the OS layer itself uses
# (systemd-networkd and resolved, the console's curl, free and ip; an SSH
# server for root with the keys an administrator gives, and sftp for scp).
packages=(linux-image-amd64 initramfs-tools live-boot systemd-sysv systemd-resolved dbus udev kmod
  podman runc netavark aardvark-dns iptables conmon haproxy caddy dnsmasq-base prometheus
  prometheus-node-exporter qemu-system-x86 qemu-utils btrfs-progs restic
  openssh-server openssh-sftp-server mtools
  ca-certificates libstdc++6 xz-utils bzip2 zstd curl iproute2 procps util-linux)
# Left out of the image: Prometheus's web pages' time zone data (218 MB; the
# daemon reads Prometheus's API only), and kernel drivers a home server has no
# use for (sound, TV and cameras, Wi-Fi and its stack, Bluetooth, InfiniBand,
# industrial sensors, staging). dpkg sees the kernel's modules under
# /lib/modules. Kept from those trees: what the kept drivers need (graphics
# drivers use the HDMI-CEC and remote-control cores, some laptops' ACPI
# drivers the sound core and industrial I/O); os/customize.sh checks that no
# display, network, disk or file system driver lost a dependency.
module_excludes=('sound/*' 'drivers/media/*' 'drivers/net/wireless/*' 'net/wireless/*' 'net/mac80211/*'
  'net/bluetooth/*' 'drivers/bluetooth/*' 'drivers/infiniband/*' 'drivers/iio/*' 'drivers/staging/*')
module_includes=('sound/core/*' 'sound/soundcore.ko' 'drivers/media/cec/*' 'drivers/media/rc/rc-core.ko'
  'drivers/iio/industrialio.ko')
# The kernel's boot command line; a box's owner adds town.data=/dev/DISK once
# to make a blank disk the data pool (see os/rootfs/usr/local/sbin/town-os-data).
# `quiet`: the kernel's messages would go out of the serial port at 115200
# baud, and the boot waits for them; errors still show. No `toram`: live-boot
# would copy the squashfs into RAM before anything else starts;
# town-os-to-ram.service copies it once the daemon is up. `live-media`: the
# stick by its label, so live-boot does not probe every drive (CD drives
# included) and mount the owner's disks looking for it. Transparent huge
# pages on request (`madvise`, not Debian's `always`): a 2 MB page zeroed and
# held for each large mapping a program touches costs a small box RAM, and
# databases run in containers advise against it. `nonetworking`: live-boot
# neither writes an ifupdown configuration (systemd-networkd runs the
# network) nor, with it, triggers every device's udev events again and waits
# for them, 2-3 s of a boot under QEMU without KVM.
readonly cmdline="boot=live live-media=/dev/disk/by-label/TOWNOS nonetworking transparent_hugepage=madvise quiet console=ttyS0,115200 console=tty0"

[ "$(id -u)" -eq 0 ] || { echo "build: run me as root (mmdebstrap, chroot)" >&2; exit 1; }
case "$comp" in xz | zstd) ;; *) echo "build: TOWN_OS_SQUASHFS_COMP is xz or zstd" >&2; exit 1 ;; esac
bash os/setup-build.sh

started=$SECONDS
stage() {
  echo "build: $1: $((SECONDS - started)) s"
  started=$SECONDS
}
mib() { echo $(($(du -sb "$1" | cut -f1) / 1024 / 1024)); }

# --- 1. the project, with only its production dependencies -----------------
npm run --silent build
app=$work/app
rm -rf "$app"
mkdir -p "$app/packages"
cp -a package.json package-lock.json town "$app/"
for package in packages/*/; do
  mkdir -p "$app/$package"
  cp -a "$package/package.json" "$package/dist" "$app/$package"
  [ ! -d "$package/node_modules" ] || cp -a "$package/node_modules" "$app/$package"
done
# The checkout's node_modules, pruned offline: the native modules
# (better-sqlite3, argon2) stay the ones built and tested here.
cp -a node_modules "$app/"
(cd "$app" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error)
# The command line and daemon as one file (and the repository worker, which
# the daemon starts from beside itself): Node loads one file instead of about
# a thousand modules, half the start-up CPU time, and much more under QEMU
# without KVM. The command line and daemon are CommonJS (town.cjs), run by
# packages/cli/src/code-cache-main.ts as main.js with V8's code cache (made in
# the image's root file system by os/customize.sh, with its own Node); the worker
# stays an ES module. The native modules stay in node_modules; require() is
# given to the CommonJS dependencies bundled into the worker.
bundle=(--bundle --platform=node --target=node20 --outdir="$app/packages/cli/dist" --allow-overwrite
  --external:better-sqlite3 --external:@node-rs/argon2 --log-level=warning)
node_modules/.bin/esbuild packages/cli/dist/main.js "${bundle[@]}" --format=cjs --entry-names=town \
  --out-extension:.js=.cjs --define:import.meta.url=bundleUrl \
  --banner:js="const bundleUrl = require('node:url').pathToFileURL(__filename).href;" \
  --log-override:empty-import-meta=silent
node_modules/.bin/esbuild packages/daemon/dist/catalog/repository-worker.js "${bundle[@]}" --format=esm \
  --banner:js="import { createRequire as bundleCreateRequire } from 'node:module'; const require = bundleCreateRequire(import.meta.url);"
cp packages/cli/dist/code-cache-main.js "$app/packages/cli/dist/main.js"
stage "project (build, production node_modules: $(mib "$app") MB)"

# --- 2. the root file system --------------------------------------------------
# Node.js 20 from NodeSource's apt repository (where this machine's comes
# from) when it answers; else this machine's own node binary is copied in.
sources=("deb $mirror bookworm main" "deb $mirror bookworm-updates main"
  "deb $security_mirror bookworm-security main")
if curl -fsS --max-time 10 -o /dev/null "$nodesource/dists/nodistro/Release"; then
  node_from=nodesource
  sources+=("deb [signed-by=/usr/share/keyrings/nodesource.gpg] $nodesource nodistro main")
  packages+=(nodejs)
else
  node_from="host ($(command -v node), $(node --version))"
  echo "build: $nodesource does not answer: copying this machine's node into the image"
fi
rootfs=$work/rootfs
rm -rf "$rootfs"
# The image's version: the build's day and the commit, shown on the dashboard (/etc/town-os-release).
version="$(date -u +%Y.%m.%d)-$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "build: image version $version"
# The initramfs settings go in before the kernel's package makes the initramfs.
hooks=(--essential-hook="cp -a '$repo/os/rootfs/etc/initramfs-tools' \"\$1/etc/\"")
# Node first: os/customize.sh runs it in the root file system (the code cache).
[ "$node_from" = nodesource ] || hooks+=(--customize-hook="install -m 755 '$(command -v node)' \"\$1/usr/bin/node\"")
hooks+=(--customize-hook="bash '$repo/os/customize.sh' \"\$1\" '$app' '$version'")
# [ "$node_from" = nodesource ] needs its key inside the chroot for apt's later runs.
[ "$node_from" != nodesource ] || hooks=(--setup-hook="mkdir -p \"\$1/usr/share/keyrings\" && cp /usr/share/keyrings/nodesource.gpg \"\$1/usr/share/keyrings/\"" "${hooks[@]}")
mmdebstrap --mode=root --variant=minbase --components=main \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/javascript/moment-timezone/*' \
  "${module_excludes[@]/#/--dpkgopt=path-exclude=/lib/modules/*/kernel/}" \
  "${module_includes[@]/#/--dpkgopt=path-include=/lib/modules/*/kernel/}" \
  "${hooks[@]}" \
  bookworm "$rootfs" "${sources[@]}"
# mmdebstrap leaves its own /etc/hostname and /etc/resolv.conf out of the
# image: these are the box's.
cp os/rootfs/etc/hostname os/rootfs/etc/hosts "$rootfs/etc/"
ln -sf /run/systemd/resolve/resolv.conf "$rootfs/etc/resolv.conf"
stage "root file system (mmdebstrap, Node.js from $node_from)"

# --- 3. squashfs --------------------------------------------------------------
squashfs=$work/filesystem.squashfs
rm -f "$squashfs"
# The kernel and initramfs boot from the FAT partition: not copied twice.
comp_options=()
[ "$comp" != zstd ] || comp_options=(-Xcompression-level "$zstd_level")
mksquashfs "$rootfs" "$squashfs" -comp "$comp" "${comp_options[@]}" -noappend -quiet -no-progress \
  -wildcards -e 'boot/vmlinuz*' 'boot/initrd.img*'
stage "squashfs ($comp)"

# --- 4. the stick image -------------------------------------------------------
kernel=$(ls "$rootfs"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$rootfs/boot/initrd.img-${kernel##*/vmlinuz-}
efi=$work/BOOTX64.EFI
cat >"$work/grub-embedded.cfg" <<'CFG'
search --no-floppy --set=root --file /town-os.stick
set prefix=($root)/boot/grub
configfile ($root)/boot/grub/grub.cfg
CFG
grub-mkstandalone -O x86_64-efi -o "$efi" --modules="part_gpt part_msdos fat search configfile linux normal" \
  --locales= --themes= --fonts= "boot/grub/grub.cfg=$work/grub-embedded.cfg"
# The boot menus: this image in the first slot (/live); an update fills the
# second (/live-b) and makes it the first entry (town-os-update).
bash os/rootfs/usr/local/sbin/town-os-boot-menu "$work" "$cmdline" live "$version"
cp "$rootfs/etc/town-os-release" "$work/town-os-release"
# What GRUB's embedded config finds the stick by; no update touches it.
echo "Town OS stick: the boot menus and the image slots /live and /live-b" >"$work/town-os.stick"
# The FAT partition: room for two images (the running one and an update, or
# the previous one), the size of this one each with a fifth to grow, and slack.
payload_mib=$((($(du -cb "$kernel" "$initrd" "$squashfs" | tail -1 | cut -f1) >> 20) + 1))
fat_mib=$((2 * (payload_mib + payload_mib / 5) + 16))
fat=$work/fat.img
rm -f "$fat"
# Hidden sectors = the partition's start (1 MiB), which syslinux reads to find itself.
mkfs.vfat -F 32 -n TOWNOS -h 2048 -C "$fat" $((fat_mib * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$fat" ::/live ::/syslinux ::/boot ::/boot/grub ::/EFI ::/EFI/BOOT
mcopy -i "$fat" "$kernel" ::/live/vmlinuz
mcopy -i "$fat" "$initrd" ::/live/initrd.img
mcopy -i "$fat" "$squashfs" ::/live/filesystem.squashfs
mcopy -i "$fat" "$work/town-os-release" ::/live/town-os-release
mcopy -i "$fat" "$work/town-os.stick" ::/town-os.stick
mcopy -i "$fat" /usr/lib/syslinux/modules/bios/menu.c32 /usr/lib/syslinux/modules/bios/libutil.c32 ::/syslinux/
mcopy -i "$fat" "$work/syslinux.cfg" ::/syslinux/syslinux.cfg
mcopy -i "$fat" "$work/grub.cfg" ::/boot/grub/grub.cfg
mcopy -i "$fat" "$efi" ::/EFI/BOOT/BOOTX64.EFI
syslinux --directory /syslinux --install "$fat"
# GPT: the FAT partition is the EFI system partition, and bootable for
# syslinux's GPT MBR (legacy BIOS bootable attribute).
mkdir -p dist
rm -f "$out"
truncate -s $(((fat_mib + 2) * 1024 * 1024)) "$out"
sfdisk --quiet "$out" <<PART
label: gpt
start=2048, size=$((fat_mib * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="TOWNOS", attrs="LegacyBIOSBootable"
PART
dd if=/usr/lib/syslinux/mbr/gptmbr.bin of="$out" bs=440 count=1 conv=notrunc status=none
dd if="$fat" of="$out" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$fat"
stage "image (FAT, syslinux, GRUB)"

echo "rootfs: $(mib "$rootfs") MB"
echo "squashfs: $(mib "$squashfs") MB ($comp)"
echo "image: $(mib "$out") MB ($out)"
