#!/usr/bin/env bash
# Link the same synthetic records with trent-link and Splink (DuckDB backend) in one
# run; print precision / recall / F1 (pairwise, from each tool's clusters, scored by
# the same evaluator) and wall time of each.
#
# Usage: bench/linkage/run.sh [PEOPLE=600000] [SEED=42]
# Needs python3 (a venv is made under /tmp) and cargo. All data are synthetic.
set -euo pipefail
PEOPLE=${1:-600000}
SEED=${2:-42}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${VENV:-/tmp/trent-linkage-venv}
DATA=${DATA:-/tmp/trent-linkage-$PEOPLE-$SEED}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/trent-target-trent-link}

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q splink duckdb pandas
fi
(cd "$ROOT" && cargo build --release -j 1 -p trent-link --examples -q)
EX=$CARGO_TARGET_DIR/release/examples
mkdir -p "$DATA"
[ -f "$DATA/records.csv" ] || "$EX/gen_identities" "$PEOPLE" "$SEED" "$DATA"
echo "records: $(($(wc -l < "$DATA/records.csv") - 1)) from $PEOPLE people"

echo "== trent-link"
T0=$(date +%s.%N)
"$EX/link_csv" "$DATA/records.csv" "$DATA/trent.csv" 2> "$DATA/trent.log"
T1=$(date +%s.%N)
echo "trent_wall_seconds=$(echo "$T1 - $T0" | bc)  (process: read CSV, link, write CSV)"
"$EX/evaluate" "$DATA/truth.csv" "$DATA/trent.csv" person_key

echo "== splink $("$VENV/bin/python" -c 'import splink; print(splink.__version__)')"
T0=$(date +%s.%N)
"$VENV/bin/python" "$ROOT/bench/linkage/splink_link.py" "$DATA/records.csv" "$DATA/splink.csv" 2> "$DATA/splink.log"
T1=$(date +%s.%N)
echo "splink_wall_seconds=$(echo "$T1 - $T0" | bc)  (process: python start, read CSV, preprocess, link, write CSV)"
"$EX/evaluate" "$DATA/truth.csv" "$DATA/splink.csv" cluster_id
