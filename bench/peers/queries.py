#!/usr/bin/env python3
"""Side-by-side benchmark: trent's `query` command against DuckDB, Polars and
datafusion-python, running the same SQL over the same Parquet files of one lake.

Usage: queries.py DATA_DIR [--trent BIN] [--reps N] [--queries a,b] [--engines e1,e2]

Every measurement is one fresh process (one engine, one query), so no engine keeps a
cache between queries and each peak RSS is the engine's own. The files themselves are
warm in the page cache for all: the agreement pass reads them first. Runs are interleaved and the engine order is
rotated each repetition, because this machine is shared and noisy: any drift then falls
on all engines alike. Results are checked for agreement before anything is timed, and
every timed run's result is checked again; a disagreement or a failure makes the exit
status non-zero.

The same script is its own worker (`--worker ENGINE`), so the peers need nothing but the
venv's interpreter.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENGINES = ["trent", "duckdb", "polars", "datafusion"]
REPS = 5

# One SQL text per query, run unchanged by every engine. {from_ts}/{to_ts} bound the
# last 365 days of the lake's span and {fy_start} the last financial year; they come
# from the catalog so the queries follow whatever span the lake was made with.
QUERIES: dict[str, tuple[str, str]] = {
    "0": (
        "startup: SELECT 1 (process start + registering the lake)",
        "SELECT 1 AS one",
    ),
    "a": (
        "per-person activity counts by setting, last 365 days",
        """
WITH per_person AS (
    SELECT person_id,
           SUM(CASE WHEN setting = 'gp' THEN 1 ELSE 0 END) AS gp,
           SUM(CASE WHEN setting = 'ae' THEN 1 ELSE 0 END) AS ae,
           SUM(CASE WHEN setting = 'apc' THEN 1 ELSE 0 END) AS apc,
           SUM(CASE WHEN setting = 'op' THEN 1 ELSE 0 END) AS op,
           SUM(CASE WHEN setting = 'community' THEN 1 ELSE 0 END) AS community,
           SUM(CASE WHEN setting = 'mental_health' THEN 1 ELSE 0 END) AS mental_health,
           SUM(CASE WHEN setting = 'ambulance' THEN 1 ELSE 0 END) AS ambulance,
           SUM(CASE WHEN setting = 'nhs111' THEN 1 ELSE 0 END) AS nhs111,
           SUM(CASE WHEN setting = 'social_care_assessment' THEN 1 ELSE 0 END) AS sc_assessment
    FROM activity
    WHERE start_ts >= TIMESTAMP '{from_ts}' AND start_ts < TIMESTAMP '{to_ts}'
    GROUP BY person_id
)
SELECT COUNT(*) AS persons,
       SUM(gp) AS gp, SUM(ae) AS ae, SUM(apc) AS apc, SUM(op) AS op,
       SUM(community) AS community, SUM(mental_health) AS mental_health,
       SUM(ambulance) AS ambulance, SUM(nhs111) AS nhs111,
       SUM(sc_assessment) AS sc_assessment
FROM per_person
""",
    ),
    "b": (
        "A&E four-hour performance by provider and financial year",
        # A null departure (still in the department at the end of the span) counts as
        # not within four hours: the CASE falls through to 0.
        """
WITH ae AS (
    SELECT provider_code,
           EXTRACT(YEAR FROM start_ts)
             - CASE WHEN EXTRACT(MONTH FROM start_ts) < 4 THEN 1 ELSE 0 END AS fy,
           CASE WHEN end_ts <= start_ts + INTERVAL '4 hours' THEN 1 ELSE 0 END AS within_4h
    FROM activity
    WHERE setting = 'ae'
)
SELECT provider_code, fy,
       COUNT(*) AS attendances,
       SUM(within_4h) AS within_4h,
       CAST(SUM(within_4h) AS DOUBLE) / CAST(COUNT(*) AS DOUBLE) AS share_within_4h
