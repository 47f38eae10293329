#!/usr/bin/env bash
# Sets up and starts Town OS with its embedded defaults: state in
# /var/lib/town (TOWN_DATA_DIR), the dashboard and API on port 5309
# (TOWN_LISTEN), the HTTPS ingress on 443 and 80 (TOWN_HTTPS_PORT,
# TOWN_HTTP_PORT), the box's DNS on 53 (TOWN_DNS_PORT), and the public Town OS
# package repository added on first start. Runs in the foreground; Ctrl-C
# stops it (the ingress and DNS keep serving until the next start adopts them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Apps run in Podman: install and configure it for this host.
bash scripts/setup-podman.sh
# Volumes: a btrfs file system in a sparse loop file under the data dir (quotas
# enforced) unless the data dir is btrfs already; plain directories otherwise.
export TOWN_STORAGE_LOOP_BYTES="${TOWN_STORAGE_LOOP_BYTES:-$((20 * 1024 * 1024 * 1024))}"
cat <<'TXT'

Town OS is starting. Open the dashboard in a browser at http://<this machine>:5309/
(or https://town.home/ once the box's DNS and certificate are trusted), or
in another terminal, from this directory:
  ./town setup                      # first run: create the administrator
  ./town repo add NAME URL          # add a package repository (git over http/https)
  ./town app search                 # browse the catalog
  ./town --help                     # everything else
TXT
exec ./town daemon
