#!/usr/bin/env bash
# Boots dist/town-os.img (os/build.sh) under QEMU without KVM (TCG):
#   bios      BIOS (SeaBIOS) with a blank data disk and the owner's consent to
#             use it (town.data=/dev/vdb added to the boot menus of a copy of
#             the image, as an owner would at the boot prompt). The persistence
#             test then claims the box with the setup code its console shows,
#             gives root an SSH key, installs an app from a package repository
#             and a registry this host serves (packages/daemon/test/
#             image-repository.ts), writes a file on / over SSH, installs a
#             newer image with town-os-update (the second slot on the stick,
#             first in the boot menus), and reboots into UEFI (OVMF): the
#             newer image, booted without consent, must find the pool by its
#             label, keep the SSH host key and root's key, and run the app
#             again with the token its volume holds, while the file on / and
#             the machine id are gone, and the menus keep the previous image;
#             its helpers must be systemd units that a daemon restart leaves
#             running and the daemon adopts.
#   uefi-first  UEFI with a blank disk and consent.
#   used-disk consent naming a disk with an ext4 file system, which must be
#             left as it was while the box runs from RAM; then the same with
#             town.wipe naming it too, which must make it the pool.
#   raid1     two blank disks with consent to both (town.data=/dev/vdb,/dev/vdc),
#             which must become one RAID1 pool; then the image as built with
#             one of them gone, which must mount it degraded and say so.
# TOWN_OS_BOOTS picks groups ("bios uefi-first used-disk raid1", all by default).
# Each boot waits until the dashboard's API answers `GET /api/v1/status` with
# state ready through a forwarded port and the dashboard's page and script
# load, and prints:
#   boot-to-ready: N s   from QEMU's start to the first ready answer
#   ram-used: N MB       MemTotal - MemAvailable in the guest when it was ready
#                        (the RAM copy of the OS included), from the status
#                        line town-os-console prints on the serial port
# and QEMU's CPU time to ready (wall time depends on what else runs here),
# then a summary: the BIOS boot's `boot-to-ready` and `ram-used`,
# `squashfs: N MB`, `bios: ok`, `persistence: ok`, `uefi: ok`…
# TOWN_OS_IMAGE boots another image; TOWN_OS_BIOS_ONLY=1 is TOWN_OS_BOOTS=bios;
# TOWN_OS_BOOT_OPTIONS adds kernel options (e.g. "systemd.log_target=kmsg
# printk.devkmsg=on" puts systemd's timed log on the serial console). Exits
# non-zero on a failure, with the end of the guest's serial console.
set -euo pipefail
cd "$(dirname "$0")/.."
readonly image=${TOWN_OS_IMAGE:-dist/town-os.img}
readonly work=dist/os-work/test
readonly port=${TOWN_OS_TEST_PORT:-15309}
readonly ssh_port=${TOWN_OS_TEST_SSH_PORT:-15322}
readonly ready_timeout=${TOWN_OS_READY_TIMEOUT:-600}
readonly memory_mib=${TOWN_OS_TEST_MEMORY:-2048}
readonly ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
readonly ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd

[ -f "$image" ] || { echo "test: $image is missing; run os/build.sh first" >&2; exit 1; }
bash os/setup-build.sh
mkdir -p "$work"
# shellcheck source=os/lib/stick.sh
source os/lib/stick.sh

stick=$work/stick.img
consented_stick "$stick" /dev/vdb
booted_stick=$stick

