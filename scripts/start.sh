#!/usr/bin/env bash
# Sets up and starts Town OS with its embedded defaults: state in
# /var/lib/town (TOWN_DATA_DIR), the API on port 5309 (TOWN_LISTEN), and the
# public Town OS package repository added on first start. Runs in the
# foreground; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cat <<'TXT'

Town OS is starting. In another terminal, from this directory:
  ./town setup                      # first run: create the administrator
  ./town repo add NAME URL          # add a package repository (git over http/https)
  ./town app search                 # browse the catalog
  ./town --help                     # everything else
TXT
exec ./town daemon
