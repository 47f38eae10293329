#!/usr/bin/env bash
# Sets up and starts Town OS with its embedded defaults. Until the daemon
# lands, "starting" means: check the bundled example repository and show
# what installing its apps would create.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo
echo "== Checking the bundled package repository (examples/repository)"
./town package lint examples/repository
for app in hello guestbook; do
  echo
  echo "== What installing $app would create"
  ./town package compile examples/repository "$app" --set feedport=auto
done
