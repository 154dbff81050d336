#!/usr/bin/env bash
# Side-by-side query benchmark: `trent query` against DuckDB, Polars and
# datafusion-python on the same lake. Prints a Markdown table; writes no result files.
#
#   bench/peers/run.sh [DATA_DIR] [queries.py options, e.g. --reps 3 --queries a,b]
#
# DATA_DIR defaults to /tmp/bench-lake and is made at full scale if it holds no lake.
# TRENT_BIN names the trent binary (default $CARGO_TARGET_DIR/release/trent, else
# target/release/trent in this repo); it is never built here, so a benchmark never
# silently includes a compile. TRENT_BENCH_VENV names the peers' venv.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
data="${1:-/tmp/bench-lake}"
shift || true
venv="${TRENT_BENCH_VENV:-$HOME/.cache/trent-bench-venv}"

if [[ -n "${TRENT_BIN:-}" ]]; then
    bin="$TRENT_BIN"
elif [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    bin="$CARGO_TARGET_DIR/release/trent"
else
    bin="$repo/target/release/trent"
fi
if [[ ! -x "$bin" ]]; then
    echo "run.sh: no trent binary at $bin (cargo build --release, or set TRENT_BIN)" >&2
    exit 2
fi

# A venv of its own, outside the checkout, so the pins neither touch nor depend on
# whatever Python packages the machine has. pip is a no-op when the pins are met.
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"

# Full scale (1.37 M people, ~90 M rows), the size the issue's targets are set at.
if [[ ! -e "$data/current/lake/catalog.json" ]]; then
    echo "run.sh: making a full-scale lake in $data" >&2
    "$bin" synth --scale 1.0 --out "$data" >&2
fi

exec "$venv/bin/python" "$here/queries.py" "$data" --trent "$bin" "$@"
