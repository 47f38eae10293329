#!/usr/bin/env bash
# Boots dist/town-os.img (os/build.sh) under QEMU without KVM (TCG), with BIOS
# (SeaBIOS) and then UEFI (OVMF), each time with a blank data disk and the
# owner's consent to use it (town.data=/dev/vdb added to the boot menus of a
# copy of the image, as an owner would at the boot prompt); then the image as
# built, which must find the pool the UEFI boot made by its label; then once
# more with a disk holding an ext4 file system, which must be left as it was while
# the box runs from RAM; then two blank disks with consent to both
# (town.data=/dev/vdb,/dev/vdc), which must become one RAID1 pool, and the
# image as built with one of them gone, which must mount it degraded and say
# so. TOWN_OS_BOOTS picks groups of boots ("bios uefi used-disk raid1", all by
# default). Waits until the
# dashboard's API answers `GET /api/v1/status` with state ready through a
# forwarded port and the dashboard's page and script load, and prints per boot:
#   boot-to-ready: N s   from QEMU's start to the first ready answer
#   ram-used: N MB       MemTotal - MemAvailable in the guest when it was ready
#                        (the RAM copy of the OS included), from the status
#                        line town-os-console prints on the serial port
# and QEMU's CPU time to ready (wall time depends on what else runs here),
# then a summary: the BIOS boot's `boot-to-ready` and `ram-used`,
# `squashfs: N MB`, `bios: ok`, `uefi: ok`. TOWN_OS_IMAGE boots another image;
# TOWN_OS_BIOS_ONLY=1 is TOWN_OS_BOOTS=bios; TOWN_OS_BOOT_OPTIONS adds kernel
# options (e.g. "systemd.log_target=kmsg printk.devkmsg=on" puts systemd's
# timed log on the serial console). Exits non-zero on a failure,
# with the end of the guest's serial console.
set -euo pipefail
cd "$(dirname "$0")/.."
readonly image=${TOWN_OS_IMAGE:-dist/town-os.img}
readonly work=dist/os-work/test
readonly port=${TOWN_OS_TEST_PORT:-15309}
readonly ready_timeout=${TOWN_OS_READY_TIMEOUT:-600}
readonly memory_mib=${TOWN_OS_TEST_MEMORY:-2048}
readonly fat_offset=$((1024 * 1024))
readonly ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
readonly ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd

[ -f "$image" ] || { echo "test: $image is missing; run os/build.sh first" >&2; exit 1; }
bash os/setup-build.sh
mkdir -p "$work"
export MTOOLS_SKIP_CHECK=1

# consented_stick STICK DISKS: a copy of the image as the owner boots it the
# first time, with town.data=DISKS added to both boot menus.
consented_stick() {
  local cfg
  cp --sparse=always "$image" "$1"
  for cfg in /syslinux/syslinux.cfg /boot/grub/grub.cfg; do
    mtype -i "$1@@$fat_offset" "::$cfg" |
      sed "s|boot=live|boot=live town.data=$2 ${TOWN_OS_BOOT_OPTIONS:-}|" >"$work/boot.cfg"
    grep -q "town.data=$2" "$work/boot.cfg" || { echo "test: no boot=live line in $cfg" >&2; exit 1; }
    mcopy -o -i "$1@@$fat_offset" "$work/boot.cfg" "::$cfg"
  done
}
stick=$work/stick.img
consented_stick "$stick" /dev/vdb
booted_stick=$stick

