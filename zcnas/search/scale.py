"""Score a whole search space (or a slice of it) with one proxy, on any number of worker
processes and machines that share one SQL database.

The work queue is an Optuna study in that database, one per (space, proxy and its params,
batch, seed, slice), named deterministically (:func:`study_name`). The ``k``-th trial of that
study (retries aside) scores architecture ``start + k`` in the space's
:meth:`~zcnas.spaces.SearchSpace.arch_at` order: :class:`SliceSampler` hands each trial its
architecture, and
:func:`zcnas.search.optuna.optimize_exact` lets each worker create the next trial under a
cross-process lock (PostgreSQL advisory lock, ``flock`` for SQLite) until the study holds one
finished trial per architecture, so every architecture gets exactly one trial however many
workers join. Scores go through :func:`zcnas.scoring.score_record` into the score cache in the
same database.

A killed worker's RUNNING trial stops beating (Optuna heartbeat); after the grace period the next
worker marks it FAIL and ``RetryHeartbeatStaleTrialCallback`` puts it back in Optuna's WAITING
queue with the same parameters; if its score was already stored the retry is a cache hit. A
failed score (NaN/inf, out of memory) is a FAIL trial with ``fail_reason``, cached as failed,
and is not retried.

Several machines: run the same command on each with the same PostgreSQL URL (each with its own
``--workers``); the study name depends only on what is computed, so they all join one study.

Why not one pre-enqueued WAITING trial per architecture: enqueueing is one transaction per
trial (2,000 took 47 s on PostgreSQL here) and every pop of a waiting trial re-reads all waiting
trials (0.7 s each at 2,000 waiting), so a 15,625-net space would spend minutes per worker before
the first score and seconds per score. Counting trials needs neither; Optuna's WAITING queue is
used only for retries.
"""

from __future__ import annotations

from collections.abc import Mapping
import json
import logging
import multiprocessing
import signal
import threading
import time
from typing import Any
import warnings

import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import BaseSampler
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import torch
from tqdm.auto import tqdm

from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.exceptions import StorageError
from zcnas.exceptions import ZcnasError
from zcnas.scoring import Scorable
from zcnas.scoring import batch_key
from zcnas.scoring import params_json
from zcnas.scoring import resolve
from zcnas.scoring import resolve_device
from zcnas.scoring import stored_records
from zcnas.search._config import ScoreSpaceConfig
from zcnas.search._config import load_score_space
from zcnas.search._objectives import ProxyObjective
from zcnas.search._objectives import suggest_arch
from zcnas.search._study import create_study
from zcnas.search._study import describe_study
from zcnas.search._study import is_infrastructure_failure
from zcnas.search._study import optimize_exact
from zcnas.search._study import repair
from zcnas.search._study import retried_numbers
from zcnas.search._study import set_trial_user_attrs
from zcnas.search._study import trial_counts
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache
from zcnas.storage import StudyLock
from zcnas.storage import as_storage_error
from zcnas.storage import default_storage
from zcnas.storage import make_storage
from zcnas.storage import params_hash
from zcnas.storage import redact
from zcnas.version import __version__


_logger = logging.getLogger(__name__)
__all__ = [
    "OutsideSliceError", "ScoreSpaceConfig", "SliceObjective", "SliceSampler", "arch_index",
    "load_score_space",
    "parse_slice", "score_space", "study_name",
]


def arch_index(space: SearchSpace, arch: Mapping[str, Any]) -> int:
    """Inverse of ``space.arch_at``: the position of ``arch`` in the space's mixed-radix order."""
    return space.index_of(arch)


def parse_slice(text: str | None, size: int) -> tuple[int, int]:
    """``"A:B"``, ``"A:"``, ``":B"`` or None (the whole space) -> checked ``(start, stop)``."""
    if text is None or text.strip() in ("", ":"):
        return 0, size
    parts = text.split(":")
    if len(parts) != 2:
        raise ZcnasError(f"--slice {text!r} must be START:STOP, e.g. 0:500 (the space has {size})")
    try:
        start = int(parts[0]) if parts[0].strip() else 0
        stop = int(parts[1]) if parts[1].strip() else size
    except ValueError:
        raise ZcnasError(f"--slice {text!r} must be two integers START:STOP, e.g. 0:500") from None
    check_slice(start, stop, size)
    return start, stop


