"""Write a small zcnas database with the code of zcnas 0.1.0 (the flat, pre-layering package:
``zcnas.evaluate``, ``zcnas.studies``) for ``tests/storage_tests/test_compat_db.py``.

It holds what a user's database of that release holds: cached scores of single proxies (one of
them failed), of a label-free ensemble and of its members and reference pool, one ``zcnas run``
study (Optuna trials + a ``zcnas_runs`` row) and a manifest of every score with the arguments
that produced it, so the test can recompute each cache key with the current code.

Run it with the 0.1.0 code on the path (a checkout of the last commit before the layering)::

    git worktree add /tmp/zcnas-0.1.0 038aaec
    PYTHONPATH=/tmp/zcnas-0.1.0 python scripts/make_compat_db.py tests/assets/zcnas-0.1.0.db

It refuses to run with the layered package (the point is the old code path).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import sys


def main(out: str) -> int:
    import zcnas

    if not hasattr(zcnas, "evaluate") and not _has("zcnas.evaluate"):
        print("make_compat_db.py: run it with zcnas 0.1.0 on PYTHONPATH (see its docstring)",
              file=sys.stderr)
        return 2
    from zcnas.evaluate import score_record
    from zcnas.studies import run_study

    from zcnas.data import load_batch
    from zcnas.spaces import get_space
    from zcnas.storage import ScoreCache

    path = Path(out)
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}"
    space = get_space("nb201")
    cache = ScoreCache(url)
    batch_args = {"source": "cifar10", "batch_size": 8, "seed": 0}
    batch = load_batch(batch_args["source"], batch_args["batch_size"], batch_args["seed"])
    archs = [space.key(a) for a in space.sample(4, seed=3)]
    archs.append("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")  # disconnected: NaN scores
    scored = []
    jobs = [("params", {}), ("flops", {}), ("synflow", {}), ("gradsign", {}),
            ("jacob_cov", {}), ("ensemble", {"members": ["params", "flops"], "pool_size": 8})]
    for name, params in jobs:
        for key in archs:
            proxy = zcnas.get_proxy(name, **params)
            rec = score_record(space, proxy, key, batch, seed=0, cache=cache)
            scored.append({"proxy": name, "params": params, "arch": key, "seed": 0,
                           "batch": batch_args, "status": rec.status, "value": rec.value})
    study = {
        "device": "cpu",
        "study": {"name": "compat-smoke", "storage": url, "n_trials": 4, "seed": 0,
                  "heartbeat_interval": 5},
        "space": {"name": "nb201"},
        "objective": {"kind": "proxy", "proxy": "params", "benchmark": "nb201"},
        "sampler": {"name": "RandomSampler"},
        "data": {"source": "synthetic", "batch_size": 8},
    }
    run_study(study)
    stored = cache.count()
    manifest = {"zcnas_version": zcnas.__version__, "scores": scored, "stored_rows": stored,
                "study": study}
    Path(f"{path}.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path} ({stored} score rows, {len(scored)} in the manifest) and {path}.json")
    return 0


def finalize(path: str) -> None:
    """Fold the write-ahead log into the file (run after the writer process has exited, so
    nothing holds the database): one self-contained asset."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    Path(f"{path}.lock").unlink(missing_ok=True)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    os.environ.setdefault("ZCNAS_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    if sys.argv[1:2] == ["--write"]:
        sys.exit(main(sys.argv[2]))
    import subprocess

    target = sys.argv[1] if len(sys.argv) > 1 else "tests/assets/zcnas-0.1.0.db"
    rc = subprocess.run([sys.executable, __file__, "--write", target]).returncode
    if rc == 0:
        finalize(target)
    sys.exit(rc)
