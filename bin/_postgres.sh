# Sourced by bin/test: makes sure PostgreSQL server binaries are on the machine (the tests start
# their own throwaway server, never a system cluster). Debian's package is installed when missing
# and we may install it; as root the server runs as the package's `postgres` user (PostgreSQL
# refuses to run as root), so that user must exist too.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing PostgreSQL server binaries (Debian package postgresql)"
    # No cluster of its own: the tests never use one, and it would only start and take port 5432.
    mkdir -p /etc/postgresql-common
    grep -qs '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf \
      || echo "create_main_cluster = false" >> /etc/postgresql-common/createcluster.conf
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL server binaries are missing: install Debian's 'postgresql' package" >&2
    exit 1
  fi
fi
if [ "$(id -u)" = 0 ] && ! command -v runuser >/dev/null; then
  echo "runuser (util-linux) is missing: the tests run the server as 'postgres' through it" >&2
  exit 1
fi
