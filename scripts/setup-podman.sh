#!/usr/bin/env bash
# Prepares this machine (Debian 12, as root) for Town OS's Podman driver.
# Idempotent, and fast when everything is in place (one probe container run):
#   1. installs podman, runc and busybox-static when missing;
#   2. builds the local test image localhost/town/busybox:latest when absent
#      (no container registry is reachable here: images are made locally);
#   3. probes whether containers start, and only when they do not, finds the
#      fix and writes it to /etc/containers/containers.conf, keeping every
#      other setting of that file:
#        - an OCI runtime that fails (crun on hybrid cgroups) → [engine] runtime = "runc"
#        - Podman's default rlimits (nofile/nproc 1048576) above this host's hard
#          limits → [containers] default_ulimits below the hard limits;
#   4. makes containers find each other by name (an app reaches its database as
#      "db"): Podman's netavark network backend with aardvark-dns, instead of
#      Debian's default CNI without a DNS plugin. An existing CNI setup is
#      migrated without losing apps: running containers are stopped, every
#      network is made again under netavark with its name, subnets, labels and
#      internal flag, and the containers that were running are started again
#      (volumes are bind mounts and images stay: nothing else changes). Then two
#      containers on one network prove that one resolves the other.
# Prints each change it makes. Exits non-zero when no fix makes containers start
# or names do not resolve.
set -euo pipefail

readonly conf=/etc/containers/containers.conf
readonly image=localhost/town/busybox:latest
readonly probe_name=town-setup-probe
# Podman asks for 1048576 open files and processes by default; stay far below.
readonly nofile_cap=65536
readonly nproc_cap=32768

