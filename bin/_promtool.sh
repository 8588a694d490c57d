# Sourced by bin/test: makes sure promtool is on the machine (the alert rules are checked and tested
# with `promtool check rules` and `promtool test rules`). Debian's `prometheus` package ships it and
# is installed when it is missing and we may install it; its service is never started: a
# policy-rc.d refuses every service start during the install, and is removed afterwards.
if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing promtool (Debian package prometheus, its service not started)"
    policy=/usr/sbin/policy-rc.d
    ours=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\n# Left by bin/test while it installs prometheus: no service starts.\nexit 101\n' > "$policy"
      chmod 755 "$policy"
      ours=1
    fi
    installed=0
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      prometheus >/dev/null && installed=1
    if [ -n "$ours" ]; then rm -f "$policy"; fi
    if [ "$installed" != 1 ]; then
      echo "installing Debian's 'prometheus' package (for promtool) failed" >&2
      exit 1
    fi
  else
    echo "promtool is missing: install Debian's 'prometheus' package" >&2
    exit 1
  fi
fi
