#!/usr/bin/env bash
# A throwaway Citus cluster for the tests and the benchmarks: a coordinator
# and two workers on loopback, each a cluster of scripts/pg-cluster.sh with
# `shared_preload_libraries = 'citus'`. Needs the citus extension installed
# into the machine's PostgreSQL (Citus's packages; see the README).
#
#   scripts/citus-cluster.sh start DIR [-c name=value ...]   prints the coordinator's URL, then each worker's
#   scripts/citus-cluster.sh stop DIR
#   scripts/citus-cluster.sh available                        exit 0 when the citus extension is installed
#
# Each node's `postgres` database is left without the extension: Citus does
# not propagate CREATE DATABASE, so whoever makes a database for cardbatch
# creates it on every node, runs `CREATE EXTENSION citus` in each, and on
# the coordinator's `citus_set_coordinator_host` and `citus_add_node` per
# worker, then `cardbatch db distribute` (tests/suite/common.rs does).
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:?usage: citus-cluster.sh start|stop DIR [-c name=value ...] | available}
nodes=(coordinator worker1 worker2)

case "$action" in
  available)
    sharedir=$(ls -d /usr/share/postgresql/*/extension 2>/dev/null | sort -V | tail -n 1)
    [ -n "$sharedir" ] && [ -f "$sharedir/citus.control" ]
    ;;
  start)
    dir=${2:?usage: citus-cluster.sh start DIR [-c name=value ...]}
    shift 2
    mkdir -p "$dir"
    # The nodes run as `postgres` under root (scripts/pg-cluster.sh), and must reach their directories.
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    urls=()
    for node in "${nodes[@]}"; do
      urls+=("$(scripts/pg-cluster.sh start "$dir/$node" -c shared_preload_libraries=citus "$@")")
    done
    echo "${urls[*]}"
    ;;
  stop)
    dir=${2:?usage: citus-cluster.sh stop DIR}
    for node in "${nodes[@]}"; do
      scripts/pg-cluster.sh stop "$dir/$node" || true
    done
    ;;
  *)
    echo "unknown action $action (start, stop or available)" >&2
    exit 2
    ;;
esac
