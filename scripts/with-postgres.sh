#!/usr/bin/env bash
# Run a command against a private, throwaway PostgreSQL (Debian's packages):
#   scripts/with-postgres.sh .venv/bin/python -m pytest
# It starts a server on a free loopback port in a temporary folder, exports
# DATABASE_URL, runs the command, and removes the server whatever happens.
set -euo pipefail
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pgbin" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
home=$(mktemp -d /tmp/labapp-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# PostgreSQL refuses to run as root: use the postgres account when we are root.
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres "$home"
  as_owner=(runuser -u postgres --)
fi
cleanup() {
  "${as_owner[@]}" "$pgbin/pg_ctl" -D "$home/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$home"
}
trap cleanup EXIT
"${as_owner[@]}" "$pgbin/initdb" -D "$home/data" -A trust -U labapp -E UTF8 >/dev/null
"${as_owner[@]}" "$pgbin/pg_ctl" -D "$home/data" -l "$home/server.log" -w \
  -o "-p $port -k $home -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
"${as_owner[@]}" "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U labapp labapp
export DATABASE_URL="postgres://labapp@127.0.0.1:$port/labapp"
echo "[with-postgres] PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on port $port"
"$@"
