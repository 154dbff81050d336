#!/usr/bin/env python3
"""The shared care record's benchmark: reads at a fixed rate and transaction bundles, on
SQLite and on PostgreSQL, against a live `trent serve` over loopback.

    cargo build --release --bin trent --example loadgen -p trent -p trent-record
    python3 bench/record.py [--rate 1000] [--seconds 60] [--scale 0.001]

What it does, per backend: builds a small synthetic lake (once), starts `trent serve`
loading the people of the largest practice, signs in as the demo clinician, and drives
`loadgen` (crates/trent-record/examples/loadgen.rs: open loop, latency from when each
request was due) over a mix of reads a clinician makes — the Patient, their conditions,
their latest observations. Then it posts transaction bundles of 1,000 Observations as
the demo system client (posted by `loadgen --post`, one at a time, each timed until its
response is read and every entry checked as created) and reports resources per second
(the median of `--bundles`, default 15), then as many more with `Prefer: return=minimal`
(no resources echoed in the response). PostgreSQL is a
throwaway cluster (initdb in a temp dir, fsync on, loopback). Prints a JSON summary and
a markdown table for docs/benchmarks.md.
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
import time
import urllib.request

TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/trent-target"))
TRENT = os.path.join(TARGET, "release", "trent")
LOADGEN = os.path.join(TARGET, "release", "examples", "loadgen")


def http(method, url, body=None, token=None, ctype="application/json", headers=()):
    req = urllib.request.Request(url, method=method, data=body)
    for k, v in headers:
        req.add_header(k, v)
    if body is not None:
        req.add_header("content-type", ctype)
    if token:
        req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def serve(data, extra):
    # TRENT_BENCH_SERVER_LOG=FILE keeps the server's standard error (with TRENT_TRACE=1:
    # the write path's step timings)
    log = os.environ.get("TRENT_BENCH_SERVER_LOG")
    p = subprocess.Popen([TRENT, "--data", data, "serve", "--port", "0", "--quiet"] + extra,
                         stdout=subprocess.PIPE,
                         stderr=open(log, "w") if log else subprocess.DEVNULL, text=True)
    printed = ""
    t0 = time.time()
    for line in p.stdout:
        printed += line
        m = re.match(r"trent-record serving (http://\S+)/fhir", line)
        if m:
            return p, m.group(1), printed, time.time() - t0
    raise SystemExit("trent serve stopped:\n" + printed)


def secret(printed, user):
    for line in printed.splitlines():
        w = line.split()
        if w and w[0] == user:
            return w[2]
    raise SystemExit(f"no {user} in output")


def practice_of(printed):
    for line in printed.splitlines():
        if line.strip().startswith("demo-clinician"):
            return line.split("organisation ")[1].strip()


def bundle(ids, rep):
    """Bundle number `rep` of the write benchmark: a transaction of 1,000 blood-pressure
    Observations, spread over the patients `ids`."""
    entries = [{"resource": {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "271649006"}]},
        "subject": {"reference": f"Patient/{ids[(rep * 1000 + k) % len(ids)]}"},
        "effectiveDateTime": "2025-02-01",
        "valueQuantity": {"value": 120 + k % 40, "unit": "mm[Hg]"}},
        "request": {"method": "POST", "url": "Observation"}} for k in range(1000)]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def run_backend(name, data, extra, args):
    p, base, printed, load_s = serve(data, extra)
    try:
        s, v = http("POST", base + "/auth/login",
                    json.dumps({"username": "demo-clinician",
                                "password": secret(printed, "demo-clinician")}).encode())
        assert s == 200, v
        tok = v["token"]
        prac = practice_of(printed)
        s, b = http("GET", f"{base}/fhir/Patient?general-practitioner={prac}&_count=200", token=tok)
        assert s == 200, b
        ids = [e["resource"]["id"] for e in b.get("entry", [])]
        assert ids, "no patients registered at the demo practice"
        paths = []
        for i in ids:
            paths += [f"/fhir/Patient/{i}", f"/fhir/Condition?patient={i}",
                      f"/fhir/Observation?patient={i}&_count=20"]
        pf = tempfile.NamedTemporaryFile("w", delete=False, suffix=".txt")
        pf.write("\n".join(paths))
        pf.close()
        # TRENT_BENCH_TIMELINE=PREFIX keeps each request's due time and latency
        # (PREFIX-SQLite.csv, PREFIX-PostgreSQL.csv)
        timeline = os.environ.get("TRENT_BENCH_TIMELINE")
        extra = ["--timeline", f"{timeline}-{name}.csv"] if timeline else []
        out = subprocess.run([LOADGEN, base, tok, pf.name, "--rate", str(args.rate),
                              "--seconds", str(args.seconds), "--connections", "16"] + extra,
                             capture_output=True, text=True, check=True)
        reads = json.loads(out.stdout)
        # transaction bundles as the system client
        form = (f"grant_type=client_credentials&client_id=demo-system&client_secret="
                f"{secret(printed, 'demo-system')}&scope=system/*.cruds").encode()
        s, t = http("POST", base + "/auth/token", form, ctype="application/x-www-form-urlencoded")
        assert s == 200, t
        sys_tok = t["access_token"]
        def bundles(first, prefer):
            # the bodies are written first; the Rust load generator posts them one at a
            # time on one connection and times each until its response is read and checked
            files = []
            for rep in range(first, first + args.bundles):
                f = tempfile.NamedTemporaryFile("wb", delete=False, suffix=".json")
                f.write(json.dumps(bundle(ids, rep)).encode())
                f.close()
                files.append(f.name)
            out = subprocess.run([LOADGEN, base, sys_tok, "--post"] + files + prefer,
                                 capture_output=True, text=True)
            for f in files:
                os.unlink(f)
            if out.returncode != 0:
                raise SystemExit("loadgen --post failed:\n" + out.stderr)
            return json.loads(out.stdout)["resources_per_s"]
        # the default response echoes every resource; then the same with
        # `Prefer: return=minimal` (status, location and ETag per entry)
        rates = bundles(0, [])
        minimal = bundles(args.bundles, ["--prefer", "return=minimal"])
        return {"backend": name, "store_build_s": round(load_s, 1), "reads": reads,
                "bundle_resources_per_s": rates,
                "bundle_median_per_s": statistics.median(rates),
                "bundle_minimal_resources_per_s": minimal,
                "bundle_minimal_median_per_s": statistics.median(minimal)}
    finally:
        p.terminate()
        p.wait()


def pg_cluster(tmp):
    bins = sorted(d for d in os.listdir("/usr/lib/postgresql"))
    bin_dir = f"/usr/lib/postgresql/{bins[-1]}/bin"
    d = os.path.join(tmp, "pg")
    os.makedirs(d)
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(d, "postgres")
        os.chmod(tmp, 0o755)
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    subprocess.run(as_user + [f"{bin_dir}/initdb", "-D", d + "/data", "-U", "trent",
                              "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
    subprocess.run(as_user + [f"{bin_dir}/pg_ctl", "-D", d + "/data", "-o",
                              f"-p {port} -k {d} -c listen_addresses=127.0.0.1",
                              "-l", d + "/log", "-w", "start"], check=True, capture_output=True)
    subprocess.run(as_user + [f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port),
                              "-U", "trent", "record"], check=True, capture_output=True)
    stop = lambda: subprocess.run(as_user + [f"{bin_dir}/pg_ctl", "-D", d + "/data", "-m",
                                            "fast", "stop"], capture_output=True)
    return f"postgres://trent@127.0.0.1:{port}/record", stop


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--scale", default="0.001")
    ap.add_argument("--only", choices=["sqlite", "postgres"])
    # bundles per response mode: a single bundle's rate moves by half between two in a
    # row on this shared machine, so the median of a few more is the steadier figure
    ap.add_argument("--bundles", type=int, default=15)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="trent-record-bench-")
    data = os.path.join(tmp, "d")
    subprocess.run([TRENT, "synth", "--scale", args.scale, "--out", data], check=True,
                   capture_output=True)
    # the demo practice: the largest (trent up's choice), loaded for both backends
    out = subprocess.run([TRENT, "--data", data, "query",
                          "select practice_code, count(*) as n from person group by 1 order by 2 desc, 1 limit 1"],
                         capture_output=True, text=True, check=True).stdout
    practice = re.search(r"\b(P\d{5})\b", out).group(1)
    results = []
    if args.only in (None, "sqlite"):
        results.append(run_backend("SQLite", data, ["--practice", practice], args))
    if args.only in (None, "postgres"):
        url, stop = pg_cluster(tmp)
        try:
            results.append(run_backend("PostgreSQL", data,
                                       ["--practice", practice, "--database", url], args))
        finally:
            stop()
    print(json.dumps(results, indent=1))
    print(f"\n| backend | reads sent | errors | achieved rate | p50 ms | p99 ms | max ms | bundle resources/s (median of {args.bundles}) | with return=minimal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        x = r["reads"]
        print(f"| {r['backend']} | {x['requests']} | {x['errors']} | {x['achieved_rate']:.0f}/s | "
              f"{x['p50_ms']:.2f} | {x['p99_ms']:.2f} | {x['max_ms']:.1f} | {r['bundle_median_per_s']:.0f} | "
              f"{r['bundle_minimal_median_per_s']:.0f} |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
