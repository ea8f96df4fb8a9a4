#!/usr/bin/env bash
# Installs what the test suite needs and the machine lacks, from Debian's
# packages: sqlite3 (the benchmarks' and tests' peer), PostgreSQL (server and
# client: the tests start a throwaway cluster), python3, and Chromium (the
# HTML run report is rendered in it). Does nothing when all are there.
set -euo pipefail

missing=()
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v psql >/dev/null || missing+=(postgresql-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v python3 >/dev/null || missing+=(python3)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
command -v script >/dev/null || missing+=(bsdutils)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
