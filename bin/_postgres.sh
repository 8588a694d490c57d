# Sourced by bin/test: makes sure PostgreSQL server binaries are on the machine (the tests start
# their own throwaway server). Debian's package is installed when missing and we may install it.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing PostgreSQL server binaries (Debian package postgresql)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL server binaries are missing: install Debian's 'postgresql' package" >&2
    exit 1
  fi
fi
