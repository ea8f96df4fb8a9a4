#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests on real
# databases. Integration tests run on SQLite files and on a throwaway
# PostgreSQL cluster started here (scripts/pg-cluster.sh) and stopped at the end.
# What the machine lacks (PostgreSQL, sqlite3, Chromium) is installed first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

pgdir=$(mktemp -d -t cardbatch-pg.XXXXXX)
citusdir=$(mktemp -d -t cardbatch-citus.XXXXXX)
cleanup() {
  scripts/pg-cluster.sh stop "$pgdir" || true
  scripts/citus-cluster.sh stop "$citusdir" || true
  rm -rf "$pgdir" "$citusdir"
}
trap cleanup EXIT
# Durability is not what these tests check, so the throwaway clusters skip fsync.
fast=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
CARDBATCH_TEST_POSTGRES_URL=$(scripts/pg-cluster.sh start "$pgdir" "${fast[@]}")
export CARDBATCH_TEST_POSTGRES_URL
export CARDBATCH_REQUIRE_POSTGRES=1

# The Citus half: a coordinator and two workers, where the extension is
# installed (Citus's own packages; it is not in Debian's archive). Four
# shards per table keep each test's `db distribute` quick.
if scripts/citus-cluster.sh available; then
  CARDBATCH_TEST_CITUS_URLS=$(scripts/citus-cluster.sh start "$citusdir" "${fast[@]}" -c citus.shard_count=4)
  export CARDBATCH_TEST_CITUS_URLS
elif [ "${CARDBATCH_REQUIRE_CITUS:-}" = 1 ]; then
  echo "scripts/test.sh: CARDBATCH_REQUIRE_CITUS=1 but the citus extension is not installed" >&2
  exit 1
else
  echo "scripts/test.sh: the Citus half is skipped: the citus extension is not installed (see the README, \"Citus\")" >&2
fi

cargo test --locked --all-targets "$@"
