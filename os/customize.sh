#!/usr/bin/env bash
# mmdebstrap's customize hook for os/build.sh: puts the project and the OS
# layer (os/rootfs) into the root file system $1 and chooses its services.
# $2: the staged project (dist/os-work/app); $3: the image's version.
set -euo pipefail
readonly root=$1 app=$2 version=$3
here=$(dirname "$(readlink -f "$0")")

cp -a "$here/rootfs/." "$root/"
mkdir -p "$root/opt"
cp -a "$app" "$root/opt/town"
ln -sf /opt/town/town "$root/usr/local/bin/town"
# V8's code cache for the command line and daemon bundle (cli/src/code-cache-main.ts),
# made by the image's own Node with the flags the `town` launcher gives it, then
# checked: a cache V8 rejects would only cost seconds at every start.
# It is written by a start of the daemon, which is the boot's critical path:
# the cache then also holds what compiles on the way to listening (the command
# line, the API's routes; 5-12% faster to listen under QEMU than a cache made
# by --help). The daemon waits for a data disk that never comes and is stopped.
scratch=$(mktemp -d "$root/tmp/code-cache-XXXXXX")
chroot "$root" env TOWN_WRITE_CODE_CACHE=1 TOWN_DATA_DIR="${scratch#"$root"}/data" \
  TOWN_DATA_READY_FILE="${scratch#"$root"}/never" TOWN_LISTEN=127.0.0.1:0 TOWN_NETWORK=off \
  TOWN_MONITORING=off TOWN_VMS=off /opt/town/town daemon >"$scratch/log" 2>&1 &
daemon=$!
for _ in $(seq 600); do
  grep -q "Server listening" "$scratch/log" || ! kill -0 "$daemon" 2>/dev/null && break
  sleep 0.1
done
kill -TERM "$daemon" 2>/dev/null || true
if ! wait "$daemon" || ! grep -q "Server listening" "$scratch/log"; then
  echo "customize: the daemon did not listen and stop cleanly for the code cache:" >&2
  cat "$scratch/log" >&2
  exit 1
fi
rm -rf "$scratch"
rejected=$(chroot "$root" /opt/town/town --help 2>&1 >/dev/null)
[ -z "$rejected" ] && [ -s "$root/opt/town/packages/cli/dist/town.cjs.cache" ] || {
  echo "customize: no usable code cache: $rejected" >&2
  exit 1
}
# The drivers os/build.sh leaves out must not be ones that a display,
# network, disk or file system driver needs, InfiniBand's RDMA transports
# aside (each module names what it depends on in its modinfo; Debian's
# System.map is a placeholder).
broken=$(chroot "$root" bash -c '
  cd /usr/lib/modules/* && present=" $(find kernel -name "*.ko*" -printf "%f\n" | sed "s/\.ko.*//; s/-/_/g" | tr "\n" " ")"
  find kernel/drivers/{gpu,net/ethernet,ata,nvme,scsi,md,block,usb/host,usb/storage,virtio} kernel/fs -name "*.ko*" ! -name "*rdma*" |
    while read -r module; do
      for dependency in $(modinfo -F depends "$PWD/$module" | tr ",-" " _"); do
        [[ $present == *" $dependency "* ]] || echo "$module needs $dependency"
      done
    done')
[ -z "$broken" ] || {
  echo "customize: a driver the image needs lost a dependency: $broken" >&2
  exit 1
}
# What the daemon reports as the running image (system/os-info.ts).
printf 'TOWN_OS_VERSION=%s\nTOWN_OS_BUILT=%s\n' "$version" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  >"$root/etc/town-os-release"

chroot "$root" systemctl enable --quiet systemd-networkd systemd-resolved podman.socket \
  town-os-data.service town-os.service town-os-console.service town-os-to-ram.path town-os-to-ram.timer ssh.service
# openssh-server's installation made host keys: every box would share them.
# The box makes its own on the data pool (town-os-ssh-host-key).
rm -f "$root"/etc/ssh/ssh_host_*
# The daemon runs Caddy, Prometheus and Node Exporter itself (its config,
# loopback ports, supervised); Debian's services would take the same ports.
# apt's and dpkg's timers would work on package lists in RAM on a box that
# never installs packages; the daemon decides when apps' images change and
# which apps start at boot, not Podman's auto-update and restart services
# (which would also compete with the daemon's start for the CPU); Podman's API
# service starts when the daemon first connects to its socket. ext4 scrubbing
# has nothing to do here.
chroot "$root" systemctl disable --quiet haproxy.service caddy.service prometheus.service \
  prometheus-node-exporter.service apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
  podman.service podman-auto-update.timer podman-auto-update.service podman-restart.service \
  e2scrub_reap.service e2scrub_all.timer
# Modules systemd loads early for setups a home server does not have (device
# mapper, FUSE, EFI crash records, a DRM console before the GPU's own driver):
# each costs seconds of a slow machine's boot. Anything that needs one still
# loads it on demand.
chroot "$root" systemctl mask --quiet modprobe@dm_mod.service modprobe@fuse.service \
  modprobe@efi_pstore.service modprobe@drm.service
# systemd's generators for what the image has no use for: encrypted,
# integrity- and verity-checked volumes, resuming from hibernation, automatic
# GPT partitions, SysV init scripts (every service here has a unit), rc.local
# and offline system updates. Each is a program that runs before any unit
# starts, a few hundred milliseconds apiece on a slow machine.
mkdir -p "$root/etc/systemd/system-generators"
for generator in cryptsetup integritysetup veritysetup hibernate-resume gpt-auto sysv rc-local system-update; do
  ln -sf /dev/null "$root/etc/systemd/system-generators/systemd-$generator-generator"
done
# systemd-resolved is ordered before sysinit.target and network.target, so
# every service waited for its start: 4-10 s of a slow machine's boot, on the
# daemon's path. Here it only tells the box's resolvers to programs that look
# names up later; what needs it at once waits for nss-lookup.target, which it
# still precedes. Its unit as Debian ships it, less those two orderings.
sed -E '/^Before=/s/(sysinit|network)\.target ?//g' "$root/usr/lib/systemd/system/systemd-resolved.service" \
  >"$root/etc/systemd/system/systemd-resolved.service"
grep -qx 'Before=nss-lookup.target shutdown.target initrd-switch-root.target' \
  "$root/etc/systemd/system/systemd-resolved.service" || {
  echo "customize: systemd-resolved's unit is not the one expected" >&2
  exit 1
}
# No display manager: the console's text screen is the box's local display.
chroot "$root" systemctl set-default --quiet multi-user.target
# A fresh machine id on every boot, not the build machine's.
: >"$root/etc/machine-id"
