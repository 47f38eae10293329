#!/usr/bin/env bash
# Installs what `npm run bench` needs (Debian 12, as root): wrk (the load;
# setup-tests.sh installs it too), and nginx and HAProxy, which the ingress
# bench runs as its own child processes, with its own config files, to compare
# our ingress with.
# They are programs for the bench only: their system services are left
# neither running nor enabled (Debian starts and enables them on install).
# Idempotent.
set -euo pipefail

readonly services=(nginx haproxy)
readonly policy=/usr/sbin/policy-rc.d

say() { echo "setup-bench: $*"; }

[ "$(id -u)" -eq 0 ] || {
  echo "setup-bench: run me as root (apt-get)" >&2
  exit 1
}

# Refuses every service start during the install (see invoke-rc.d(8)), unless
# the machine already has a policy of its own, which is then left as it is.
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# setup-bench.sh: no service starts while it installs.\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
debian_packages=(wrk nginx-light haproxy)
# shellcheck source=lib/debian-packages.sh
source "$(dirname "$0")/lib/debian-packages.sh"
install_debian_packages --no-install-recommends

# Whatever started them anyway (a policy allowing it, an earlier install):
# stopped, and not started at boot, under systemd or SysV init alike.
for service in "${services[@]}"; do
  if [ -d /run/systemd/system ]; then
    if systemctl is-active --quiet "$service"; then
      systemctl stop "$service"
      say "stopped the $service service"
    fi
  elif [ -x "/etc/init.d/$service" ] && "/etc/init.d/$service" status >/dev/null 2>&1; then
    "/etc/init.d/$service" stop >/dev/null
    say "stopped the $service service"
  fi
  if systemctl is-enabled --quiet "$service" 2>/dev/null; then
    systemctl disable --quiet "$service" 2>/dev/null
    say "disabled the $service service"
  fi
  if [ -x "/etc/init.d/$service" ] && compgen -G "/etc/rc[2-5].d/S[0-9][0-9]$service" >/dev/null; then
    update-rc.d "$service" disable >/dev/null 2>&1
    say "disabled the $service init script"
  fi
done
say "ok: wrk $(dpkg-query -W -f='${Version}' wrk), nginx $(dpkg-query -W -f='${Version}' nginx-light), haproxy $(dpkg-query -W -f='${Version}' haproxy); their services are not running"
