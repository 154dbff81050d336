#!/usr/bin/env python3
"""How PostgreSQL takes 1,000 resource rows, three ways, on the record's own schema: the
`jsonb_array_elements` upsert the store uses for rewrites, the plain insert it uses for
resources a commit creates, and `COPY` (which the sqlx `Any` driver does not expose).

    python3 bench/pg_inserts.py [--reps 3]

A throwaway cluster (bench/record.py's `pg_cluster`: initdb in a temp dir, fsync on),
`psql` with `\\timing`; prints each statement's milliseconds (docs/benchmarks.md, issue 7).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import record  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.path.join(HERE, "..", "crates", "trent-record", "migrations", "0001_record.sql")
COLS = "res_type, res_id, version, person_id, last_updated, json, deleted"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="trent-pg-inserts-")
    url, stop = record.pg_cluster(tmp)
    try:
        body = json.dumps({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "271649006"}]},
            "subject": {"reference": "Patient/0b9e7d1c-0000-4000-8000-000000000001"},
            "effectiveDateTime": "2025-02-01", "valueQuantity": {"value": 123, "unit": "mm[Hg]"},
            "id": "x", "meta": {"versionId": "1", "lastUpdated": "2026-11-23T22:00:00.000000Z"}})
        sql = [open(SCHEMA).read(), "\\timing on"]
        ways = ["upsert from jsonb", "insert from jsonb", "COPY"]
        order = []
        for k in range(args.reps * len(ways)):
            way = ways[k % len(ways)]
            order.append(way)
            rows = [["Observation", f"{k:08d}-{i:04d}", 1, f"p{i % 1400}",
                     "2026-11-23T22:00:00.000000Z", body] for i in range(1000)]
            if way == "COPY":
                sql.append(f"COPY resource ({COLS}) FROM STDIN;")
                for r in rows:
                    sql.append("\t".join([r[0], r[1], str(r[2]), r[3], r[4],
                                          r[5].replace("\\", "\\\\"), "0"]))
                sql.append("\\.")
            else:
                j = json.dumps(rows).replace("'", "''")
                tail = (" ON CONFLICT (res_type, res_id) DO UPDATE SET version = excluded.version"
                        if way.startswith("upsert") else "")
                sql.append(f"INSERT INTO resource ({COLS}) SELECT x->>0, x->>1, (x->>2)::bigint, "
                           f"x->>3, x->>4, x->>5, 0 FROM jsonb_array_elements('{j}'::jsonb) AS x{tail};")
        path = os.path.join(tmp, "inserts.sql")
        open(path, "w").write("\n".join(sql) + "\n")
        out = subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-f", path],
                             capture_output=True, text=True, check=True).stdout
        times = [float(t) for t in re.findall(r"Time: ([0-9.]+) ms", out)][-len(order):]
        for way in ways:
            ms = [t for w, t in zip(order, times) if w == way]
            print(f"{way}: " + ", ".join(f"{t:.1f}" for t in ms) + " ms per 1,000 rows")
    finally:
        stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
