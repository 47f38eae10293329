#!/usr/bin/env bash
# Sets up a Debian 12 machine (as root) to build and run Town OS from this
# checkout: system packages, Node.js 20+, npm dependencies, and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

need_node_major=20
# Debian packages: a C++ toolchain to build better-sqlite3 when npm has no
# prebuilt binary; btrfs-progs, xz-utils and bzip2 for storage (volumes,
# quotas, archives); haproxy and caddy (HTTPS ingress: HAProxy serves, Caddy
# keeps the certificates) and dnsmasq-base (DNS). What only the tests need is
# installed by scripts/setup-tests.sh.
debian_packages=(python3 make g++ ca-certificates btrfs-progs xz-utils bzip2 haproxy caddy dnsmasq-base)
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
# shellcheck source=lib/debian-packages.sh
source scripts/lib/debian-packages.sh
install_debian_packages
# Virtual machines and their disk images, and monitoring (Prometheus, Node
# Exporter), and backups (restic); without the recommends, which add a desktop's GUI libraries.
debian_packages=(qemu-system-x86 qemu-utils prometheus prometheus-node-exporter restic)
install_debian_packages --no-install-recommends
# The daemon runs HAProxy, Prometheus and Node Exporter itself (its config,
# its ports, supervised): Debian's own services would take the same ports.
if [ -d /run/systemd/system ]; then
  systemctl disable --now haproxy.service prometheus.service prometheus-node-exporter.service >/dev/null 2>&1 || true
fi

if [ "$(node_major)" -lt "$need_node_major" ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Node.js from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  if [ "$(node_major)" -lt "$need_node_major" ]; then
    echo "setup: Town OS needs Node.js $need_node_major or newer (found: $(node --version 2>/dev/null || echo none))" >&2
    exit 1
  fi
fi

echo "setup: installing npm dependencies"
npm ci --no-audit --no-fund --loglevel=error
echo "setup: building"
npm run --silent build
# npm links a workspace's bin only once its target exists: link town now that it is built.
npm rebuild --silent @townos/cli
echo "setup: done ($(node --version), ./town ready)"
