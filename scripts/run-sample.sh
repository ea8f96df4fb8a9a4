#!/usr/bin/env bash
# The main job on the bundled sample_data/, with the embedded SQLite default:
# a fresh database in sample-run/, the sample org configuration and series,
# then an import of sample_data/cards.csv (a drop with some bad rows).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cardbatch="$PWD/target/release/cardbatch"
rm -rf sample-run && mkdir sample-run && cd sample-run
grep -v '^#' ../sample_data/org.conf | while read -r key value; do
  "$cardbatch" org set "$key" "$value" >/dev/null
done
"$cardbatch" series create --json ../sample_data/series_gold.json >/dev/null
"$cardbatch" series create --json ../sample_data/series_ewallet.json >/dev/null
set -x
"$cardbatch" import cards ../sample_data/cards.csv --reject-report cards.rejects.csv --summary summary.json