qemu_pid=
stop_qemu() {
  [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
  [ -z "$qemu_pid" ] || wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
}
serve_pid=
stop_all() {
  stop_qemu
  [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true
}
trap stop_all EXIT
fail() {
  echo "test: $*" >&2
  [ -z "${serial:-}" ] || { echo "test: the serial console ends with:" >&2; tail -40 "$serial" >&2; }
  exit 1
}

# boot NAME DISK DATA [QEMU OPTIONS...]: one boot with DISK (a qcow2 or raw
# file) as /dev/vdb until ready; the status screen must then say `Data: DATA`.
# Then $on_ready runs when set (a function name), before QEMU is stopped.
boot() {
  local name=$1 disk=$2 data=$3 serial=$work/$1-serial.log started state ram line
  shift 3
  : >"$serial"
  started=$(date +%s.%N)
  qemu_tcg "$booted_stick" "$disk" "$port" "$ssh_port" "$serial" "$@" &
  qemu_pid=$!
  state=
  while [ "$state" != ready ]; do
    if ! kill -0 "$qemu_pid" 2>/dev/null || [ "$(elapsed "$started")" -gt "$ready_timeout" ]; then
      echo "test: $name: not ready after $(elapsed "$started") s; the serial console ends with:" >&2
      tail -40 "$serial" >&2
      exit 1
    fi
    sleep 1
    state=$(ready_state "$port")
  done
  ready_s=$(elapsed "$started")
  # QEMU's CPU time until then: what the boot costs, whatever else this machine runs.
  echo "$name: boot-to-ready: $ready_s s (QEMU used $(cpu_seconds "$qemu_pid") CPU-s; host load $(cut -d' ' -f1 /proc/loadavg))"
  # town-os-console prints its status line within 2 s of a change: RAM is
  # counted once the daemon is ready and the OS is in RAM (town-os-to-ram).
  for _ in $(seq 90); do
    line=$(grep -m1 'town-os-status: ready .* os=ram' "$serial" || true)
    [ -z "$line" ] || break
    sleep 1
  done
  [ -n "$line" ] || fail "$name: the OS did not move into RAM: $(grep -o 'town-os-status: .*' "$serial" | tail -1)"
  ram=$(sed -n 's/.*ram-used-mb=\([0-9]*\).*/\1/p' <<<"$line")
  echo "$name: ram-used: $ram MB (the OS was in RAM at $(grep -m1 'town-os-status: .* os=ram' "$serial" |
    sed -n 's/.*uptime-s=\([0-9]*\).*/\1/p') s of uptime)"
  [ "$name" != bios ] || { bios_ready_s=$ready_s bios_ram=$ram; }
  dashboard "$name"
  grep -q "Data: $data" "$serial" || fail "$name: the data is not on \"$data\""
  [ -z "${on_ready:-}" ] || "$on_ready"
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
results=()

# The persistence test. The host serves a package repository and a registry
# holding its app's image (packages/daemon/test/image-repository.ts), which
# the guest reaches at 10.0.2.2; the `town` command and ssh talk to the guest
# through the forwarded ports, as an owner on the home network would.
serve_repository() {
  rm -rf "$work/served"
  node --conditions=source --import tsx packages/daemon/test/image-repository.ts "$work/served" \
    >"$work/served.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 300); do
    [ ! -f "$work/served/served.env" ] || break
    kill -0 "$serve_pid" 2>/dev/null || { cat "$work/served.log" >&2; fail "the package repository did not start"; }
    sleep 1
  done
  # shellcheck source=/dev/null
  source "$work/served/served.env" || fail "the package repository did not start in time"
}
town() {
  XDG_CONFIG_HOME=$work/config node --conditions=source --import tsx packages/cli/src/main.ts \
    --server "http://127.0.0.1:$port" "$@"
}
# guest COMMAND: runs COMMAND as root on the guest over SSH, with the key the
# owner gave; the guest's host key must be the one seen first.
guest() {
  ssh -i "$work/id_ed25519" -p "$ssh_port" -o BatchMode=yes -o ConnectTimeout=30 \
    -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking="${host_key_check:-yes}" \
    -o LogLevel=ERROR root@127.0.0.1 "$@"
}
# The token the app printed at its last start (the one in its volume).
app_token() { town app logs served/notebook --tail 20 2>/dev/null | sed -n 's/.*token=\([0-9a-f]*\).*/\1/p' | tail -1; }

# claim: the owner claims the box with the setup code on its console and
# gives root an SSH key, as the first thing after a first boot.
claim() {
  local code
  code=$(sed -n 's/.*the setup code \([A-Z0-9-]*\).*/\1/p' "$serial" | tail -1)
  [ -n "$code" ] || fail "the console shows no setup code"
  rm -rf "$work/config" "$work/known_hosts" "$work/id_ed25519" "$work/id_ed25519.pub"
  owner_password=image-test-$RANDOM$RANDOM
  TOWN_PASSWORD=$owner_password town setup --username owner --code "$code" >/dev/null ||
    fail "first-run setup with the console's code failed"
  ssh-keygen -q -t ed25519 -N '' -C image-test -f "$work/id_ed25519"
  town ssh-key add --file "$work/id_ed25519.pub" >/dev/null || fail "giving root an SSH key failed"
}
# reboot_guest: a clean reboot; QEMU runs with -no-reboot, so it ends.
reboot_guest() {
  guest systemctl reboot || true
  for _ in $(seq 180); do
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 1
  done
  ! kill -0 "$qemu_pid" 2>/dev/null || fail "the guest did not shut down for its reboot"
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
}
# First boot: claim the box, write a file on the root file system, install
# the app, reboot.
readonly console_password='rescue at the box'
# console_login_check WHEN: root's shadow entry opens with the console password.
console_login_check() {
  guest "hash=\$(getent shadow root | cut -d: -f2) &&
    perl -e 'exit(crypt(\$ARGV[0], \$ARGV[1]) eq \$ARGV[1] ? 0 : 1)' '$console_password' \"\$hash\"" ||
    fail "root's console password is not the one set ($1)"
}
# fixed_address_check WHEN: the interface runs on the daemon's networkd file, without DHCP.
fixed_address_check() {
  local status
  for _ in $(seq 30); do
    status=$(guest "networkctl status $iface") || status=
    grep -q "Network File: /run/systemd/network/10-town-os.network" <<<"$status" &&
      grep -q "10.0.2.15" <<<"$status" && ! grep -qi "DHCP4" <<<"$status" && return 0
    sleep 1
  done
  fail "the fixed address is not in use ($1): $status"
}
persist_first() {
  claim
  host_key_check=accept-new guest 'echo "written before the reboot" >/root/written-to-root && cat /etc/machine-id' \
    >"$work/machine-id" || fail "root cannot log in over SSH with the key"
  # Where this boot's time went, for os/README.md.
  guest 'systemd-analyze; systemd-analyze critical-chain town-os.service town-os-to-ram.service' \
    >"$work/bios-boot-analysis.txt" 2>&1 || true
  # The OS's squashfs is read from RAM, and the stick is free.
  guest 'grep -qx /run/live/ram/filesystem.squashfs /sys/block/loop*/loop/backing_file &&
    test -z "$(findmnt --noheadings --types vfat)"' ||
    fail "the OS does not run from RAM: $(guest 'cat /run/town-os/os-in-ram; findmnt --types vfat' 2>&1)"
  [ "$(guest 'getent shadow root | cut -d: -f2')" = '*' ] || fail "root has a password on a fresh box"
  # Root's console password: applied at once, and again at every boot.
  printf '%s\n' "$console_password" | town console-password set >/dev/null ||
    fail "setting root's console password failed"
  console_login_check "as it was set"
  # A fixed address (QEMU's own, 10.0.2.15, which its port forwarding needs),
  # applied by systemd-networkd at once and again at every boot.
  iface=$(guest "ip -4 -o route show default | awk '{ print \$5; exit }'")
  town network static --interface "$iface" --address 10.0.2.15/24 --gateway 10.0.2.2 --dns 10.0.2.3 >/dev/null ||
    fail "setting a fixed address failed"
  fixed_address_check "as it was set"
  town settings set registries.insecure "$REGISTRY" >/dev/null
  town repo add served "$REPOSITORY" >/dev/null || fail "adding the package repository failed"
  town app install served/notebook >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "installing served/notebook failed"; }
  token=$(app_token)
  [ -n "$token" ] || fail "the app printed no token"
  echo "persistence: app served/notebook installed and running (token $token)"
  install_update
  reboot_guest
}
# After the reboot: the owner's account, the same host key and root's key
# (from the pool), the app running again with the token from its volume, the
# file on / gone.
persist_check() {
  local health again=
  # A restart of the daemon signs everybody out (auth/sessions.ts).
  TOWN_PASSWORD=$owner_password town login --username owner >/dev/null ||
    fail "after the reboot the owner cannot sign in"
  guest 'test ! -e /root/written-to-root && cat /etc/machine-id' >"$work/machine-id-after" ||
    fail "after the reboot, root cannot log in, the host key changed, or /root/written-to-root is still there"
  ! cmp -s "$work/machine-id" "$work/machine-id-after" || fail "the machine id survived the reboot: / was not reset"
  console_login_check "after the reboot"
  fixed_address_check "after the reboot"
  local deadline=$((SECONDS + 180))
  while [ "$SECONDS" -lt "$deadline" ]; do
    health=$(town app health served/notebook 2>&1) || health=
    if grep -q running <<<"$health"; then
      again=$(app_token)
      [ -z "$again" ] || break
    fi
    sleep 2
  done
  [ -n "$again" ] || fail "after the reboot the app is not running: $health"
  [ "$again" = "$token" ] || fail "after the reboot the app has a new token ($again, was $token): its volume was lost"
  results+=("persistence: ok")
  update_check
  helper_units
}
# The daemon runs its helpers as systemd units of their own, which keep
# serving while it restarts and which it then adopts (the same processes).
helper_units() {
  local units=(town-haproxy.service town-caddy.service town-dnsmasq.service
    town-prometheus.service town-node-exporter.service) before after state
  guest systemctl is-active --quiet "${units[@]}" ||
    fail "not every helper runs as its unit: $(guest systemctl is-active "${units[@]}" | tr '\n' ' ')"
  before=$(guest systemctl show --property=MainPID --value "${units[@]}" | tr '\n' ' ')
  guest systemctl restart town-os.service
  state=
  for _ in $(seq 120); do
    state=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/api/v1/status" 2>/dev/null |
      sed -n 's/.*"state":"\([a-z]*\)".*/\1/p') || state=
    [ "$state" != ready ] || break
    sleep 1
  done
  [ "$state" = ready ] || fail "the daemon is not ready again after its restart"
  after=$(guest systemctl show --property=MainPID --value "${units[@]}" | tr '\n' ' ')
  [ "$before" = "$after" ] || fail "a daemon restart replaced its helpers (pids $before, then $after)"
  guest journalctl -u town-os.service -b --no-pager | grep -q "adopted" ||
    fail "the restarted daemon does not say it adopted its helpers"
  results+=("helpers: systemd units, adopted across a daemon restart")
}

