"""``zcnas score-space [FILE.toml]`` (1:1 with :func:`zcnas.search.scale.score_space`).

One machine, three worker processes::

    zcnas score-space --space nb201 --proxy gradsign --storage postgresql+psycopg2://u@db/zcnas \\
        --slice 0:500 --workers 3

Several machines: run the same command on each, with the same ``--storage`` PostgreSQL URL and
the same space/proxy/data/seed/slice arguments; they share one study and split the work. The
same settings can live in a file (``[score_space]`` and ``[data]``, see
``studies/score_space_nb201_gradsign.toml``); flags given on the command line override it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from zcnas.cli._common import DEFAULT_SPACE
from zcnas.cli._common import Formatter
from zcnas.cli._common import add_json_arg
from zcnas.cli._common import add_progress_arg
from zcnas.cli._common import add_storage_arg
from zcnas.cli._common import add_threads_arg
from zcnas.cli._common import positive
from zcnas.cli._common import proxy_params


# flag -> (default, key in [score_space]); and flag -> (default, key in [data])
_SETTINGS: dict[str, tuple[Any, str]] = {
    "space": (DEFAULT_SPACE, "space"), "proxy": (None, "proxy"), "storage": (None, "storage"),
    "slice": (None, "slice"), "workers": (1, "workers"), "seed": (0, "seed"),
    "device": ("cpu", "device"), "heartbeat_interval": (10, "heartbeat_interval"),
    "grace_period": (None, "grace_period"), "max_retry": (3, "max_retry"),
    "threads": (None, "threads"),
}
_DATA: dict[str, tuple[Any, str]] = {
    "data": ("cifar10", "source"), "batch_size": (64, "batch_size"), "data_seed": (0, "seed"),
    "num_classes": (None, "num_classes"),
}


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """Flags over the file over the defaults."""
    from zcnas.search.scale import load_score_space

    file_cfg = load_score_space(args.file) if args.file else None
    out: dict[str, Any] = {}
    for flag, (default, key) in {**_SETTINGS, **_DATA}.items():
        value = getattr(args, flag)
        if value is None and file_cfg is not None:
            section = file_cfg.data if flag in _DATA else file_cfg.score_space
            value = getattr(section, key)
        out[flag] = default if value is None else value
    name = out["proxy"] or ""
    if args.proxy_params or file_cfg is None:
        out["proxy_params"] = proxy_params(args.proxy_params, [name]).get(name, {})
    else:
        out["proxy_params"] = dict(file_cfg.score_space.proxy_params)
    out["space_params"] = dict(file_cfg.score_space.space_params) if file_cfg else {}
    return out


def _score_space(args: argparse.Namespace) -> int:
    import optuna

    from zcnas.exceptions import ZcnasError
    from zcnas.search.scale import parse_slice
    from zcnas.search.scale import score_space
    from zcnas.spaces import get_space

    if not args.verbose:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("zcnas").setLevel(logging.INFO if args.verbose else logging.WARNING)
    st = _settings(args)
    if not st["proxy"]:
        raise ZcnasError("give --proxy NAME (or [score_space] proxy in the file)")
    space = get_space(st["space"], **st["space_params"])
    start, stop = parse_slice(st["slice"], space.size())
    s = score_space(
        space, st["proxy"], storage=st["storage"], proxy_params=st["proxy_params"],
        data=st["data"], batch_size=st["batch_size"], data_seed=st["data_seed"],
        num_classes=st["num_classes"], seed=st["seed"], device=st["device"], start=start,
        stop=stop, workers=st["workers"], heartbeat_interval=st["heartbeat_interval"],
        grace_period=st["grace_period"], max_retry=st["max_retry"],
        torch_threads=st["threads"], progress=not args.no_progress,
    )
    if args.json:
        print(json.dumps(s, sort_keys=True))
    else:
        print(f"{s['study_name']}: {s['finished']}/{s['total']} finished ({s['complete']} "
              f"COMPLETE, {s['failed']} FAIL, {s['running']} RUNNING), {s['stored_scores']} "
              f"scores stored, {s['finished_during_run']} in {s['seconds']:.1f} s "
              f"({s['archs_per_second']:.2f} arch/s) [{s['storage']}]")
        for f in s["failures"]:
            print(f"FAIL\t{f['index']}\t{f['arch']}\t{f['reason']}")
    if s["worker_errors"]:
        print(f"zcnas: error: {'; '.join(s['worker_errors'])}; run the same command again to "
              f"check and finish the slice", file=sys.stderr)
        return 1
    if s["infrastructure_failures"]:
        print(f"zcnas: error: {s['infrastructure_failures']} architecture(s) not scored because "
              f"their workers kept dying or losing the database (FAIL lines); run again with a "
              f"higher --max-retry", file=sys.stderr)
        return 1
    if not s["done"]:
        print("zcnas: not finished: some trials are still RUNNING elsewhere or a worker died; "
              "run the same command again to finish")
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score-space", formatter_class=Formatter,
        help="score a whole space (or --slice) with a proxy on many workers/machines "
             "(zcnas.search.scale.score_space)",
        description="Score every architecture of a space slice with one proxy. Workers (this "
                    "command's --workers processes, and the same command on other machines with "
                    "the same --storage) share one Optuna study in the database as their work "
                    "queue; rerun to resume. Settings come from the flags, else the optional "
                    "FILE, else the defaults named in each help.")
    p.add_argument("file", nargs="?", default=None,
                   help="optional score-space file ([score_space], [data])")
    p.add_argument("--space", default=None, help=f"search space (default {DEFAULT_SPACE})")
    p.add_argument("--proxy", default=None, help="a proxy name (`zcnas proxies` lists them)")
    p.add_argument("--proxy-params", default=None, metavar="JSON",
                   help="JSON object of the proxy's hyper-parameters")
    add_storage_arg(p, "SQLAlchemy URL shared by all workers, e.g. "
                       "postgresql+psycopg2://user@host:5432/db (default $ZCNAS_STORAGE or "
                       "sqlite:///zcnas.db; use PostgreSQL across machines)")
    p.add_argument("--slice", default=None, metavar="START:STOP",
                   help="architecture indices START..STOP-1 in the space's order (default: all)")
    p.add_argument("--workers", type=positive, default=None,
                   help="local worker processes (default 1)")
    add_threads_arg(p, "torch threads per worker (default 1 when --workers > 1, else torch's "
                       "default); keep workers x threads <= cores")
    p.add_argument("--seed", type=int, default=None, help="weight-initialisation seed (default 0)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--heartbeat-interval", type=positive, default=None,
                   help="seconds between worker heartbeats (default 10)")
    p.add_argument("--grace-period", type=positive, default=None,
                   help="seconds without heartbeat before a trial is retried "
                        "(default 2 x heartbeat interval)")
    p.add_argument("--max-retry", type=positive, default=None,
                   help="retries of a killed worker's trial (default 3)")
    add_progress_arg(p)
    add_json_arg(p)
    p.add_argument("--data", default=None,
                   help="cifar10 (shared sample), synthetic, npz:<file> or folder:<dir> "
                        "(default cifar10)")
    p.add_argument("--batch-size", type=positive, default=None, help="(default 64)")
    p.add_argument("--data-seed", type=int, default=None, help="which images (default 0)")
    p.add_argument("--num-classes", type=positive, default=None,
                   help="classifier width (default: the data's classes)")
    p.set_defaults(func=_score_space)
