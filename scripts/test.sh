#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests on real databases.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --all-targets "$@"