# An update before the reboot: the owner installs a newer image on the
# running box over SSH (town-os-update), which fills the stick's second slot
# and puts it first in the boot menus, with the newer image's own options (no
# consent: the pool is found by its label); the image it replaces stays in the
# menus as "previous". The newer image is this one with another version on
# its stick (the squashfs is the same).
install_update() {
  local newer=$work/newer.img started
  cp --sparse=always "$image" "$newer"
  mtype -i "$newer@@$fat_offset" ::/live/town-os-release | sed 's/^TOWN_OS_VERSION=.*/&-newer/' >"$work/release"
  mcopy -o -i "$newer@@$fat_offset" "$work/release" ::/live/town-os-release
  newer_version=$(sed -n 's/^TOWN_OS_VERSION=//p' "$work/release")
  started=$(date +%s)
  zstd -q -c "$newer" | guest 'zstd -q -d -f -o /var/lib/town/newer.img' || fail "sending the newer image failed"
  echo "update: the image sent in $(elapsed "$started") s"
  started=$(date +%s)
  guest 'town-os-update /var/lib/town/newer.img && rm /var/lib/town/newer.img' >"$work/update.log" 2>&1 ||
    { cat "$work/update.log" >&2; fail "town-os-update failed"; }
  echo "update: installed in $(elapsed "$started") s: $(tail -1 "$work/update.log")"
}
update_check() {
  local cmdline menu
  cmdline=$(guest cat /proc/cmdline)
  [[ $cmdline == *"live-media-path=/live-b"* && $cmdline != *town.data=* ]] ||
    fail "after the update the box did not boot the second slot with the newer image's options: $cmdline"
  for menu in /syslinux/syslinux.cfg /boot/grub/grub.cfg; do
    mtype -i "$booted_stick@@$fat_offset" "::$menu" >"$work/menu"
    grep -m1 "Town OS " "$work/menu" | grep -qF "Town OS $newer_version" ||
      fail "$menu does not put the newer image first: $(cat "$work/menu")"
    grep -q "(previous)" "$work/menu" && grep -q "live-media-path=/live$" "$work/menu" ||
      fail "$menu does not keep the previous image: $(cat "$work/menu")"
  done
  results+=("update: ok (second slot booted, previous image in the menus)")
}

