# shellcheck shell=bash
# Sourced by os/test.sh and os/bench-boot.sh, which set $image (the built
# stick image) and $work (their scratch directory).
readonly fat_offset=$((1024 * 1024))
export MTOOLS_SKIP_CHECK=1

# consented_stick STICK DISKS [OPTIONS]: a copy of the image as the owner
# boots it the first time, with town.data=DISKS (and OPTIONS, and
# $TOWN_OS_BOOT_OPTIONS) added to both boot menus.
consented_stick() {
  local cfg
  cp --sparse=always "$image" "$1"
  for cfg in /syslinux/syslinux.cfg /boot/grub/grub.cfg; do
    mtype -i "$1@@$fat_offset" "::$cfg" |
      sed "s|boot=live|boot=live town.data=$2 ${3:-} ${TOWN_OS_BOOT_OPTIONS:-}|" >"$work/boot.cfg"
    grep -q "town.data=$2" "$work/boot.cfg" || { echo "$0: no boot=live line in $cfg" >&2; exit 1; }
    mcopy -o -i "$1@@$fat_offset" "$work/boot.cfg" "::$cfg"
  done
}

# blank_disk [NAME]: a new empty 8 GB disk, $work/NAME.qcow2 (blank.qcow2).
blank_disk() {
  rm -f "$work/${1:-blank}.qcow2"
  qemu-img create -q -f qcow2 "$work/${1:-blank}.qcow2" 8G
}

# qemu_tcg STICK DISK PORT SSH_PORT SERIAL [QEMU OPTIONS...]: the box under
# QEMU without KVM (2 vCPUs, $memory_mib MiB), with STICK and DISK as virtio
# disks, the dashboard's port and SSH forwarded from 127.0.0.1, and the
# serial console written to SERIAL. Run it in the background (`qemu_tcg … &`):
# it becomes QEMU itself, so that $! is QEMU's pid.
qemu_tcg() {
  local stick_file=$1 disk_file=$2 forwards="hostfwd=tcp:127.0.0.1:$3-:5309,hostfwd=tcp:127.0.0.1:$4-:22" serial_file=$5
  shift 5
  exec qemu-system-x86_64 -accel tcg -machine q35 -smp 2 -m "$memory_mib" -display none -no-reboot \
    -drive "file=$stick_file,format=raw,if=virtio" -drive "file=$disk_file,format=${disk_file##*.},if=virtio" \
    -netdev "user,id=net0,$forwards" -device virtio-net-pci,netdev=net0 -serial "file:$serial_file" "$@"
}

# ready_state PORT: the daemon's state (`ready`, `booting`…), empty while it does not answer.
ready_state() {
  curl -fsS --max-time 2 "http://127.0.0.1:$1/api/v1/status" 2>/dev/null |
    sed -n 's/.*"state":"\([a-z]*\)".*/\1/p' || true
}

# User and system time of a process, from /proc/PID/stat (fields 14 and 15, in clock ticks).
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) / hz) }' "/proc/$1/stat"; }
