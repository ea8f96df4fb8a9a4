#!/usr/bin/env bash
# The main job on the bundled sample_data/, with the embedded SQLite default:
# a fresh database in sample-run/, the sample series, and a generation run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cardbatch="$PWD/target/release/cardbatch"
rm -rf sample-run && mkdir sample-run && cd sample-run
set -x
"$cardbatch" series create --json ../sample_data/series_gold.json
"$cardbatch" cards generate --series-code GOLD2026 --count 1000 --output gold-cards.csv
"$cardbatch" cards generate --series-code GOLD2026 --count 3