# Which boots to run (all by default); each group's boots depend only on each other.
boots=" ${TOWN_OS_BOOTS:-bios uefi-first used-disk raid1} "
[ -z "${TOWN_OS_BIOS_ONLY:-}" ] || boots=" bios "
readonly boots
runs() { [[ $boots == *" $1 "* ]]; }
# The image as built, without consent: finds a pool made on an earlier boot by its label.
plain=$work/plain.img
cp --sparse=always "$image" "$plain"

# UEFI firmware for one boot, with variables of its own.
uefi=(-drive "if=pflash,format=raw,readonly=on,file=$ovmf_code" -drive "if=pflash,format=raw,file=$work/OVMF_VARS.fd")
if runs bios; then
  # The first boot with the owner's consent, with BIOS; then, with UEFI, the
  # stick as the update left it (the newer image in its second slot, with no
  # consent: the pool is found by its label). One reboot tests both firmwares
  # and the update.
  serve_repository
  blank_disk
  booted_stick=$work/bios-stick.img
  consented_stick "$booted_stick" /dev/vdb
  on_ready=persist_first boot bios "$work/blank.qcow2" "disk /dev/vdb"
  cp "$ovmf_vars" "$work/OVMF_VARS.fd"
  on_ready=persist_check boot uefi "$work/blank.qcow2" "disk /dev/vdb" "${uefi[@]}"
  booted_stick=$stick
  kill "$serve_pid"
fi
if runs uefi-first; then
  # A first boot with UEFI: a blank disk and consent.
  blank_disk
  cp "$ovmf_vars" "$work/OVMF_VARS.fd"
  boot uefi-first "$work/blank.qcow2" "disk /dev/vdb" "${uefi[@]}"
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
  # The owner names it a second time, in town.wipe: then it becomes the pool.
  booted_stick=$work/wipe.img
  consented_stick "$booted_stick" /dev/vdb town.wipe=/dev/vdb
  boot used-disk-wiped "$work/used.raw" "disk /dev/vdb"
  blkid -p -o export "$work/used.raw" | grep -qx "LABEL=town-data" || fail "the wiped disk is not the pool"
  booted_stick=$stick
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