say() { echo "setup-podman: $*"; }
die() {
  echo "setup-podman: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "run me as root (Podman runs rootful containers for Town OS)"

# --- 1. packages -----------------------------------------------------------
# netavark sets up container networks through iptables (its nft backend on Debian 12), only recommended by it.
debian_packages=(podman runc busybox-static netavark aardvark-dns iptables)
# shellcheck source=lib/debian-packages.sh
source "$(dirname "$0")/lib/debian-packages.sh"
install_debian_packages --no-install-recommends

# --- 2. the test image -------------------------------------------------------
if ! podman image exists "$image"; then
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/www"
  chmod 1777 "$rootfs/tmp"
  # busybox-static's binary needs no libraries: it is the whole userland.
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $("$rootfs/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  tar -C "$rootfs" -c . |
    podman import --quiet --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' - "$image" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  say "built $image from busybox-static $(dpkg-query -W -f='${Version}' busybox-static)"
fi

# --- 3. probe, and fix what fails ----------------------------------------------
# Runs a container that does nothing; extra podman-run flags come as arguments.
probe() {
  podman rm --force --ignore "$probe_name" >/dev/null 2>&1 || true
  local status=0
  probe_output=$(podman run --rm --name "$probe_name" --network none "$@" "$image" /bin/true 2>&1) || status=$?
  podman rm --force --ignore "$probe_name" >/dev/null 2>&1 || true
  return "$status"
}

# The largest power of two ≤ min(hard limit, cap): clearly below the hard limit.
below_hard() {
  local hard=$1 cap=$2 value=1
  [ "$hard" = unlimited ] && hard=$cap
  [ "$hard" -lt "$cap" ] || hard=$cap
  while [ $((value * 2)) -le "$hard" ]; do value=$((value * 2)); done
  echo "$value"
}

# Prints the value of KEY in [SECTION] of the config (joined onto one line).
conf_get() {
  local section=$1 key=$2
  [ -f "$conf" ] || return 0
  awk -v sec="[$section]" -v key="$key" '
    function header(line) { sub(/^[ \t]+/, "", line); sub(/[ \t]*(#.*)?$/, "", line); return line }
    /^[ \t]*\[/ { insec = (header($0) == sec); collecting = 0; next }
    collecting { value = value " " $0; if ($0 ~ /\]/) collecting = 0; next }
    insec && $0 ~ "^[ \t]*" key "[ \t]*=" {
      value = $0; sub(/^[^=]*=[ \t]*/, "", value)
      if (value ~ /^\[/ && value !~ /\]/) collecting = 1
    }
    END { print value }' "$conf"
}

# Sets KEY = VALUE (raw TOML) in [SECTION], keeping everything else of the file.
# Replaces the key where it is (multi-line arrays included); a missing key goes
# right below its section header, a missing section at the end of the file.
conf_set() {
  local section=$1 key=$2 value=$3 next
  next=$(mktemp)
  if [ -f "$conf" ]; then cat "$conf"; fi | awk -v sec="[$section]" -v key="$key" -v val="$value" '
    function header(line) { sub(/^[ \t]+/, "", line); sub(/[ \t]*(#.*)?$/, "", line); return line }
    skipping { if ($0 ~ /\]/) skipping = 0; next }
    /^[ \t]*\[/ {
      if (insec && !done) { print key " = " val; done = 1 }
      insec = (header($0) == sec)
      print
      next
    }
    insec && $0 ~ "^[ \t]*" key "[ \t]*=" {
      rest = $0; sub(/^[^=]*=[ \t]*/, "", rest)
      if (rest ~ /^\[/ && rest !~ /\]/) skipping = 1
      if (!done) { print key " = " val; done = 1 }
      next
    }
    { print }
    END {
      if (insec && !done) { print key " = " val; done = 1 }
      if (!done) { if (NR > 0) print ""; print sec; print key " = " val }
    }' >"$next"
  mkdir -p "$(dirname "$conf")"
  if [ -f "$conf" ] && cmp -s "$next" "$conf"; then
    rm -f "$next"
    return 0
  fi
  # Copy rather than move: keeps the file's owner, mode and inode.
  cat "$next" >"$conf"
  rm -f "$next"
  say "set [$section] $key = $value in $conf"
}

nofile=$(below_hard "$(ulimit -Hn)" "$nofile_cap")
nproc=$(below_hard "$(ulimit -Hu)" "$nproc_cap")
limits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")

# Keeps the file's other default_ulimits entries and sets ours for nofile/nproc.
configure_ulimits() {
  local entries=() entry joined
  while IFS= read -r entry; do
    case "$entry" in nofile=* | nproc=* | "") ;; *) entries+=("\"$entry\"") ;; esac
  done < <(conf_get containers default_ulimits | grep -o '"[^"]*"' | tr -d '"')
  entries+=("\"nofile=$nofile:$nofile\"" "\"nproc=$nproc:$nproc\"")
  joined=$(printf '%s, ' "${entries[@]}")
  conf_set containers default_ulimits "[${joined%, }]"
}

# Containers start, or the fix for this host is found and written.
ensure_containers_start() {
  if probe; then
    say "ok: containers start with this configuration"
    return 0
  fi
  say "a test container does not start: $probe_output"
  if probe "${limits[@]}"; then
    say "containers start with explicit ulimits (hard limits here: nofile $(ulimit -Hn), nproc $(ulimit -Hu))"
    configure_ulimits
  elif [ "$(conf_get engine runtime)" != '"runc"' ] && probe --runtime runc "${limits[@]}"; then
    say "the default OCI runtime fails and runc works"
    conf_set engine runtime '"runc"'
    probe --runtime runc || configure_ulimits
  else
    die "no known fix makes containers start: $probe_output"
  fi
  probe || die "containers still do not start after the changes: $probe_output"
  say "ok: containers start now"
  changed_conf=1
}

# Moves an existing CNI setup to netavark, keeping every network and restarting
# what ran (see 4. above).
migrate_to_netavark() {
  local running networks=() name subnets gateway flags
  running=$(podman ps --format '{{.ID}}')
  while IFS= read -r name; do
    [ -n "$name" ] && [ "$name" != podman ] && networks+=("$name")
  done < <(podman network ls --format '{{.Name}}')
  local specs=() bridges=()
  for name in "${networks[@]}"; do
    bridges+=("$(podman network inspect --format '{{.NetworkInterface}}' "$name")")
    flags=()
    while IFS= read -r subnets; do
      [ -n "$subnets" ] && flags+=(--subnet "${subnets% *}" --gateway "${subnets#* }")
    done < <(podman network inspect --format '{{range .Subnets}}{{.Subnet}} {{.Gateway}}{{println}}{{end}}' "$name")
    [ "$(podman network inspect --format '{{.Internal}}' "$name")" = true ] && flags+=(--internal)
    while IFS= read -r gateway; do
      [ -n "$gateway" ] && flags+=(--label "$gateway")
    done < <(podman network inspect --format '{{range $k, $v := .Labels}}{{$k}}={{$v}}{{println}}{{end}}' "$name")
    specs+=("$(printf '%q ' "${flags[@]}" "$name")")
  done
  if [ -n "$running" ]; then
    say "stopping $(wc -w <<<"$running") running container(s) to change the network backend"
    # shellcheck disable=SC2086
    podman stop --time 20 $running >/dev/null
  fi
  # CNI leaves its bridges up with their subnets, which netavark would then refuse as taken.
  for name in "${bridges[@]}"; do
    [ -n "$name" ] && ip link delete "$name" 2>/dev/null || true
  done
  conf_set network network_backend '"netavark"'
  local index
  for index in "${!specs[@]}"; do
    eval "podman network create ${specs[index]}" >/dev/null
    say "made network ${networks[index]} again under netavark"
  done
  if [ -n "$running" ]; then
    # shellcheck disable=SC2086
    podman start $running >/dev/null
    say "started the $(wc -w <<<"$running") container(s) again"
  fi
}

# Two containers on one network: the second must resolve the first by name.
names_resolve() {
  local network=town-setup-dns server=town-setup-dns-server status=0
  podman rm --force --ignore "$server" >/dev/null 2>&1 || true
  podman network rm --force "$network" >/dev/null 2>&1 || true
  podman network create "$network" >/dev/null
  # aardvark-dns, started with the first container, complains that it has no syslog here: noise.
  dns_output=$(podman run --detach --name "$server" --network "$network" "${limits[@]}" "$image" sleep 60 2>&1) || return 1
  dns_output=$(podman run --rm --network "$network" "${limits[@]}" "$image" nslookup "$server" 2>&1) || status=$?
  podman rm --force --ignore --time 0 "$server" >/dev/null 2>&1 || true
  podman network rm --force "$network" >/dev/null 2>&1 || true
  return "$status"
}

probe_output=""
dns_output=""
changed_conf=0
ensure_containers_start

if [ "$(podman info --format '{{.Host.NetworkBackend}}')" != netavark ]; then
  say "containers cannot resolve each other by name with the CNI backend: moving to netavark with aardvark-dns"
  migrate_to_netavark
  changed_conf=1
  [ "$(podman info --format '{{.Host.NetworkBackend}}')" = netavark ] || die "Podman still does not use netavark"
fi
names_resolve || die "containers on one network do not resolve each other by name: $dns_output"
say "ok: containers on one network resolve each other by name"
# A running API service keeps the settings it started with; containers live
# on under conmon without it, and the daemon starts a new one when it needs it.
if [ "$changed_conf" = 1 ] && pkill -f '^podman system service' 2>/dev/null; then
  say "stopped the running 'podman system service' so that the next one reads $conf"
fi
