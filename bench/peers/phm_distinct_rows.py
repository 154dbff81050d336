"""How many people a model could score once for many: encode each person's features as
the scorer does (each value's rank among the model's own thresholds on that feature;
categorical codes by their position among the codes any rule sends left) and count the
distinct encoded rows. docs/benchmarks.md uses it to say why scoring only distinct rows
would save little.

    python phm_distinct_rows.py MODEL.json DATA_DIR

DATA_DIR is a `trent --data` directory after `trent stratify` (its `phm_features` table).
"""
import collections
import glob
import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq


def gbt(o):
    if isinstance(o, dict):
        if "trees" in o:
            return o
        for v in o.values():
            r = gbt(v)
            if r:
                return r
    return None


def main():
    model_path, data = sys.argv[1], sys.argv[2]
    g = gbt(json.load(open(model_path)))
    if g is None:
        sys.exit(f"{model_path}: no boosted trees in this model")
    names = g["features"]
    cuts, codes = collections.defaultdict(set), collections.defaultdict(set)
    for t in g["trees"]:
        for n in t["nodes"]:
            if n["node"] == "split":
                r = n["rule"]
                if r["type"] == "numeric":
                    cuts[n["feature"]].add(float(r["threshold"]))
                else:
                    codes[n["feature"]].update(r["left_codes"])
    gens = sorted(glob.glob(os.path.join(data, "generations", "*", "derived", "phm_features")))
    if not gens:
        sys.exit(f"{data}: no phm_features table (run trent stratify first)")
    table = pq.read_table(glob.glob(os.path.join(gens[-1], "*.parquet")))
    cols = []
    for f, name in enumerate(names):
        x = table.column(name).to_numpy(zero_copy_only=False).astype(np.float32)
        if f in cuts:
            c = np.array(sorted(cuts[f]), dtype=np.float32)
            r = np.searchsorted(c, x, side="left")
            r[np.isnan(x)] = 255
        elif f in codes:
            r = np.full(len(x), 63)
            for i, code in enumerate(sorted(codes[f])):
                r[x == code] = i
        else:
            continue
        cols.append(r.astype(np.uint8))
    m = np.stack(cols, axis=1)
    distinct = len(np.unique(m, axis=0))
    print(f"{m.shape[0]} people, {m.shape[1]} features used by the model, "
          f"{distinct} distinct encoded rows ({100 * distinct / m.shape[0]:.1f}%)")


if __name__ == "__main__":
    main()
