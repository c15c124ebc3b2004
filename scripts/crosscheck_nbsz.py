"""Cross-check zcnas's baseline proxies against NAS-Bench-Suite-Zero on NAS-Bench-201 CIFAR-10.

Scores a seeded subset of the 9,445 NB201 architectures of
``$ZCNAS_DATA/nb201/nb201_zc_proxies_cifar10.csv`` with zcnas and prints, for each proxy, the
Spearman rank correlation between our scores and NAS-Bench-Suite-Zero's, and each one's
Spearman with the 200-epoch CIFAR-10 test accuracy (``cifar10_test`` of the main NB201 table).

Scores go through ``zcnas.score_record`` with a ``ScoreCache`` (``--storage``), so a rerun only
computes what is missing. Usage (from the repository root)::

    PYTHONPATH=. python scripts/crosscheck_nbsz.py --n 200
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
import random
import sys
import tempfile

from scipy import stats
import torch
from tqdm import tqdm

from zcnas import score_record
from zcnas.benchmarks import get_benchmark
from zcnas.data import data_dir
from zcnas.data import load_batch
from zcnas.exceptions import DataError
from zcnas.proxies import get_proxy
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache
from zcnas.storage import redact


NBSZ_FILE = "nb201/nb201_zc_proxies_cifar10.csv"
# zcnas name -> NAS-Bench-Suite-Zero column
COLUMNS = {
    "synflow": "synflow", "snip": "snip", "grad_norm": "grad_norm", "jacob_cov": "jacov",
    "naswot": "nwot", "fisher": "fisher", "grasp": "grasp", "params": "params", "flops": "flops",
}
# the acceptance target (run-to-run agreement of NB-Suite-Zero itself is ~0.93-0.99)
TARGET = {"synflow": 0.9, "snip": 0.9, "grad_norm": 0.9, "jacob_cov": 0.9, "naswot": 0.9}


def default_storage() -> str:
    out = Path(tempfile.gettempdir()) / "zcnas_out"
    out.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{out / 'crosscheck_nbsz.db'}"


def read_nbsz(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"NAS-Bench-Suite-Zero table not found at {path}; set ZCNAS_DATA")
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="architectures to score (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the architecture subset")
    ap.add_argument("--init-seed", type=int, default=0,
                    help="seed of each network's initialisation (default 0)")
    ap.add_argument("--batch-size", type=int, default=64,
                    help="CIFAR-10 batch size (default 64, the zero-cost-nas default)")
    ap.add_argument("--data-seed", type=int, default=0, help="seed of the CIFAR-10 batch")
    ap.add_argument("--proxies", nargs="+", default=list(COLUMNS), choices=list(COLUMNS))
    ap.add_argument("--storage", default=None,
                    help="score cache URL (default sqlite in <tmp>/zcnas_out/crosscheck_nbsz.db)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    rows = read_nbsz(data_dir() / NBSZ_FILE)
    if not 3 <= args.n <= len(rows):
        ap.error(f"--n must be between 3 and {len(rows)}")
    rows = sorted(random.Random(args.seed).sample(rows, args.n), key=lambda r: int(r["index"]))
    space = get_space("nb201")
    bench = get_benchmark("nb201")
    batch = load_batch("cifar10", args.batch_size, seed=args.data_seed)
    storage = args.storage or default_storage()
    cache = ScoreCache(storage)
    proxies = {name: get_proxy(name) for name in args.proxies}
    print(f"scoring {args.n} NB201 archs x {len(proxies)} proxies, batch cifar10/{len(batch)} "
          f"(data seed {args.data_seed}), init seed {args.init_seed}, subset seed {args.seed}, "
          f"cache {redact(storage)}", flush=True)

    ours: dict[str, dict[str, float | None]] = {name: {} for name in proxies}
    seconds = {name: 0.0 for name in proxies}
    n_computed = {name: 0 for name in proxies}
    for row in tqdm(rows, desc="archs", unit="arch"):
        for name, proxy in proxies.items():
            rec = score_record(space, proxy, row["arch"], batch, seed=args.init_seed,
                               device=args.device, cache=cache)
            ours[name][row["arch"]] = rec.value if rec.ok else None
            if not rec.cached:
                n_computed[name] += 1
                seconds[name] += rec.seconds

    test_acc = {r["arch"]: bench.query(r["arch"], "cifar10", "test") for r in rows}
    print(f"\n{sum(n_computed.values())} scores computed, the rest from the cache\n")
    header = (f"{'proxy':10s} {'nbsz col':9s} {'ok':>4s}  {'rho(ours,nbsz)':>14s}  "
              f"{'rho(ours,c10)':>13s}  {'rho(nbsz,c10)':>13s}  {'s/arch':>6s}  target")
    print(header)
    print("-" * len(header))
    missed = []
    for name in proxies:
        col = COLUMNS[name]
        archs = [r["arch"] for r in rows if ours[name][r["arch"]] is not None]
        mine = [ours[name][a] for a in archs]
        theirs = [float(r[col]) for r in rows if ours[name][r["arch"]] is not None]
        acc = [test_acc[a] for a in archs]
        rho_sz = stats.spearmanr(mine, theirs).statistic
        rho_acc = stats.spearmanr(mine, acc).statistic
        rho_sz_acc = stats.spearmanr(theirs, acc).statistic
        target = TARGET.get(name)
        verdict = "" if target is None else ("ok" if rho_sz >= target else f"MISSED >= {target}")
        if target is not None and rho_sz < target:
            missed.append(name)
        per_arch = f"{seconds[name] / n_computed[name]:6.2f}" if n_computed[name] else "cached"
        print(f"{name:10s} {col:9s} {len(archs):4d}  {rho_sz:14.3f}  {rho_acc:13.3f}  "
              f"{rho_sz_acc:13.3f}  {per_arch:>6s}  {verdict}")
    print("\nfailed scores are left out of each row (ok = scores used).")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