FROM ae
GROUP BY provider_code, fy
ORDER BY provider_code, fy
""",
    ),
    "c": (
        "emergency admissions per 1,000 by IMD decile, last financial year",
        # Denominator: people registered at any time in the year (a crude population,
        # not person-years); numerator: emergency admitted spells starting in the year.
        """
WITH pop AS (
    SELECT imd_decile, COUNT(*) AS people
    FROM person
    WHERE registration_start < DATE '{to_date}'
      AND (registration_end IS NULL OR registration_end >= DATE '{fy_start}')
    GROUP BY imd_decile
),
adm AS (
    SELECT p.imd_decile, COUNT(*) AS admissions
    FROM activity a
    JOIN person p ON a.person_id = p.person_id
    WHERE a.setting = 'apc' AND a.admission_method = 'emergency'
      AND a.start_ts >= TIMESTAMP '{fy_start} 00:00:00' AND a.start_ts < TIMESTAMP '{to_ts}'
    GROUP BY p.imd_decile
)
SELECT pop.imd_decile, pop.people, adm.admissions,
       1000.0 * CAST(adm.admissions AS DOUBLE) / CAST(pop.people AS DOUBLE) AS per_1000
FROM pop
JOIN adm ON adm.imd_decile = pop.imd_decile
ORDER BY pop.imd_decile
""",
    ),
    "d": (
        "top-10 primary diagnoses of admitted care by total cost",
        """
SELECT primary_diagnosis,
       COUNT(*) AS spells,
       SUM(cost_gbp) AS cost_gbp
FROM activity
WHERE setting = 'apc' AND primary_diagnosis IS NOT NULL
GROUP BY primary_diagnosis
ORDER BY cost_gbp DESC, primary_diagnosis
LIMIT 10
""",
    ),
    "e": (
        "people with 2+ long-term conditions (distinct GP-recorded codes)",
        # The GP record (SNOMED) is the long-term-condition register: one code per
        # condition. Hospital ICD-10 secondary diagnoses repeat the same conditions
        # under other codes and add non-LTC codes, so counting them too would double up.
        """
WITH per_person AS (
    SELECT person_id, COUNT(DISTINCT code) AS ltcs
    FROM condition
    WHERE code_system = 'SNOMED'
    GROUP BY person_id
)
SELECT COUNT(*) AS people_with_any,
       SUM(CASE WHEN ltcs >= 2 THEN 1 ELSE 0 END) AS people_with_2plus,
       SUM(ltcs) AS total_conditions
