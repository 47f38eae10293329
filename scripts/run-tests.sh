#!/usr/bin/env bash
# Runs every *.test.ts with node's test runner (TypeScript through tsx) and
# ends with a plain "N passed, N failed" line. Extra arguments go to node
# (e.g. --test-name-pattern=markers).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .town
mapfile -t files < <(find packages -name '*.test.ts' -not -path '*/node_modules/*' | sort)
node --conditions=source --import tsx --test "$@" \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination=.town/test-results.tap \
  "${files[@]}"
status=$?
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' .town/test-results.tap | tail -n 1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' .town/test-results.tap | tail -n 1)
echo "${passed:-0} passed, ${failed:-0} failed"
exit "$status"
