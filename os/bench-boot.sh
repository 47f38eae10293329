#!/usr/bin/env bash
# Boot time of dist/town-os.img (os/build.sh) under QEMU without KVM (TCG),
# as os/test.sh's first boot measures it (BIOS, a blank data disk with the
# owner's consent, from QEMU's start to the first `ready` answer of
# GET /api/v1/status through a forwarded port), repeated: one boot's time
# varies by seconds with what else this machine runs. Prints each boot and
#   boot-to-ready: min N s, median N s, max N s (B boots)
# TOWN_OS_BENCH_BOOTS (default 5) boots; TOWN_OS_IMAGE another image;
# TOWN_OS_BOOT_OPTIONS kernel options to add (e.g. init_on_alloc=0), to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
readonly image=${TOWN_OS_IMAGE:-dist/town-os.img}
readonly work=dist/os-work/bench
readonly boots=${TOWN_OS_BENCH_BOOTS:-5}
readonly port=15409 ssh_port=15422 memory_mib=2048 ready_timeout=600
[ -f "$image" ] || { echo "bench-boot: $image is missing; run os/build.sh first" >&2; exit 1; }
bash os/setup-build.sh
mkdir -p "$work"
# shellcheck source=os/lib/stick.sh
source os/lib/stick.sh

qemu_pid=
trap '[ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true' EXIT
consented_stick "$work/stick.img" /dev/vdb
times=()
for boot in $(seq "$boots"); do
  blank_disk
  started=$(date +%s%N)
  qemu_tcg "$work/stick.img" "$work/blank.qcow2" "$port" "$ssh_port" "$work/serial.log" &
  qemu_pid=$!
  until [ "$(ready_state "$port")" = ready ]; do
    kill -0 "$qemu_pid" 2>/dev/null && [ $(($(date +%s%N) - started)) -lt $((ready_timeout * 10 ** 9)) ] || {
      echo "bench-boot: boot $boot: not ready; the serial console ends with:" >&2
      tail -20 "$work/serial.log" >&2
      exit 1
    }
    sleep 0.2
  done
  tenths=$((($(date +%s%N) - started) / 10 ** 8))
  echo "boot $boot: ready in $((tenths / 10)).$((tenths % 10)) s (QEMU used $(cpu_seconds "$qemu_pid") CPU-s; host load $(cut -d' ' -f1 /proc/loadavg))"
  times+=("$tenths")
  kill "$qemu_pid"
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
done
mapfile -t sorted < <(printf '%s\n' "${times[@]}" | sort -n)
s() { echo "$(($1 / 10)).$(($1 % 10)) s"; }
echo "boot-to-ready: min $(s "${sorted[0]}"), median $(s "${sorted[$((boots / 2))]}"), max $(s "${sorted[$((boots - 1))]}") ($boots boots${TOWN_OS_BOOT_OPTIONS:+, with $TOWN_OS_BOOT_OPTIONS})"