def check_slice(start: int, stop: int, size: int) -> None:
    """Raise ``ZcnasError`` unless ``0 <= start < stop <= size``."""
    if not 0 <= start < stop <= size:
        raise ZcnasError(
            f"slice {start}:{stop} is empty or outside the space of {size} architectures; "
            f"use 0 <= START < STOP <= {size}, e.g. --slice 0:{min(size, 500)}"
        )


def study_name(space: SearchSpace, proxy: Scorable, batch: Batch, seed: int, start: int,
               stop: int) -> str:
    """The deterministic study name of one slice: every worker and machine derives the same."""
    ph = params_hash(proxy.get_params())
    return (f"zcnas-score-space:{space.cache_name}:{proxy.name}-v{proxy.version}-{ph}:"
            f"{batch_key(proxy, batch)}:seed{seed}:{start}-{stop}")


class OutsideSliceError(ZcnasError):
    """A trial beyond the last architecture of its slice."""


def _is_retry(trial: FrozenTrial) -> bool:
    return "failed_trial" in trial.system_attrs


class SliceSampler(BaseSampler):
    """The ``k``-th trial of the study that is not a retry (counting from 0 in trial-number
    order) gets ``space.arch_at(start + k)``; a retry (``RetryHeartbeatStaleTrialCallback``)
    keeps the parameters of the trial it replaces, or if that one died before storing them, gets
    that trial's architecture.

    Trial numbers are given in creation order and every trial of a slice study is created under
    its :class:`StudyLock` (by :func:`optimize_exact`), so the count, and the architecture, is the
    same whichever worker asks. A trial beyond the slice raises ``ZcnasError``.
    """

    def __init__(self, space: SearchSpace, start: int, stop: int) -> None:
        self.space, self.start, self.stop = space, start, stop
        self._last: tuple[int, int] | None = None  # (trial id, index): one lookup per trial

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def index_for(self, study: optuna.Study, trial: FrozenTrial) -> int:
        """The position in the space of the architecture that ``trial`` scores."""
        root = int(trial.system_attrs.get("failed_trial", trial.number))
        earlier = sum(1 for t in study.get_trials(deepcopy=False)
                      if t.number < root and not _is_retry(t))
        index = self.start + earlier
        if index >= self.stop:
            raise OutsideSliceError(
                f"trial {trial.number} of study {study.study_name} falls outside the slice "
                f"{self.start}:{self.stop}; was the study run with more trials than "
                f"architectures?")
        return index

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if self._last is None or self._last[0] != trial._trial_id:
            self._last = (trial._trial_id, self.index_for(study, trial))
        return self.space.arch_at(self._last[1])[param_name]


class SliceObjective:
    """The trial value is the proxy score of the trial's architecture (scored like
    :class:`ProxyObjective`, through the score cache), with fewer user attributes, because each
    is one transaction and the score cache already holds the rest: ``space_index``,
    ``arch_key``, ``cached``, ``seconds`` and, for a failed score, ``fail_reason`` (the trial
    returns NaN, so Optuna records it as FAIL).

    A trial beyond the slice (possible only if a worker lost its study lock with its database
    session, at the very end of a slice, while another worker allocated the same last slot) is
    a FAIL with ``surplus = True``; the summary ignores it.
    """

    def __init__(self, inner: ProxyObjective) -> None:
        self.inner = inner

    def __call__(self, trial: optuna.Trial) -> float:
        space = self.inner.space
        try:
            arch = suggest_arch(trial, space)
        except OutsideSliceError as exc:
            set_trial_user_attrs(trial, {"fail_reason": str(exc), "surplus": True})
            return float("nan")
        rec = self.inner._score(self.inner.proxy, arch)
        attrs = {"space_index": arch_index(space, arch), "arch_key": rec.key.arch_key,
                 "cached": rec.cached, "seconds": rec.seconds}
        failed = not rec.ok or rec.value is None
        if failed:
            attrs["fail_reason"] = rec.reason or "non-finite value"
        set_trial_user_attrs(trial, attrs)
        return float("nan") if failed else float(rec.value)  # type: ignore[arg-type]