FROM per_person
""",
    ),
}


# ---------------------------------------------------------------- the lake


def lake_tables(data_dir: Path) -> tuple[Path, dict]:
    """The published generation's lake folder and catalog.

    The `current` symlink is resolved once so that every engine reads the same
    generation even if a new one is published mid-run (a `trent query` process resolves
    `current` for itself, so do not publish while benchmarking). Only `lake/` is ever
    handed to an engine: the identity vault beside it is not.
    """
    generation = (data_dir / "current").resolve(strict=True)
    lake = generation / "lake"
    catalog = json.loads((lake / "catalog.json").read_text())
    return lake, catalog


def sql_params(catalog: dict) -> dict[str, str]:
    end = dt.date.fromisoformat(catalog["span_end"])
    to = end + dt.timedelta(days=1)  # exclusive upper bound: the span's end day counts
    frm = to - dt.timedelta(days=365)
    fy_start = dt.date(end.year if end.month >= 4 else end.year - 1, 4, 1)
    return {
        "from_ts": f"{frm} 00:00:00",
        "to_ts": f"{to} 00:00:00",
        "to_date": str(to),
        "fy_start": str(fy_start),
    }


# ---------------------------------------------------------------- workers


def worker(engine: str, lake: Path, sql: str) -> None:
    """Run one query in one engine and print its result and in-engine time as JSON.

    The clock starts after the engine is imported (interpreter start and imports are
    in the process wall time the driver measures) and stops once the result is in
    Python objects.

    Every engine reads each table's Parquet files as they are, with no schema imposed
    and no decoding: the lake stores instants as TIMESTAMP_MICROS (not adjusted to
    UTC), which DuckDB reads as TIMESTAMP, Polars as Datetime("us") and DataFusion as
    Timestamp(Microsecond, None), i.e. naive timestamps, as trent itself does.
    """
    catalog = json.loads((lake / "catalog.json").read_text())
    tables = [t["name"] for t in catalog["tables"]]
    if engine == "duckdb":
        import duckdb

        t0 = time.perf_counter()
        con = duckdb.connect()
        for t in tables:
            glob = lake / t / "*.parquet"
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{glob}')")
        rows = con.execute(sql).fetchall()
        cols = [d[0] for d in con.description]
    elif engine == "polars":
        import polars as pl

        t0 = time.perf_counter()
        ctx = pl.SQLContext()
        for t in tables:
            ctx.register(t, pl.scan_parquet(lake / t / "*.parquet"))
        df = ctx.execute(sql).collect()
        rows, cols = df.rows(), df.columns
    elif engine == "datafusion":
        from datafusion import SessionContext

        t0 = time.perf_counter()
        ctx = SessionContext()
        for t in tables:
            ctx.register_parquet(t, f"{lake / t}/")
        table = ctx.sql(sql).to_arrow_table()
        rows = [tuple(r.values()) for r in table.to_pylist()]
        cols = table.column_names
    else:
        raise SystemExit(f"unknown engine {engine}")
    seconds = time.perf_counter() - t0
    json.dump({"columns": cols, "rows": [list(r) for r in rows], "seconds": seconds},
              sys.stdout, default=str)


def versions() -> dict[str, str]:
    import datafusion
    import duckdb
    import polars
    import pyarrow

    return {
        "duckdb": duckdb.__version__,
        "polars": polars.__version__,
        "datafusion": datafusion.__version__,
        "pyarrow": pyarrow.__version__,
        "python": platform.python_version(),
    }


def locked_datafusion() -> str:
    """DataFusion's version as locked in this checkout (trent does not print it; the
    binary is assumed to be built from the checkout)."""
    lock = Path(__file__).resolve().parents[2] / "Cargo.lock"
    try:
        blocks = lock.read_text().split("[[package]]")
    except OSError:
        return "DataFusion version unknown"
    for b in blocks:
        if '\nname = "datafusion"\n' in b:
            return "DataFusion " + b.split('version = "')[1].split('"')[0] + " per Cargo.lock"
    return "DataFusion version unknown"


# ---------------------------------------------------------------- measuring


class Run:
    """One measured process: wall time, peak RSS, and its parsed result or error."""

    def __init__(self, wall: float, rss_kib: int, ok: bool, result=None, seconds=None,
                 error: str = ""):
        self.wall, self.rss_kib, self.ok = wall, rss_kib, ok
        self.result, self.seconds, self.error = result, seconds, error


def measure(argv: list[str]) -> tuple[float, int, int, str, str]:
    """Run argv; return wall seconds, its own peak RSS (KiB), exit code, stdout, stderr.

    os.wait4 gives the rusage of exactly this child; RUSAGE_CHILDREN would give the
    maximum over every child reaped so far. Output goes to files, not pipes, so the
    child never blocks on a full pipe and Popen never reaps it before wait4 does.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (wall, usage.ru_maxrss, p.returncode,
                out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def parse_csv(text: str) -> tuple[list[str], list[list[str | None]]]:
    """Read `trent query --format csv` output: a header row, then one row per result
    row. Every cell is text (normalise() turns numeric text into numbers); an empty
    field is null, which CSV cannot tell from an empty string, so no query here may
    return an empty string.
    """
    records = list(csv.reader(io.StringIO(text)))
    if not records:
        raise ValueError(f"no CSV header in trent output: {text[:200]!r}")
    return records[0], [[c if c != "" else None for c in row] for row in records[1:]]


def run_one(engine: str, sql: str, lake: Path, data_dir: Path, trent: str) -> Run:
    if engine == "trent":
        argv = [trent, "query", sql, "--data", str(data_dir), "--format", "csv"]
    else:
        argv = [sys.executable, __file__, "--worker", engine, str(lake), sql]
    wall, rss, code, out, err = measure(argv)
    if code != 0:
        return Run(wall, rss, False, error=(err.strip() or out.strip())[-2000:])
    try:
        if engine == "trent":
            cols, rows = parse_csv(out)
            return Run(wall, rss, True, (cols, rows))
        doc = json.loads(out)
        return Run(wall, rss, True, (doc["columns"], doc["rows"]), doc["seconds"])
    except Exception as e:  # noqa: BLE001 - an unreadable result is a failed run
        return Run(wall, rss, False, error=f"unreadable output: {e}")


# ---------------------------------------------------------------- agreement


def normalise(v):
    """One comparable value from an engine's cell: numbers (and numeric text, since
    trent's CSV output is text) as float, other text as is, null and '' as None."""
    if v is None or v == "":
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(v)
    except ValueError:
        return v


def disagreement(ref: tuple, got: tuple) -> str:
    """Empty if the results agree (row count, column count, and every cell; floats to
    a relative 1e-9, enough for sums taken in a different order); else the first
    difference."""
    (_, rrows), (_, grows) = ref, got
    if len(rrows) != len(grows):
        return f"{len(grows)} rows, reference has {len(rrows)}"
    for i, (r, g) in enumerate(zip(rrows, grows)):
        if len(r) != len(g):
            return f"row {i}: {len(g)} columns, reference has {len(r)}"
        for j, (a, b) in enumerate(zip(map(normalise, r), map(normalise, g))):
            same = (math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
                    if isinstance(a, float) and isinstance(b, float) else a == b)
            if not same:
                return f"row {i} column {ref[0][j]!r}: {g[j]!r}, reference {r[j]!r}"
    return ""


# ---------------------------------------------------------------- driver


def fmt_s(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path, help="trent data directory (holds current/)")
    ap.add_argument("--trent", default=os.environ.get("TRENT_BIN", "trent"))
    ap.add_argument("--reps", type=int, default=REPS, choices=range(1, 101),
                    metavar="N", help=f"timed repetitions (default {REPS})")
    ap.add_argument("--queries", default=",".join(QUERIES))
    ap.add_argument("--engines", default=",".join(ENGINES))
    args = ap.parse_args()

    data_dir = args.data_dir.resolve()
    lake, catalog = lake_tables(data_dir)
    params = sql_params(catalog)
    queries = [q for q in args.queries.split(",") if q]
    engines = [e for e in args.engines.split(",") if e]
    sql = {q: QUERIES[q][1].strip().format(**params) for q in queries}
    # The first engine listed (trent by default) is the reference for agreement.
    ref_engine = engines[0]

    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    problems: list[str] = []
    reference: dict[str, tuple] = {}
    runs: dict[tuple[str, str], list[Run]] = {(q, e): [] for q in queries for e in engines}

    # Agreement first, untimed (it also brings the files into the page cache, so every
    # timed run reads warm files): no point timing an engine that answers differently.
    log(f"checking agreement on {lake} ...")
    broken: set[tuple[str, str]] = set()
    for q in queries:
        first = {e: run_one(e, sql[q], lake, data_dir, args.trent) for e in engines}
        for e, r in first.items():
            if not r.ok:
                problems.append(f"query {q}, {e} failed: {r.error}")
                broken.add((q, e))
        good = [e for e in engines if first[e].ok]
        if not good:
            continue
        ref = ref_engine if first[ref_engine].ok else good[0]
        reference[q] = first[ref].result
        for e in good:
            d = disagreement(reference[q], first[e].result)
            if d:
                problems.append(f"query {q}, {e} disagrees with {ref}: {d}")
                broken.add((q, e))
        log(f"  {q}: " + ", ".join(f"{e} {'ok' if (q, e) not in broken else 'BAD'}"
                                   for e in engines))

    for rep in range(args.reps):
        # Rotate who goes first, so no engine always runs straight after another's
        # cache and CPU-frequency footprint.
        order = engines[rep % len(engines):] + engines[:rep % len(engines)]
        log(f"repetition {rep + 1}/{args.reps}: {' '.join(order)}")
        for q in queries:
            for e in order:
                if (q, e) in broken:
                    continue
                r = run_one(e, sql[q], lake, data_dir, args.trent)
                if not r.ok:
                    problems.append(f"query {q}, {e} failed in repetition {rep + 1}: {r.error}")
                    broken.add((q, e))
                    continue
                d = disagreement(reference[q], r.result)
                if d:
                    problems.append(f"query {q}, {e} changed its answer in repetition "
                                    f"{rep + 1}: {d}")
                    broken.add((q, e))
                    continue
                runs[q, e].append(r)

    # ---- report
    tv = subprocess.run([args.trent, "--version"], capture_output=True, text=True,
                        check=True).stdout
    vers = json.loads(subprocess.run([sys.executable, __file__, "--versions"],
                                     capture_output=True, text=True, check=True).stdout)
    people = next(t["rows"] for t in catalog["tables"] if t["name"] == "person")
    rows = sum(t["rows"] for t in catalog["tables"])
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"## Query peers — {dt.date.today()}\n")
    print(f"Machine: {os.cpu_count()} cores, {mem_gib:.0f} GiB. Lake: `{data_dir}` "
          f"(run {catalog['run_id']}, {catalog['span_start']} to {catalog['span_end']}, "
          f"{people:,} people, {rows / 1e6:.1f} M rows). "
          f"{args.reps} repetitions, interleaved, engine order rotated; medians.\n")
    print(f"Engines: {tv.strip()} ({locked_datafusion()}, `trent query` process); "
          f"duckdb {vers['duckdb']}; polars {vers['polars']}; "
          f"datafusion-python {vers['datafusion']} (pyarrow {vers['pyarrow']}, "
          f"Python {vers['python']}).\n")
    print("Wall = the whole process (interpreter start and imports included for the "
          "Python peers); in-engine = registering the tables, running the query and "
          "fetching the result, as timed inside the peer; × trent = wall / trent's wall. "
          "Peak RSS = the largest over the repetitions, of the whole process.\n")
    print("| query | engine | wall s (median) | wall s (min–max) | in-engine s (median) "
          "| × trent | peak RSS MiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for q in queries:
        base = runs[q, "trent"] if "trent" in engines else []
        base_med = statistics.median(r.wall for r in base) if base else None
        for e in engines:
            rs = runs[q, e]
            label = f"{q}. {QUERIES[q][0]}" if e == engines[0] else ""
            if not rs:
                print(f"| {label} | {e} | failed | | | | |")
                continue
            med = statistics.median(r.wall for r in rs)
            inner = [r.seconds for r in rs if r.seconds is not None]
            ratio = f"{med / base_med:.2f}" if base_med else "—"
            print(f"| {label} | {e} | {med:.2f} | {min(r.wall for r in rs):.2f}–"
                  f"{max(r.wall for r in rs):.2f} | "
                  f"{fmt_s(statistics.median(inner) if inner else None)} | {ratio} | "
                  f"{max(r.rss_kib for r in rs) / 1024:.0f} |")
    if problems:
        print("\n### Failures and disagreements\n")
        for p in problems:
            print(f"- {p}")
    else:
        print("\nAll engines agreed on every query (row count and every cell; floats to "
              "a relative 1e-9).")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], Path(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) > 1 and sys.argv[1] == "--versions":
        json.dump(versions(), sys.stdout)
    else:
        sys.exit(main())
