#!/usr/bin/env bash
# Sets up everything the tests need, then runs the whole check: format, lint,
# typecheck and tests. Ends with a line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-tests.sh
# The runtime's integration tests need Podman set up for this host.
bash scripts/setup-podman.sh
npm run --silent check
