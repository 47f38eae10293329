#!/usr/bin/env bash
# Sets up a Debian 12 machine (as root) to build and run Town OS from this
# checkout: system packages, Node.js 20+, npm dependencies, and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

need_node_major=20
# Debian packages: git for the tests' repositories (served by git http-backend),
# and a C++ toolchain to build better-sqlite3 when npm has no prebuilt binary.
# btrfs-progs, xz-utils and bzip2 for storage (volumes, quotas, archives).
# Networking: caddy (HTTPS ingress), dnsmasq-base (DNS), miniupnpd and
# nftables (the tests' router and its rules), dnsutils and curl (the tests'
# clients), iproute2 (namespaces).
# chromium and a font for the dashboard's browser tests (Playwright drives it),
# docker-registry as the tests' registry to pull images from; redis-tools and
# postgresql-15, whose programs the public-repository test copies into its
# stand-in images (no cluster is made on the host for them).
debian_packages=(git python3 make g++ ca-certificates btrfs-progs xz-utils bzip2
  caddy dnsmasq-base miniupnpd nftables dnsutils curl iproute2 chromium fonts-dejavu-core
  docker-registry redis-tools postgresql-15)
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]}"
    # Only the PostgreSQL programs are wanted: no "main" cluster running on the host.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/town.conf
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: please install these Debian packages: ${missing[*]}" >&2
    exit 1
  fi
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