def _worker(cfg: dict[str, Any]) -> int:
    """One worker: trials of the slice's study until it holds one per architecture.

    Returns how many trials ran here. Runs in the caller's process or a spawned child.
    """
    threads = cfg["torch_threads"]
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    if cfg.get("optuna_verbosity") is not None:
        optuna.logging.set_verbosity(cfg["optuna_verbosity"])
    try:
        url = cfg["storage"]
        # the command reached the database before starting this worker: wait out an outage
        rdb = make_storage(url, heartbeat_interval=cfg["heartbeat_interval"],
                           grace_period=cfg["grace_period"], max_retry=cfg["max_retry"],
                           retry_connect=True)
        space: SearchSpace = cfg["space"]
        sampler = SliceSampler(space, cfg["start"], cfg["stop"])
        study = create_study(cfg["study_name"], storage=rdb, directions=[cfg["proxy"].direction],
                             sampler=sampler, score_cache=False)
        objective = SliceObjective(ProxyObjective(
            space, cfg["proxy"], cfg["batch"], seed=cfg["seed"], device=cfg["device"],
            cache=ScoreCache(url)))
        return optimize_exact(study, objective, cfg["stop"] - cfg["start"],
                              lock=StudyLock(url, cfg["study_name"]),
                              poll_seconds=min(1.0, cfg["heartbeat_interval"] / 2))
    finally:
        if threads:
            torch.set_num_threads(old_threads)


EXIT_INTERRUPTED, EXIT_STORAGE, EXIT_CRASHED = 130, 3, 4


def _child(cfg: dict[str, Any], report: Any) -> None:  # pragma: no cover - a spawned process
    """A spawned worker: :func:`_worker`, with its end reported to the parent as one line on
    ``report`` (a pipe) and an exit code, never a traceback (``-v`` logs it)."""
    logging.basicConfig(level=cfg.get("log_level", logging.WARNING),
                        format="%(levelname)s %(name)s: %(message)s")
    code, message = 0, None
    try:
        _worker(cfg)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except Exception as exc:
        error = as_storage_error(exc)
        if error is not None:
            code, message = EXIT_STORAGE, str(error)
        elif isinstance(exc, ZcnasError):
            code, message = EXIT_CRASHED, str(exc)
        else:
            code = EXIT_CRASHED
            message = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}"
        _logger.debug("worker failed", exc_info=True)
    if message is not None:
        try:
            report.send(message)
        except OSError:
            pass
    raise SystemExit(code)


