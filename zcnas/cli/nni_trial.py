"""Trial command for NNI experiments started with ``nnictl`` (NNI's classic tuner route).

Use it as the ``trialCommand`` of an NNI experiment config (see
``studies/nni_nb201_gradsign_evolution.yml``)::

    python -m zcnas.cli.nni_trial --space nb201 --proxy gradsign --study-name NAME \\
        --storage sqlite:///zcnas.db --tuner Evolution

Each trial takes its parameters from NNI (an architecture ``{parameter: choice}``; the config's
search space is :func:`zcnas.search.nni.search_space_json`), scores it with the proxy
through the SQL score cache, stores it as a trial of the Optuna study ``--study-name`` (user
attrs ``backend="nni"``, ``strategy="nnictl:<tuner>"``, the NNI experiment and trial ids) and
reports the score, oriented so that higher is better, as NNI's final result (configure the tuner
with ``optimize_mode: maximize``). A failed score is stored as a FAIL trial and the process
exits 1, so NNI marks the trial FAILED. Outside NNI, ``--arch KEY`` scores one architecture.
"""

from __future__ import annotations

import argparse
import sys

from zcnas.cli._common import add_data_args
from zcnas.cli._common import add_proxy_args
from zcnas.cli._common import add_run_args
from zcnas.cli._common import add_space_arg
from zcnas.cli._common import proxy_params
from zcnas.data import load_batch
from zcnas.exceptions import ZcnasError
from zcnas.scoring import resolve
from zcnas.search.nni import INSTALL_HINT
from zcnas.search.nni import NNINotInstalledError
from zcnas.search.nni import ProxyScorer
from zcnas.search.nni import StudyRecorder
from zcnas.search.nni import to_arch
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache
from zcnas.storage import default_storage
from zcnas.version import __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m zcnas.cli.nni_trial",
                                description="Score the architecture NNI proposes (one trial).")
    add_space_arg(p)
    add_proxy_args(p, required=True, many=False)
    p.add_argument("--study-name", required=True, help="Optuna study receiving the trials")
    p.add_argument("--tuner", default="tuner", help="the NNI tuner's name, stored with the study")
    p.add_argument("--arch", default=None, help="outside NNI: score this architecture key")
    add_data_args(p)
    add_run_args(p)
    return p


def run_trial(args: argparse.Namespace) -> int:
    """One trial; returns the exit status (0 scored, 1 failed score)."""
    try:
        import nni
    except ImportError as exc:
        raise NNINotInstalledError(INSTALL_HINT) from exc

    space = get_space(args.space)
    proxy = resolve(args.proxy, **proxy_params(args.proxy_params, [args.proxy]).get(args.proxy, {}))
    experiment = nni.get_experiment_id()
    if args.arch is not None:
        arch = space.as_arch(args.arch)
    elif experiment == "STANDALONE":
        raise ZcnasError("not running under NNI: start it with nnictl create --config <yml>, or "
                         "pass --arch KEY to score one architecture")
    else:
        arch = to_arch(space, nni.get_next_parameter())
    batch = load_batch(args.data, args.batch_size, args.data_seed, args.num_classes)
    storage = args.storage or default_storage()
    scorer = ProxyScorer(space, proxy, batch, seed=args.seed, device=args.device,
                         cache=None if args.no_cache else ScoreCache(storage))
    recorder = StudyRecorder(
        storage, args.study_name, direction=proxy.direction, run=experiment,
        attrs={
            "backend": "nni", "strategy": f"nnictl:{args.tuner}", "space": space.name,
            "objective": f"proxy:{proxy.name}", "assisted": False, "proxy": proxy.name,
            "proxy_version": proxy.version, "seed": args.seed, "batch_source": batch.source,
            "batch_size": len(batch), "batch_id": batch.identity, "zcnas_version": __version__,
            "nni_version": nni.__version__,
        },
    )
    rec = scorer.record(arch)
    recorder.add(arch, space.distributions, rec.value if rec.ok else None, reason=rec.reason,
                 user_attrs={
                     "arch_key": rec.key.arch_key, "backend": "nni",
                     "strategy": f"nnictl:{args.tuner}", "seed": args.seed, "proxy": proxy.name,
                     "proxy_version": proxy.version, "seconds": rec.seconds,
                     "cached": rec.cached, "device": rec.device, "nni_trial": nni.get_trial_id(),
                 })
    if not rec.ok:
        print(f"zcnas: score failed: {rec.reason}", file=sys.stderr)
        return 1
    nni.report_final_result(scorer.utility(rec))
    print(f"{proxy.name}\t{rec.value:.6g}\t{rec.key.arch_key}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_trial(args)
    except ZcnasError as exc:
        print(f"zcnas: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
