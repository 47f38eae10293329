#!/usr/bin/env bash
# Installs (as root, on Debian 12) the Debian packages only the tests use, on
# top of scripts/setup.sh: a box that only runs Town OS does without them.
# - git: the tests' package repositories, served by git http-backend;
# - miniupnpd and nftables: the tests' router and its rules; dnsutils and
#   curl: the tests' DNS and HTTPS clients; iproute2: their namespaces;
# - chromium and a font: the dashboard's browser tests (Playwright drives it);
# - docker-registry: a registry to pull images from;
# - redis-tools and postgresql-15: programs the public-repository test copies
#   into its stand-in images (no PostgreSQL cluster is made on the host).
set -euo pipefail
cd "$(dirname "$0")/.."
debian_packages=(git miniupnpd nftables dnsutils curl iproute2 chromium fonts-dejavu-core
  docker-registry redis-tools postgresql-15)
# Only the PostgreSQL programs are wanted: no "main" cluster running on the host.
if ! dpkg-query -W -f='${Status}' postgresql-15 2>/dev/null | grep -q "ok installed"; then
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/town.conf
fi
# shellcheck source=lib/debian-packages.sh
source scripts/lib/debian-packages.sh
install_debian_packages
