"""Compare this plugin's proxies with NAS-Bench-Suite-Zero's precomputed scores.

Reads ``$ZCNAS_DATA/nb201/nb201_zc_proxies_cifar10.csv`` (NB-Suite-Zero values, as
redistributed by GRAF) and ``nb201_tss_accuracies.csv``, scores ``-n`` seeded random archs of
that file with zcnas, and prints the Spearman correlation of each proxy with the precomputed
column and with the 200-epoch CIFAR-10 test accuracy.

    OMP_NUM_THREADS=1 python plugins/zcnas-example/scripts/compare_with_nbsz.py -n 50
"""

from __future__ import annotations

import argparse
import csv
import time

import numpy as np
from scipy.stats import spearmanr
import torch
from zcnas import get_benchmark
from zcnas import load_batch
from zcnas import score
from zcnas.data import data_dir

from zcnas_example import EpeNasProxy
from zcnas_example import L2NormProxy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="number of architectures")
    parser.add_argument("--seed", type=int, default=0, help="which architectures")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)

    with (data_dir() / "nb201" / "nb201_zc_proxies_cifar10.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(args.seed)
    picked = [rows[int(i)] for i in rng.choice(len(rows), args.n, replace=False)]
    batch = load_batch("cifar10", args.batch_size, seed=0)
    bench = get_benchmark("nb201")
    acc = [bench.query(r["arch"], "cifar10", "test") for r in picked]
    print(f"{args.n} archs of the NB-Suite-Zero CIFAR-10 file (seed {args.seed}); "
          f"cifar10 batch {args.batch_size}, init seed 0")
    for proxy in (L2NormProxy(), EpeNasProxy()):
        start = time.perf_counter()
        ours = [score("nb201", proxy, r["arch"], batch, seed=0) for r in picked]
        seconds = time.perf_counter() - start
        theirs = [float(r[proxy.name]) for r in picked]
        rel = np.abs(np.array(ours) / np.array(theirs) - 1)
        print(f"{proxy.name:8s} spearman(zcnas, NB-Suite-Zero) = {spearmanr(ours, theirs)[0]:.3f}  "
              f"median |rel diff| = {np.median(rel):.3f}  "
              f"spearman with C10 test: zcnas {spearmanr(ours, acc)[0]:.3f}, "
              f"NB-Suite-Zero {spearmanr(theirs, acc)[0]:.3f}  ({seconds:.1f}s)")


if __name__ == "__main__":
    main()
