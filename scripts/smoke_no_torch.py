"""Smoke-run the parts of zcnas that do not need torch, on an interpreter that has no torch.

For Pythons that cannot get a torch here without a multi-GB CUDA download (3.10, 3.12, 3.13:
only 3.11 has the local CPU wheel), `scripts/check_python.sh` installs every other dependency and
runs this. ``zcnas/__init__`` imports torch, so the package's submodules are loaded under a bare
``zcnas`` package object; torch itself is blocked, so a stray torch import fails loudly.
Exercised: the score cache and its alembic migrations (SQLite), an Optuna study in that database
with heartbeats (zcnas.search._study), rank correlations (zcnas.analysis), and the TOML
reader (tomllib, or the tomli fallback before 3.11). Exit 0 and a last line "smoke OK".
"""

from __future__ import annotations

import importlib.abc
from pathlib import Path
import sys
import tempfile
import types


ROOT = Path(__file__).resolve().parents[1]


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if name.split(".")[0] == "torch":
            raise ImportError(f"{name} imported in a torch-free smoke run")
        return None


def main() -> int:
    sys.meta_path.insert(0, _NoTorch())
    pkg = types.ModuleType("zcnas")
    pkg.__path__ = [str(ROOT / "zcnas")]
    sys.modules["zcnas"] = pkg

    import numpy as np
    import optuna

    from zcnas.analysis import rank_correlation
    from zcnas.search._study import create_study
    from zcnas.search._study import trial_counts
    from zcnas.storage import ScoreCache
    from zcnas.storage import ScoreKey
    from zcnas.storage import ScoreRecord
    from zcnas.storage import current_revision
    from zcnas.storage import get_engine
    from zcnas.storage import head_revision

    print(f"Python {sys.version.split()[0]}, optuna {optuna.__version__}, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'smoke.db'}"
        cache = ScoreCache(url)
        key = ScoreKey("nb201", "|none~0|", "params", "1", "{}", "batch0", 0)
        cache.put(ScoreRecord(key, "complete", 1.5, None, 0.01, "cpu", "smoke"))
        got = cache.get(key)
        assert got is not None and got.value == 1.5 and got.cached, got
        assert current_revision(get_engine(url)) == head_revision() != ""

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = create_study("smoke", storage=url, heartbeat_interval=5,
                             sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=3)
        counts = trial_counts(study)
        assert counts.complete == 3 and counts.finished == 3, counts

    rc = rank_correlation(np.arange(10.0), np.arange(10.0) ** 2, n_bootstrap=50)
    assert abs(rc.spearman - 1.0) < 1e-12 and abs(rc.kendall - 1.0) < 1e-12, rc

    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    with open(ROOT / "pyproject.toml", "rb") as f:
        assert tomllib.load(f)["project"]["name"] == "zcnas"
    print(f"TOML reader: {tomllib.__name__}")
    print("smoke OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
