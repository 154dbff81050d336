"""Train LightGBM and trent-riskmodel on the same synthetic CSV matrices and print the
AUROC and wall time of each (called by run.sh; synthetic data only)."""
import json
import subprocess
import sys
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def load(path):
    df = pd.read_csv(path)
    feats = [c for c in df.columns if c not in ("id", "label") and not c.endswith(":group")]
    cats = [c for c in feats if c.endswith(":cat")]
    x = df[feats].astype("float32")
    x.columns = [c.split(":")[0] for c in feats]
    return x, df["label"].to_numpy(), [c.split(":")[0] for c in cats]


def main():
    train_csv, test_csv, trent_bin, iters, leaves, lr, threads, workdir = sys.argv[1:9]
    iters, leaves, lr, threads = int(iters), int(leaves), float(lr), int(threads)

    t0 = time.perf_counter()
    xtr, ytr, cats = load(train_csv)
    xte, yte, _ = load(test_csv)
    lgb_load = time.perf_counter() - t0

    params = dict(objective="binary", num_leaves=leaves, learning_rate=lr, num_threads=threads,
                  min_data_in_leaf=20, max_bin=255, verbose=-1, seed=0, deterministic=True,
                  force_row_wise=True)
    t1 = time.perf_counter()
    c1 = time.process_time()
    ds = lgb.Dataset(xtr, ytr, categorical_feature=cats, free_raw_data=False)
    booster = lgb.train(params, ds, num_boost_round=iters)
    lgb_train = time.perf_counter() - t1
    lgb_cpu = time.process_time() - c1
    p = booster.predict(xte, num_threads=threads)
    lgb_auc = roc_auc_score(yte, p)

    pred_path = f"{workdir}/trent_pred.csv"
    t2 = time.perf_counter()
    out = subprocess.run([trent_bin, "train", "--train", train_csv, "--test", test_csv,
                          "--iterations", str(iters), "--leaves", str(leaves),
                          "--learning-rate", str(lr), "--threads", str(threads),
                          "--min-data", "20", "--predictions", pred_path],
                         check=True, capture_output=True, text=True)
    trent_wall = time.perf_counter() - t2
    trent = json.loads(out.stdout.strip().splitlines()[-1])
    tp = pd.read_csv(pred_path)
    # Cross-check trent's own AUROC with scikit-learn's on trent's predictions.
    trent_auc_sk = roc_auc_score(tp["label"], tp["p"])

    print(f"rows: train {len(ytr)}, test {len(yte)}; prevalence {ytr.mean():.4f}; "
          f"{xtr.shape[1]} features ({len(cats)} categorical); {iters} rounds, "
          f"{leaves} leaves, learning rate {lr}, {threads} threads")
    print(f"LightGBM {lgb.__version__}: AUROC {lgb_auc:.4f}  train {lgb_train:.2f} s wall, {lgb_cpu:.2f} s CPU "
          f"(Dataset construction + boosting; pandas CSV load {lgb_load:.2f} s)")
    print(f"trent-riskmodel: AUROC {trent['auroc']:.4f} (scikit-learn on trent's predictions "
          f"{trent_auc_sk:.4f})  train {trent['train_s']:.2f} s wall, {trent['train_cpu_s']:.2f} s CPU (binning + boosting; CSV load "
          f"{trent['load_s']:.2f} s, predict {trent['predict_s']:.2f} s, evaluation "
          f"{trent['evaluate_s']:.2f} s, process wall {trent_wall:.2f} s)")
    print(f"difference: AUROC {trent['auroc'] - lgb_auc:+.4f}; "
          f"time ratio trent/LightGBM wall {trent['train_s'] / lgb_train:.2f}, "
          f"CPU {trent['train_cpu_s'] / lgb_cpu:.2f}")
    with open("/proc/loadavg") as f:
        print(f"load average at the end: {f.read().split()[0]} (2 cores shared)")


if __name__ == "__main__":
    main()
