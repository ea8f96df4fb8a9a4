#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests on real
# databases. Integration tests run on SQLite files and on a throwaway
# PostgreSQL cluster started here (scripts/pg-cluster.sh) and stopped at the end.
# What the machine lacks (PostgreSQL, sqlite3, Chromium) is installed first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

pgdir=$(mktemp -d -t cardbatch-pg.XXXXXX)
cleanup() {
  scripts/pg-cluster.sh stop "$pgdir" || true
  rm -rf "$pgdir"
}
trap cleanup EXIT
# Durability is not what these tests check, so the throwaway cluster skips fsync.
CARDBATCH_TEST_POSTGRES_URL=$(scripts/pg-cluster.sh start "$pgdir" -c fsync=off -c synchronous_commit=off -c full_page_writes=off)
export CARDBATCH_TEST_POSTGRES_URL
export CARDBATCH_REQUIRE_POSTGRES=1

cargo test --locked --all-targets "$@"