class _Progress:
    """A tqdm bar of finished trials, refreshed from the database by a background thread."""

    def __init__(self, study: optuna.Study, total: int, enabled: bool, interval: float = 1.0) -> None:
        self.study, self.total, self.interval, self.enabled = study, total, interval, enabled
        self.bar = tqdm(total=total, initial=self.finished() if enabled else 0, desc="score-space",
                        unit="arch", disable=not enabled, smoothing=0.1, dynamic_ncols=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def finished(self) -> int:
        return min(self.total, trial_counts(self.study).finished)

    def refresh(self) -> None:
        done = self.finished()
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception as exc:  # a progress bar never stops the work
                _logger.debug("progress refresh failed: %s", exc)

    def __enter__(self) -> _Progress:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.enabled:
            return
        self._stop.set()
        self._thread.join()
        try:
            self.refresh()
        finally:
            self.bar.close()


def _setup_study(cfg: dict[str, Any]) -> optuna.Study:
    """Create (or load) the slice's study and stamp what it computes, once (safe if concurrent)."""
    url, name = cfg["storage"], cfg["study_name"]
    rdb = make_storage(url, heartbeat_interval=None)
    study = create_study(name, storage=rdb, directions=[cfg["proxy"].direction], score_cache=True)
    with StudyLock(url, name):
        if "zcnas_score_space" not in study.user_attrs:
            study.set_user_attr("zcnas_score_space", {
                "space": cfg["space"].name, "proxy": cfg["proxy"].name,
                "proxy_version": cfg["proxy"].version, "proxy_params": json.loads(
                    params_json(cfg["proxy"])),
                "batch_id": batch_key(cfg["proxy"], cfg["batch"]),
                "batch_source": cfg["batch"].source, "batch_size": len(cfg["batch"]),
                "seed": cfg["seed"], "start": cfg["start"], "stop": cfg["stop"],
                "zcnas_version": __version__,
            })
        describe_study(study, kind="proxy", space=cfg["space"].cache_name,
                       objective=cfg["proxy"].name, metric_names=[cfg["proxy"].name],
                       sampler="SliceSampler", backend="score-space")
    return study


def _failure(study: optuna.Study, trial: FrozenTrial, cfg: dict[str, Any]) -> dict[str, Any]:
    """Index, arch, reason and kind (``score``: the proxy failed; ``infrastructure``: workers
    kept dying or losing the database, retries spent) of a FAIL trial that was not retried."""
    space = cfg["space"]
    index = trial.user_attrs.get("space_index")
    if index is None:
        try:
            index = SliceSampler(space, cfg["start"], cfg["stop"]).index_for(study, trial)
        except ZcnasError:
            index = None
    arch = trial.user_attrs.get("arch_key")
    if arch is None and index is not None:
        arch = space.key(space.arch_at(index))
    if not is_infrastructure_failure(trial):
        return {"index": index, "arch": arch, "reason": trial.user_attrs["fail_reason"],
                "kind": "score"}
    attempts = len(trial.system_attrs.get("retry_history", [])) + 1
    return {"index": index, "arch": arch, "kind": "infrastructure",
            "reason": f"not scored: {attempts} attempt(s) ended without a result (worker killed "
                      f"or database lost) and the retries are spent; run again with a higher "
                      f"--max-retry (now {cfg['max_retry']})"}


def _summary(study: optuna.Study, cfg: dict[str, Any], before: int, seconds: float,
             ran_here: int | None) -> dict[str, Any]:
    with StudyLock(cfg["storage"], cfg["study_name"]):
        # a trial the workers could not finish is queued for the next run
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            repair(study, callback=RetryHeartbeatStaleTrialCallback(max_retry=cfg["max_retry"]))
    trials = study.get_trials(deepcopy=False)
    counts = trial_counts(study)
    retried = retried_numbers(trials)
    surplus = sum(1 for t in trials if t.user_attrs.get("surplus"))
    failed = [t for t in trials if t.state == TrialState.FAIL and t.number not in retried
              and not t.user_attrs.get("surplus")]
    failures = [_failure(study, t, cfg) for t in failed]
    proxy, batch, space = cfg["proxy"], cfg["batch"], cfg["space"]
    keys = [space.key(space.arch_at(i)) for i in range(cfg["start"], cfg["stop"])]
    stored = stored_records(ScoreCache(cfg["storage"]), space, proxy, batch, cfg["seed"], keys)
    total = cfg["stop"] - cfg["start"]
    finished = counts.finished - surplus
    return {
        "study_name": cfg["study_name"], "storage": redact(cfg["storage"]),
        "space": space.name, "proxy": proxy.name, "proxy_params": json.loads(params_json(proxy)),
        "batch_id": batch_key(proxy, batch), "seed": cfg["seed"],
        "start": cfg["start"], "stop": cfg["stop"], "total": total,
        "finished": finished, "complete": counts.complete,
        "failed": counts.failed - counts.retried - surplus, "retried": counts.retried,
        "running": counts.running, "waiting": counts.waiting,
        "stored_scores": len(stored),
        "failures": failures[:20],
        "infrastructure_failures": sum(f["kind"] == "infrastructure" for f in failures),
        "done": finished == total and counts.running == 0 and counts.waiting == 0,
        "finished_during_run": finished - before, "ran_here": ran_here,
        "workers": cfg["workers"], "seconds": seconds,
        "archs_per_second": (finished - before) / seconds if seconds > 0 else 0.0,
    }


def score_space(space: SearchSpace | str, proxy: Scorable | str, *, storage: str | None = None,
                proxy_params: Mapping[str, Any] | None = None, data: str = "cifar10",
                batch_size: int = 64, data_seed: int = 0, num_classes: int | None = None,
                seed: int = 0, device: str = "cpu", start: int = 0, stop: int | None = None,
                workers: int = 1, heartbeat_interval: int = 10, grace_period: int | None = None,
                max_retry: int = 3, torch_threads: int | None = None,
                progress: bool = True) -> dict[str, Any]:
    """Score architectures ``start .. stop-1`` of ``space`` (``arch_at`` order; default: all of
    it) with ``proxy``, on ``workers`` local processes, through the SQL database ``storage``.

    Resumable and shareable: rerunning, or running the same call on other machines with the same
    PostgreSQL URL, continues the same study; nothing is scored twice (score cache) and each
    architecture ends with exactly one finished trial (plus retries of killed workers' trials).

    Args:
        heartbeat_interval / grace_period / max_retry: a worker that stops beating for
            ``grace_period`` seconds (default ``2 * heartbeat_interval``) has its trial retried,
            at most ``max_retry`` times.
        torch_threads: ``torch.set_num_threads`` in each worker; default 1 when ``workers > 1``
            (one core per worker), else torch's default.

    Returns a summary: ``study_name``, ``total``, ``complete``, ``failed`` (with ``failures``:
    index, arch and reason, at most 20), ``stored_scores`` (rows of the slice in the score
    cache), ``done`` (every architecture finished), ``seconds``, ``archs_per_second``, ...

    Every argument is checked before the database is touched: an unknown space or proxy, a bad
    slice or an unreachable URL raises a ``ZcnasError`` naming the fix and writes nothing.
    """
    space = get_space(space) if isinstance(space, str) else space
    if isinstance(proxy, str):
        proxy = resolve(proxy, **dict(proxy_params or {}))
    elif proxy_params:
        raise ZcnasError("proxy_params only apply to a proxy given by name; pass "
                         "resolve(name, **params) or the name")
    size = space.size()
    stop = size if stop is None else int(stop)
    check_slice(int(start), stop, size)
    if workers < 1:
        raise ZcnasError(f"--workers must be at least 1, got {workers}")
    if heartbeat_interval < 1:
        raise ZcnasError(f"--heartbeat-interval must be at least 1 second, got {heartbeat_interval}")
    if torch_threads is not None and torch_threads < 1:
        raise ZcnasError(f"--torch-threads must be at least 1, got {torch_threads}")
    device = resolve_device(device)
    batch = load_batch(data, batch_size, data_seed, num_classes)
    url = storage or default_storage()
    cfg: dict[str, Any] = {
        "space": space, "proxy": proxy, "batch": batch, "seed": int(seed), "device": device,
        "start": int(start), "stop": stop, "storage": url, "workers": workers,
        "heartbeat_interval": int(heartbeat_interval), "grace_period": grace_period,
        "max_retry": max_retry, "torch_threads": torch_threads or (1 if workers > 1 else None),
        "study_name": study_name(space, proxy, batch, seed, int(start), stop),
        "optuna_verbosity": optuna.logging.get_verbosity(),
        "log_level": logging.getLogger("zcnas").getEffectiveLevel(),
    }
    study = _setup_study(cfg)  # the first write; StorageError if the URL is unusable
    before = trial_counts(study).finished
    t0 = time.perf_counter()
    ran_here: int | None = None
    errors: list[str] = []
    storage_errors: list[str] = []
    with _Progress(study, stop - start, progress):
        if workers == 1:
            ran_here = _worker(cfg)
        else:
            errors, storage_errors = _run_children(cfg)
    try:
        summary = _summary(study, cfg, before, time.perf_counter() - t0, ran_here)
    except StorageError:
        if storage_errors:  # the workers' own words for the same outage
            raise StorageError(storage_errors[0]) from None
        raise
    if storage_errors and not summary["done"]:
        # workers lost the database and the work is not finished: say it once, as the error
        raise StorageError(storage_errors[0])
    summary["worker_errors"] = errors
    if errors:
        _logger.info("%s; rerun the same command to finish", "; ".join(errors))
    _logger.info("score-space %s: %d/%d finished", cfg["study_name"], summary["finished"],
                 summary["total"])
    return summary


def _describe_exit(name: str, code: int | None, message: str | None) -> str:
    if code is not None and code < 0:
        try:
            sig = signal.Signals(-code).name
        except ValueError:
            sig = str(-code)
        return f"{name} was killed by {sig}"
    if message:
        return f"{name} stopped: {message}"
    return f"{name} exited with code {code}"


def _run_children(cfg: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``workers`` spawned processes running :func:`_worker`; waits for all of them. Returns
    (a line per worker that did not exit cleanly, the storage errors the workers reported)."""
    ctx = multiprocessing.get_context("spawn")
    pipes = [ctx.Pipe(duplex=False) for _ in range(cfg["workers"])]
    procs = [ctx.Process(target=_child, args=(cfg, send), name=f"zcnas-score-space-{i}",
                         daemon=False)
             for i, (_recv, send) in enumerate(pipes)]
    for p in procs:
        p.start()
    for _recv, send in pipes:
        send.close()  # the children hold their ends
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:  # the children got the same SIGINT: let them re-enqueue and stop
        for p in procs:
            p.join(timeout=30)
        raise
    errors, storage = [], []
    for p, (recv, _send) in zip(procs, pipes):
        message = None
        try:
            if recv.poll():
                message = recv.recv()
        except (EOFError, OSError):
            message = None
        recv.close()
        if p.exitcode == 0:
            continue
        if p.exitcode == EXIT_STORAGE and message:
            storage.append(message)
        errors.append(_describe_exit(p.name, p.exitcode, message))
    return errors, storage
