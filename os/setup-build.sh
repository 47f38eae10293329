#!/usr/bin/env bash
# Installs the Debian packages that build the Town OS stick image (os/build.sh)
# and boot it under QEMU (os/test.sh). Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../scripts/lib/debian-packages.sh
source scripts/lib/debian-packages.sh
# mmdebstrap: the root file system; squashfs-tools: its compressed copy;
# fdisk (sfdisk), mtools, dosfstools: the partitioned image and its FAT file
# system without mounting anything; syslinux: BIOS boot; grub: UEFI boot.
debian_packages=(mmdebstrap squashfs-tools fdisk mtools dosfstools syslinux syslinux-common
  grub-efi-amd64-bin grub-common)
install_debian_packages --no-install-recommends
# The test's virtual machine, its disks and its UEFI firmware; ssh to log in
# to it, and a registry that hands it an app's image.
debian_packages=(qemu-system-x86 qemu-utils ovmf curl openssh-client docker-registry)
install_debian_packages --no-install-recommends
