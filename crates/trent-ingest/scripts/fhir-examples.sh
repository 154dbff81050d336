#!/usr/bin/env bash
# Fetch the official FHIR R4 example resources (the HL7 package `hl7.fhir.r4.examples`
# 4.0.1, public domain CC0, from the npm registry) and write the resources trent ingests
# as Bulk Data NDJSON, one file per resource type, for the ignored test
# `official_fhir_r4_examples`:
#
#   crates/trent-ingest/scripts/fhir-examples.sh /tmp/fhir-r4-examples
#   FHIR_EXAMPLES=/tmp/fhir-r4-examples cargo test --release -p trent-ingest --test ingest official -- --ignored --nocapture
#
# Nothing is written into the repository.
set -euo pipefail
out="${1:?usage: fhir-examples.sh OUT_DIR}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent hl7.fhir.r4.examples@4.0.1 >/dev/null && tar xzf hl7.fhir.r4.examples-4.0.1.tgz)
python3 - "$work/package" "$out" <<'PY'
import json, os, sys
src, out = sys.argv[1], sys.argv[2]
types = ["Patient", "Encounter", "EpisodeOfCare", "Condition", "Observation",
         "MedicationRequest", "MedicationStatement", "Procedure", "ServiceRequest",
         "AllergyIntolerance"]
lines = {t: [] for t in types}
for name in sorted(os.listdir(src)):
    if not name.endswith(".json") or name == "package.json":
        continue
    try:
        with open(os.path.join(src, name), encoding="utf-8") as f:
            r = json.load(f)
    except Exception:
        continue
    t = r.get("resourceType")
    if t in lines:
        lines[t].append(json.dumps(r, separators=(",", ":"), ensure_ascii=False))
for t, ls in lines.items():
    with open(os.path.join(out, f"{t}.ndjson"), "w", encoding="utf-8") as f:
        f.write("".join(l + "\n" for l in ls))
    print(f"{t}\t{len(ls)}")
PY
