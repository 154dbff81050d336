"""The population health management benchmark: `trent stratify --model M` (features at
every index date the run needs, the indices, segments, scores, rising risk, reasons, and
writing the tables) against DuckDB running the same feature statements
(`trent stratify --dump-sql`) on the same Parquet, in fresh processes, interleaved.

DuckDB's side is only the SQL: it leaves out the indices, segments, scoring, explanations
and writing, which trent's whole-run time includes. A second trent row adds up, from the
run's own timings, the features and scores at both dates (features, evaluation features,
evaluation score, score, rising risk): the part the issue's target speaks of; the
evaluation's statistics are a row of their own.

    python phm.py TRENT_BIN DATA_DIR MODEL.json [--reps 3]
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

DUCK_CHILD = r"""
import duckdb, glob, os, sys, time, json, warnings
warnings.simplefilter("ignore")
lake, sqldir = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
con = duckdb.connect()
con.execute("SET threads = 2")
for t in sorted(os.listdir(lake)):
    if os.path.isdir(os.path.join(lake, t)):
        con.execute(f"CREATE VIEW \"{t}\" AS SELECT * FROM read_parquet('{lake}/{t}/*.parquet')")
per = {}
for f in sorted(glob.glob(os.path.join(sqldir, '*.sql'))):
    per[os.path.basename(f)[:-4]] = con.execute(open(f).read()).to_arrow_table().num_rows
print(json.dumps({"seconds": time.perf_counter() - t0, "per": per}))
"""


def timed(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return wall, int(p.stderr.strip().splitlines()[-1]) / 1024, p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trent")
    ap.add_argument("data")
    ap.add_argument("model")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    sqldir = tempfile.mkdtemp(prefix="phm-sql-")
    subprocess.run([a.trent, "--data", a.data, "stratify", "--model", a.model, "--dump-sql", sqldir],
                   check=True, capture_output=True)
    nstmt = len(glob.glob(os.path.join(sqldir, "*.sql")))
    lake = os.path.realpath(os.path.join(a.data, "current", "lake"))
    child = os.path.join(sqldir, "duck_child.py")
    open(child, "w").write(DUCK_CHILD)
    times = {"trent": [], "duckdb": [], "fs": [], "ev": []}
    mem = {"trent": 0.0, "duckdb": 0.0}
    checked = False
    for _ in range(a.reps):
        w, m, out = timed([a.trent, "--data", a.data, "stratify", "--model", a.model])
        times["trent"].append(w)
        mem["trent"] = max(mem["trent"], m)
        people = int(re.search(r"stratified (\d+) people", out).group(1))
        # features and scores at both dates, from the run's own timings (the part of the
        # run DuckDB's statements are the equivalent of, plus scoring)
        steps = dict((k.strip(), float(v)) for k, v in re.findall(r"([a-z ]+) ([0-9.]+) s", out.split("timings:")[-1]))
        # (the evaluation's statistics — AUROC and its interval, calibration, the tables by
        # group — are reported apart: neither features nor scores, and DuckDB does none)
        times["fs"].append(sum(steps.get(k.strip(), 0.0) for k in
                               ["features", "evaluation features", "evaluation score", "score", "rising risk"]))
        times["ev"].append(steps.get("evaluate", 0.0))
        w, m, out = timed([sys.executable, child, lake, sqldir])
        times["duckdb"].append(w)
        mem["duckdb"] = max(mem["duckdb"], m)
        if not checked:
            per = json.loads(out)["per"]
            first = sorted(k for k in per if k.endswith("-features"))[0]
            if per[first] != people:
                sys.exit(f"trent scored {people} people, DuckDB's features statement gave {per[first]}")
            print(f"same population: {people} people at the scoring date")
            checked = True
    mt, md = statistics.median(times["trent"]), statistics.median(times["duckdb"])
    print(f"| engine | median wall s ({a.reps} runs) | runs | peak MiB | ratio to trent |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| trent stratify --model (whole run) | {mt:.1f} | {', '.join(f'{x:.1f}' for x in times['trent'])} | {mem['trent']:.0f} | 1.00 |")
    mf = statistics.median(times["fs"])
    print(f"| trent: features and scores at both dates (the run's own timings) | {mf:.1f} | {', '.join(f'{x:.1f}' for x in times['fs'])} | | |")
    me = statistics.median(times["ev"])
    print(f"| trent: the evaluation's statistics (not in the row above) | {me:.1f} | {', '.join(f'{x:.1f}' for x in times['ev'])} | | |")
    print(f"| DuckDB {__import__('duckdb').__version__}, the {nstmt} statements only | {md:.1f} | {', '.join(f'{x:.1f}' for x in times['duckdb'])} | {mem['duckdb']:.0f} | {md / mt:.2f} |")


if __name__ == "__main__":
    main()
