#!/usr/bin/env bash
# Lists Debian packages that were installed on this machine by hand after its
# image was made and that no project script installs: what a green CI run here
# could owe to a step a fresh machine does not have. Reads apt's history
# (packages asked for, not their dependencies) from the image's creation on
# (/.dockerenv's time, else the system's first boot: /etc/machine-id), and the
# `debian_packages=(…)` lists of scripts/*.sh and os/*.sh. Prints; never fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

since=$(stat -c %Y /.dockerenv 2>/dev/null || stat -c %Y /etc/machine-id 2>/dev/null || echo 0)

# The packages the project's scripts install.
project=$(awk '
  /^[ \t]*debian_packages=\(/ { collecting = 1; sub(/^[^(]*\(/, "") }
  collecting { line = $0; done = sub(/\).*/, "", line); gsub(/#.*/, "", line); print line; if (done) collecting = 0 }
' scripts/*.sh os/*.sh | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)

# Packages asked for by name in apt runs since then (apt marks dependencies "automatic").
asked=$(
  { cat /var/log/apt/history.log 2>/dev/null; zcat /var/log/apt/history.log.*.gz 2>/dev/null; } |
    TZ=UTC awk -v since="$since" '
      /^Start-Date:/ {
        gsub(/[-:]/, " ", $0); split($0, f, " ")
        stamp = mktime(f[3] " " f[4] " " f[5] " " f[6] " " f[7] " " f[8])
        recent = stamp > since
      }
      recent && /^Install:/ {
        sub(/^Install: /, "")
        n = split($0, entries, /\), /)
        for (i = 1; i <= n; i++) if (entries[i] !~ /automatic/) { split(entries[i], name, ":"); print name[1] }
      }' | sort -u
) || true

extra=()
for package in $asked; do
  grep -qxF "$package" <<<"$project" && continue
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || continue
  extra+=("$package")
done
if [ "${#extra[@]}" -gt 0 ]; then
  echo "hand-installed: Debian packages on this machine that no project script installs: ${extra[*]}"
  echo "hand-installed: a fresh machine lacks them; add them to a script's debian_packages if the project needs them"
else
  echo "hand-installed: none (every Debian package asked for since the image was made comes from a project script)"
fi