qemu_pid=
stop_qemu() {
  [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
  [ -z "$qemu_pid" ] || wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
}
trap stop_qemu EXIT

# boot NAME DISK DATA [QEMU OPTIONS...]: one boot with DISK (a qcow2 or raw
# file) as /dev/vdb until ready; the status screen must then say `Data: DATA`.
boot() {
  local name=$1 disk=$2 data=$3 serial=$work/$1-serial.log started state ram
  shift 3
  : >"$serial"
  started=$(date +%s.%N)
  qemu-system-x86_64 -accel tcg -machine q35 -smp 2 -m "$memory_mib" -display none -no-reboot \
    -drive "file=$booted_stick,format=raw,if=virtio" -drive "file=$disk,format=${disk##*.},if=virtio" \
    -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:5309" -device virtio-net-pci,netdev=net0 \
    -serial "file:$serial" "$@" &
  qemu_pid=$!
  state=
  while [ "$state" != ready ]; do
    if ! kill -0 "$qemu_pid" 2>/dev/null || [ "$(elapsed "$started")" -gt "$ready_timeout" ]; then
      echo "test: $name: not ready after $(elapsed "$started") s; the serial console ends with:" >&2
      tail -40 "$serial" >&2
      exit 1
    fi
    sleep 1
    state=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/api/v1/status" 2>/dev/null |
      sed -n 's/.*"state":"\([a-z]*\)".*/\1/p') || state=
  done
  ready_s=$(elapsed "$started")
  # QEMU's CPU time until then: what the boot costs, whatever else this machine runs.
  echo "$name: boot-to-ready: $ready_s s (QEMU used $(cpu_seconds "$qemu_pid") CPU-s; host load $(cut -d' ' -f1 /proc/loadavg))"
  # town-os-console prints its status line within 2 s of the daemon being ready.
  for _ in $(seq 30); do
    ram=$(sed -n 's/.*town-os-status: ready ram-used-mb=\([0-9]*\).*/\1/p' "$serial" | head -1)
    [ -z "$ram" ] || break
    sleep 1
  done
  echo "$name: ram-used: ${ram:-unknown} MB"
  [ "$name" != bios ] || { bios_ready_s=$ready_s bios_ram=${ram:-unknown}; }
  dashboard "$name"
  grep -q "Data: $data" "$serial" ||
    { echo "test: $name: the data is not on \"$data\"" >&2; tail -40 "$serial" >&2; exit 1; }
  stop_qemu
  results+=("$name: ok")
}
# The dashboard's page and its script come through the forwarded port.
dashboard() {
  local page script
  page=$(curl -fsS --max-time 10 "http://127.0.0.1:$port/") || { echo "test: $1: no dashboard page" >&2; exit 1; }
  script=$(grep -o '/assets/[^"]*\.js' <<<"$page" | head -1)
  grep -q "<title>Town OS</title>" <<<"$page" && [ -n "$script" ] &&
    curl -fsS --max-time 30 -o /dev/null "http://127.0.0.1:$port$script" ||
    { echo "test: $1: the dashboard page or its script ($script) is missing" >&2; exit 1; }
}
elapsed() { echo $(($(date +%s) - ${1%.*})); }
# User and system time of a process, from /proc/PID/stat (fields 14 and 15, in clock ticks).
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) / hz) }' "/proc/$1/stat"; }
results=()

# blank_disk [NAME]: a new empty 8 GB disk, dist/os-work/test/NAME.qcow2 (blank.qcow2).
blank_disk() {
  rm -f "$work/${1:-blank}.qcow2"
  qemu-img create -q -f qcow2 "$work/${1:-blank}.qcow2" 8G
}
# Which boots to run (all by default); each group's boots depend only on each other.
boots=" ${TOWN_OS_BOOTS:-bios uefi used-disk raid1} "
[ -z "${TOWN_OS_BIOS_ONLY:-}" ] || boots=" bios "
readonly boots
runs() { [[ $boots == *" $1 "* ]]; }
# The image as built, without consent: finds a pool made on an earlier boot by its label.
plain=$work/plain.img
cp --sparse=always "$image" "$plain"

if runs bios; then
  blank_disk
  boot bios "$work/blank.qcow2" "disk /dev/vdb"
fi
if runs uefi; then
  blank_disk
  cp "$ovmf_vars" "$work/OVMF_VARS.fd"
  boot uefi "$work/blank.qcow2" "disk /dev/vdb" -drive "if=pflash,format=raw,readonly=on,file=$ovmf_code" \
    -drive "if=pflash,format=raw,file=$work/OVMF_VARS.fd"
  booted_stick=$plain
  boot pool-again "$work/blank.qcow2" "disk /dev/vdb"
  booted_stick=$stick
fi
if runs used-disk; then
  # Consent names a disk that holds someone's file system: it must stay as it was.
  rm -f "$work/used.raw"
  truncate -s 1G "$work/used.raw"
  mkfs.ext4 -q -F -L family-photos "$work/used.raw"
  before=$(blkid -p -o export "$work/used.raw" | grep -E '^(UUID|LABEL|TYPE)=')
  boot used-disk "$work/used.raw" "ram"
  [ "$(blkid -p -o export "$work/used.raw" | grep -E '^(UUID|LABEL|TYPE)=')" = "$before" ] ||
    { echo "test: the used disk's file system changed" >&2; exit 1; }
  results+=("used disk: untouched")
fi
if runs raid1; then
  # Two blank disks with consent: one pool keeping two copies of everything.
  booted_stick=$work/raid1.img
  consented_stick "$booted_stick" /dev/vdb,/dev/vdc
  blank_disk raid-a
  blank_disk raid-b
  boot raid1 "$work/raid-a.qcow2" "disk /dev/vdb /dev/vdc (RAID1)" \
    -drive "file=$work/raid-b.qcow2,format=qcow2,if=virtio"
  # One of them gone: the image as built mounts the pool degraded and says so.
  booted_stick=$plain
  boot raid1-degraded "$work/raid-a.qcow2" "disk-degraded /dev/vdb (RAID1)"
  booted_stick=$stick
fi
echo "boot-to-ready: ${bios_ready_s:-not measured (no BIOS boot)}${bios_ready_s:+ s}"
echo "ram-used: ${bios_ram:-not measured}${bios_ram:+ MB}"
echo "squashfs: $(($(mtype -i "$stick@@$fat_offset" ::/live/filesystem.squashfs | wc -c) / 1024 / 1024)) MB"
printf '%s\n' "${results[@]}"
