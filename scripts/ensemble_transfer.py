"""Label-free ensembles chosen on other benchmarks (issue 14's protocol), leave one space out.

Each ``NAME=DIR`` is a ``zcnas correlate --out`` folder of one space (its tasks are the
datasets it was run with). For every space, the member set (up to ``--max-size`` proxies
every space scored) with the best mean Kendall tau over the *other* spaces is evaluated on
it, beside the single proxy chosen the same way and the space's own best single proxy (an
oracle that reads its labels, for comparison only).

    python scripts/ensemble_transfer.py nb101=zcnas_out/nb101 tnb101_micro=zcnas_out/tnb_micro \\
        darts=zcnas_out/darts nb201=zcnas_out/nb201 --out transfer.csv
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import asdict
from pathlib import Path
import sys

from zcnas.analysis import read_correlate_dir
from zcnas.analysis import transfer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("spaces", nargs="+", metavar="NAME=DIR")
    p.add_argument("--max-size", type=int, default=4, help="most members in a set")
    p.add_argument("--out", default=None, help="also write the rows as CSV here")
    args = p.parse_args(argv)
    spaces = []
    for item in args.spaces:
        name, sep, folder = item.partition("=")
        if not sep:
            p.error(f"{item!r}: give NAME=DIR, e.g. nb101=zcnas_out/nb101")
        spaces.append(read_correlate_dir(folder, name))
    rows = transfer(spaces, max_size=args.max_size)
    print(f"{'space':<14} {'task':<16} {'members (chosen on the other spaces)':<36} {'tau':>6}"
          f"  {'single (chosen so)':<20} {'tau':>6}  {'best single (oracle)':<20} {'tau':>6}")
    for r in rows:
        print(f"{r.space:<14} {r.task:<16} {'+'.join(r.members):<36} {r.ensemble_tau:>6.3f}  "
              f"{r.single:<20} {r.single_tau:>6.3f}  {r.best_single:<20} "
              f"{r.best_single_tau:>6.3f}")
    if args.out:
        with Path(args.out).open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
            w.writeheader()
            for r in rows:
                w.writerow({k: "+".join(v) if isinstance(v, tuple) else v
                            for k, v in asdict(r).items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
