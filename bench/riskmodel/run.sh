#!/usr/bin/env bash
# Benchmark trent-riskmodel's boosted trees against LightGBM on the same synthetic
# matrix and split, in one run. Usage: bench/riskmodel/run.sh [rows] [rounds]
# Needs Python 3 and network access for the first `pip install` (venv under /tmp).
set -euo pipefail
ROWS=${1:-1000000}
ROUNDS=${2:-200}
LEAVES=${LEAVES:-31}
LR=${LR:-0.1}
THREADS=${THREADS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV=${VENV:-/tmp/riskmodel-venv}
WORK=${WORK:-/tmp/riskmodel-bench}
TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/trent-target-trent-riskmodel}
# LightGBM's OpenMP threads spin while waiting by default, which collapses on a shared
# 2-core machine (25 s instead of 10 s for 40 rounds here); passive waiting is fairer.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mkdir -p "$WORK"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q lightgbm scikit-learn pandas
fi
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release -j 1 -p trent-riskmodel --example train_csv)
BIN="$TARGET/release/examples/train_csv"
if [ ! -f "$WORK/train-$ROWS.csv" ]; then
  "$BIN" generate --rows "$ROWS" --seed 1 --train-out "$WORK/train-$ROWS.csv" --test-out "$WORK/test-$ROWS.csv"
fi
"$VENV/bin/python" "$HERE/bench.py" "$WORK/train-$ROWS.csv" "$WORK/test-$ROWS.csv" "$BIN" \
  "$ROUNDS" "$LEAVES" "$LR" "$THREADS" "$WORK"
