"""The Observatory benchmark: `trent indicators` (the whole catalogue, every place,
period and breakdown, written to the lake) against DuckDB running the same statements
(`trent indicators --dump-sql`: every indicator's units selection and grouping into fine
groups, the roll-up of those fine groups to every place, period, breakdown, sex and age
group, and the population counts) on the same Parquet, in fresh processes, interleaved.
Before timing, the fine groups and the roll-up keys of every indicator are checked equal.

DuckDB's side is only that SQL: it leaves out the population roll-ups, the statistics,
SPC, funnels, the referral dashboard and writing the result, which trent's time includes.

    python observatory.py TRENT_BIN DATA_DIR [--reps 3]
"""
import argparse
import json
import re
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

DUCK_CHILD = r"""
import duckdb, glob, os, re, sys, time, json, warnings
warnings.simplefilter("ignore")
lake, sqldir = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
con = duckdb.connect()
con.execute("SET threads = 2")
for t in sorted(os.listdir(lake)):
    if os.path.isdir(os.path.join(lake, t)):
        con.execute(f"CREATE VIEW \"{t}\" AS SELECT * FROM read_parquet('{lake}/{t}/*.parquet')")
check = len(sys.argv) > 3 and sys.argv[3] == "check"
files = sorted(glob.glob(os.path.join(sqldir, '*.sql')))
names = [os.path.basename(f)[4:-4] for f in files]
rows = 0
per = {}
for k, f in enumerate(files):
    sql = open(f).read()
    # the one idiom that differs: a DATE as a day number
    sql = re.sub(r'CAST\(CAST\(([^()]+?) AS DATE\) AS INT\)', r"(CAST(\1 AS DATE) - DATE '1970-01-01')", sql)
    sql = re.sub(r'CAST\((t\."\w+") AS INT\)', r"(\1 - DATE '1970-01-01')", sql)
    # integer division: DataFusion's `/` on integers truncates, DuckDB's gives a fraction
    sql = re.sub(r'\b(__age|a) / 5\b', r'\1 // 5', sql)
    name = names[k]
    if sql.startswith('CREATE'):
        con.execute(sql)
    elif k + 1 < len(names) and names[k + 1] == name + '-rollup':
        # fine groups, kept for the roll-up statement that follows (trent keeps them too)
        con.execute(f"CREATE OR REPLACE TEMP TABLE __fine AS {sql}")
        n = con.execute("SELECT count(*) FROM __fine").fetchone()[0]
        rows += n
        per[name] = n
    elif check and name.endswith('-rollup'):
        # distinct (level, place, period, breakdown, value): trent's roll-up keys
        per[name] = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT level, place, period, bd, bv FROM ({sql}) x) y").fetchone()[0]
    else:
        n = con.execute(sql).to_arrow_table().num_rows  # columnar, as trent consumes its results
        rows += n
        per[name] = n
print(json.dumps({"seconds": time.perf_counter() - t0, "rows": rows, "per": per}))
"""


def timed(cmd):
    """Wall seconds and peak RSS (MiB, from /usr/bin/time -f %M on the last stderr line)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return wall, int(p.stderr.strip().splitlines()[-1]) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trent")
    ap.add_argument("data")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    sqldir = tempfile.mkdtemp(prefix="obs-sql-")
    subprocess.run([a.trent, "--data", a.data, "indicators", "--dump-sql", sqldir], check=True, capture_output=True)
    nstmt = len(glob.glob(os.path.join(sqldir, "*.sql")))
    lake = os.path.realpath(os.path.join(a.data, "current", "lake"))
    child = os.path.join(sqldir, "duck_child.py")
    open(child, "w").write(DUCK_CHILD)
    # same answers first: every indicator's fine groups, trent (TRENT_TRACE) vs DuckDB
    tr = subprocess.run([a.trent, "--data", a.data, "indicators"], capture_output=True, text=True,
                        env={**os.environ, "TRENT_TRACE": "1"}, check=True)
    fine = {}
    for line in tr.stderr.splitlines():
        m = re.match(r"\s+(\S+): query done in [\d.]+ s, (\d+) fine rows", line)
        if m:  # a second query of one indicator is its health question (HLE)
            key = m.group(1) + ("-health" if m.group(1) in fine else "")
            fine[key] = int(m.group(2))
        m = re.match(r"\s+(\S+): rolled up to (\d+) keys", line)
        if m and m.group(1) in fine:
            key = m.group(1) + ("-health-rollup" if m.group(1) + "-rollup" in fine else "-rollup")
            fine[key] = int(m.group(2))
    dk = json.loads(subprocess.run([sys.executable, child, lake, sqldir, "check"], capture_output=True,
                                   text=True, check=True).stdout)["per"]
    diff = {k: (v, dk.get(k)) for k, v in fine.items() if dk.get(k) != v}
    nroll = sum(k.endswith("-rollup") for k in fine)
    print(f"fine groups checked for {len(fine) - nroll} statements, roll-up keys for {nroll}: "
          f"{'all equal' if not diff else diff}")
    if diff:
        sys.exit("trent and DuckDB disagree; not timing")
    times = {"trent": [], "duckdb": []}
    mem = {"trent": 0.0, "duckdb": 0.0}
    for _ in range(a.reps):
        w, m = timed([a.trent, "--data", a.data, "indicators"])
        times["trent"].append(w)
        mem["trent"] = max(mem["trent"], m)
        w, m = timed([sys.executable, child, lake, sqldir])
        times["duckdb"].append(w)
        mem["duckdb"] = max(mem["duckdb"], m)
    mt, md = statistics.median(times["trent"]), statistics.median(times["duckdb"])
    print(f"| engine | median wall s ({a.reps} runs) | runs | peak MiB | ratio to trent |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| trent indicators (whole run) | {mt:.1f} | {', '.join(f'{x:.1f}' for x in times['trent'])} | {mem['trent']:.0f} | 1.00 |")
    print(f"| DuckDB {__import__('duckdb').__version__}, the {nstmt} statements (fine groups and their roll-up) | {md:.1f} | {', '.join(f'{x:.1f}' for x in times['duckdb'])} | {mem['duckdb']:.0f} | {md / mt:.2f} |")


if __name__ == "__main__":
    main()
