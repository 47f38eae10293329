#!/usr/bin/env bash
# Installs (as root, on Debian 12) the Debian packages only the tests use, on
# top of scripts/setup.sh: a box that only runs Town OS does without them.
# - git: the tests' package repositories, served by git http-backend;
# - miniupnpd and nftables: the tests' router and its rules; dnsutils and
#   curl: the tests' DNS and HTTPS clients; iproute2: their namespaces;
# - chromium and a font: the dashboard's browser tests (Playwright drives it);
# - docker-registry: a registry to pull images from;
# - redis-tools and postgresql-15: programs the public-repository test copies
#   into its stand-in images (no PostgreSQL cluster is made on the host);
# - syslinux, syslinux-common, mtools and dosfstools: the VM tests' boot disk,
#   a FAT file system made and filled without mounting it; busybox-static
#   (setup-podman.sh installs it too): the guest's userland, and depmod here.
# - openssh-client: ssh-keygen makes the keys the SSH key tests give the daemon.
# - wrk: the load generator of `npm run bench` (the ingress and API figures).
# Then fetches (not installs) the kernel package linux-image-amd64 points at,
# unpacked into /var/cache/town-tests/kernel: the VM tests' guest boots it.
set -euo pipefail
cd "$(dirname "$0")/.."
debian_packages=(git miniupnpd nftables dnsutils curl iproute2 chromium fonts-dejavu-core
  docker-registry redis-tools postgresql-15 syslinux syslinux-common mtools dosfstools
  busybox-static openssh-client wrk)
readonly kernel_cache=/var/cache/town-tests/kernel
# Only the PostgreSQL programs are wanted: no "main" cluster running on the host.
if ! dpkg-query -W -f='${Status}' postgresql-15 2>/dev/null | grep -q "ok installed"; then
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/town.conf
fi
# shellcheck source=lib/debian-packages.sh
source scripts/lib/debian-packages.sh
install_debian_packages

# The guest kernel: unpacked with dpkg-deb, so the host's boot and modules stay
# untouched. One kernel in the cache, replaced when linux-image-amd64 moves on.
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[^ <>]*-amd64\)$/\1/p' | head -n 1
}
download_kernel() { (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$kernel_package"); }
kernel_package=$(kernel_package)
if [ -z "$kernel_package" ]; then
  apt-get update -qq
  kernel_package=$(kernel_package)
fi
[ -n "$kernel_package" ] || {
  echo "$(basename "$0"): apt-cache names no kernel package for linux-image-amd64" >&2
  exit 1
}
if [ -e "$kernel_cache/boot/vmlinuz-${kernel_package#linux-image-}" ] &&
  [ -e "$kernel_cache/lib/modules/${kernel_package#linux-image-}/modules.dep" ]; then
  echo "$(basename "$0"): guest kernel ${kernel_package#linux-image-} already in $kernel_cache"
else
  mkdir -p "$(dirname "$kernel_cache")"
  # Beside the cache, so that putting it in place is a rename.
  work=$(mktemp -d "$kernel_cache.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # (apt's sandbox user could not write into root's temporary directory.)
  if ! download_kernel 2>/dev/null; then
    # Package lists older than the archive name a version it no longer has.
    apt-get update -qq
    kernel_package=$(kernel_package)
    download_kernel
  fi
  dpkg-deb -x "$work"/"$kernel_package"_*.deb "$work/root"
  kernel_deb_version=$(dpkg-deb -f "$work"/"$kernel_package"_*.deb Version)
  # modules.dep is made on install, not shipped: the guest's build reads it.
  busybox depmod -b "$work/root" "${kernel_package#linux-image-}"
  rm -rf "$kernel_cache"
  mv "$work/root" "$kernel_cache"
  rm -rf "$work"
  trap - EXIT
  echo "$(basename "$0"): unpacked $kernel_package $kernel_deb_version into $kernel_cache"
fi
