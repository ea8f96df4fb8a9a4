#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and the benchmarks, from
# Debian's `postgresql` package: initdb into DIR, listen on loopback only,
# trust authentication (nothing but this machine can reach it).
#
#   scripts/pg-cluster.sh start DIR [-c name=value ...]   prints the cluster's URL
#   scripts/pg-cluster.sh stop DIR
#
# PostgreSQL refuses to run as root, so under root the cluster runs as the
# `postgres` user that the package creates.
set -euo pipefail

action=${1:?usage: pg-cluster.sh start|stop DIR [-c name=value ...]}
dir=${2:?usage: pg-cluster.sh start|stop DIR [-c name=value ...]}
shift 2

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

case "$action" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    options="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=200"
    for option in "$@"; do options="$options $option"; done
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$options" -w -t 60 start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    ;;
  *)
    echo "unknown action $action (start or stop)" >&2
    exit 2
    ;;
esac
