#!/usr/bin/env python3
"""Two `trent` binaries side by side on the record's transaction bundles: for each pair,
each binary in turn serves a fresh copy of the same small lake (SQLite, or a throwaway
PostgreSQL cluster with --postgres) and `loadgen --post` sends it the same bundles of
1,000 Observations, one at a time. Prints, per run, the median resources per second and
the server's CPU milliseconds per bundle (user + system of `trent serve`, from /proc).

    python3 bench/record_ab.py BIN_A BIN_B [--pairs 3] [--bundles 30] [--postgres]

Why interleaved pairs: on this shared 2-core machine a run's rate moves by a third from
one minute to the next, so a change is judged by pairs run minutes apart, not by two
runs an hour apart (docs/benchmarks.md, issue 7). With TRENT_TRACE=1 and
TRENT_BENCH_SERVER_LOG=FILE the server's step timings go to FILE (overwritten per run).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import record as R  # noqa: E402


def bodies(ids, n, tmp):
    files = []
    for rep in range(n):
        f = os.path.join(tmp, f"bundle-{rep}.json")
        with open(f, "w") as out:
            json.dump(R.bundle(ids, rep), out)
        files.append(f)
    return files


def one_run(binary, pristine, practice, args, tmp):
    data = os.path.join(tmp, "d")
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(pristine, data, symlinks=True)
    extra = ["--practice", practice]
    stop = None
    if args.postgres:
        url, stop = R.pg_cluster(tempfile.mkdtemp(prefix="trent-ab-pg-"))
        extra += ["--database", url]
    R.TRENT = binary
    p, base, printed, _ = R.serve(data, extra)
    try:
        s, v = R.http("POST", base + "/auth/login", json.dumps({
            "username": "demo-clinician",
            "password": R.secret(printed, "demo-clinician")}).encode())
        assert s == 200, v
        s, b = R.http("GET", f"{base}/fhir/Patient?general-practitioner={R.practice_of(printed)}&_count=200",
                      token=v["token"])
        ids = [e["resource"]["id"] for e in b.get("entry", [])]
        form = (f"grant_type=client_credentials&client_id=demo-system&client_secret="
                f"{R.secret(printed, 'demo-system')}&scope=system/*.cruds").encode()
        s, t = R.http("POST", base + "/auth/token", form, ctype="application/x-www-form-urlencoded")
        assert s == 200, t
        files = bodies(ids, args.bundles, tmp)

        def cpu_ms():
            f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) * 1000 / os.sysconf("SC_CLK_TCK")
        c0 = cpu_ms()
        out = subprocess.run([R.LOADGEN, base, t["access_token"], "--post"] + files,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit("loadgen --post failed:\n" + out.stderr)
        rates = json.loads(out.stdout)["resources_per_s"]
        return statistics.median(rates), (cpu_ms() - c0) / len(files)
    finally:
        p.terminate()
        p.wait()
        if stop:
            stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--bundles", type=int, default=30)
    ap.add_argument("--postgres", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="trent-record-ab-")
    pristine = os.path.join(tmp, "pristine")
    subprocess.run([args.a, "synth", "--scale", "0.001", "--out", pristine], check=True,
                   capture_output=True)
    out = subprocess.run([args.a, "--data", pristine, "query",
                          "select practice_code, count(*) as n from person group by 1 order by 2 desc, 1 limit 1"],
                         capture_output=True, text=True, check=True).stdout
    practice = re.search(r"\b(P\d{5})\b", out).group(1)
    print("| pair | binary | resources/s, median | server CPU ms per bundle |")
    print("|---|---|---|---|")
    for pair in range(1, args.pairs + 1):
        for name, binary in (("A", args.a), ("B", args.b)):
            rate, cpu = one_run(binary, pristine, practice, args, tmp)
            print(f"| {pair} | {name} | {rate:,.0f} | {cpu:.1f} |", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
