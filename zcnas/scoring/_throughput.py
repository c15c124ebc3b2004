"""Scoring many small networks concurrently, with the same values as the single-net path.

A NAS-Bench-201 network is too small to fill a GPU: one GradSign score is a few hundred short
kernels, so the device waits on the host (Python, autograd, ``vmap`` dispatch, building the next
model). Three ways to overlap that work are offered here; each returns exactly the values that
:func:`zcnas.scoring.compute_score` (the single-net path) returns, net by net:

``serial``     :func:`compute_score` for one net after the other (the reference).
``prefetch``   a background thread builds (seeds, initialises, moves to the device) the next
               nets while the calling thread scores the current one (host-side overlap).
``streams``    as ``prefetch``, and ``streams`` threads score nets at once, each on its own CUDA
               stream, so kernels of different nets can run side by side (CUDA only).
``processes``  ``workers`` spawned processes, each scoring every ``workers``-th net (what
               ``zcnas score-space --workers`` does, without the database).

Why not batch the per-sample work of several nets into one ``vmap``: ``torch.func``'s
``stack_module_state`` + ``vmap`` over models needs every model to have the same modules and
parameter shapes, and two NB201 cells differ exactly there (a 3x3 conv, a 1x1 conv, a pool, a
skip or nothing on each edge). Stacking is only possible for several seeds of one cell, which is
not what scoring a space needs. Making all cells the same shape (a supernet with every op on
every edge, unused ops masked out) computes every op on every edge (~3x the FLOPs of an average
cell) and turns the convolutions into grouped ones under ``vmap``, whose float rounding differs
from the single-net path, so near-zero per-sample gradients would change sign and scores would
not be identical. See ``torch/_functorch/functional_call.py`` (``stack_module_state``) in
pytorch/pytorch for the same-structure requirement.

Threads share torch's global random generator, so the threaded modes build every model under
one lock (``isolated_rng`` + :func:`fresh_model`, exactly as the single-net path) and need a
proxy that draws no random numbers while it scores: this is checked on the first net, and a
proxy that does raises ``ScoreError`` (use ``serial`` or ``processes`` for it).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
import contextlib
import multiprocessing
import queue
import resource
import statistics
import threading
import time
from typing import Any
from typing import cast

import torch
from torch import nn

from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.exceptions import ScoreError
from zcnas.exceptions import ZcnasError
from zcnas.proxies import Proxy
from zcnas.scoring._device import deterministic
from zcnas.scoring._device import resolve_device
from zcnas.scoring._evaluator import Evaluator
from zcnas.scoring._evaluator import resolve
from zcnas.scoring._score import compute_score
from zcnas.scoring._score import fresh_model
from zcnas.scoring._score import isolated_rng
from zcnas.spaces import DEFAULT_SPACE
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space


MODES = ("serial", "prefetch", "streams", "processes")

Arch = Mapping[str, Any]

# torch's default generator (and the CUDA one) is process-wide: every seed + build of a model in
# a threaded mode holds this lock, so each model gets exactly the single-net path's weights
_RNG_LOCK = threading.Lock()


def _rng_state(device: str) -> list[torch.Tensor]:
    states = [torch.get_rng_state()]
    if device.startswith("cuda"):
        states.append(torch.cuda.get_rng_state(torch.device(device)))
    return states


def _build(space: SearchSpace, arch: Arch, num_classes: int, seed: int, device: str,
           proxy: Proxy) -> nn.Module:
    """The single-net path's model (same seed, same weights), built under the RNG lock."""
    with _RNG_LOCK, isolated_rng(device):
        model = fresh_model(space, arch, num_classes, seed, device)
    if hasattr(proxy, "check_model"):
        proxy.check_model(model)
    if device.startswith("cuda"):  # the copies are on this thread's stream: finish them
        torch.cuda.current_stream().synchronize()
    return model


def _check_draws_no_random(space: SearchSpace, proxy: Proxy, arch: Arch, batch: Batch,
                           seed: int, device: str) -> float:
    """Score ``arch`` on the single-net path, failing if the proxy drew random numbers."""
    with _RNG_LOCK, isolated_rng(device):
        model = fresh_model(space, arch, batch.num_classes, seed, device)
        if hasattr(proxy, "check_model"):
            proxy.check_model(model)
        before = _rng_state(device)
        with deterministic(device):
            value = float(proxy.compute(model, batch))
        after = _rng_state(device)
    if any(not torch.equal(a, b) for a, b in zip(before, after)):
        raise ScoreError(f"{proxy.name} draws random numbers while it scores, so threads would "
                         f"change its values; use mode 'serial' or 'processes' for it")
    return value


def _proxy(proxy: Proxy | str, params: Mapping[str, Any] | None) -> Proxy:
    p = resolve(proxy, **dict(params or {})) if isinstance(proxy, str) else proxy
    if isinstance(p, Evaluator):
        raise ZcnasError(f"{p.name} is an evaluator (it scores through its members); concurrent "
                         f"scoring takes one proxy, e.g. --proxy gradsign")
    return p


def score_serial(space: SearchSpace, proxy: Proxy, archs: Sequence[Arch], batch: Batch, *,
                 seed: int = 0, device: str = "cpu") -> list[float]:
    """The single-net path, one net after the other (the reference of the other modes)."""
    device = resolve_device(device)
    batch = batch.to(device)
    return [compute_score(space, proxy, arch, batch, seed, device) for arch in archs]


def score_overlapped(space: SearchSpace, proxy: Proxy, archs: Sequence[Arch], batch: Batch, *,
                     seed: int = 0, device: str = "cpu", prefetch: int = 2,
                     streams: int = 0) -> list[float]:
    """Build the next ``prefetch`` nets in a background thread while scoring the current one.

    ``streams=0``: the calling thread scores (host-side overlap only; any device).
    ``streams=K >= 1``: ``K`` threads score, each on its own ``torch.cuda.Stream`` (CUDA only).
    Values equal :func:`score_serial`'s (tests check it on the CPU); raises ``ScoreError`` if the
    proxy draws random numbers while scoring (see the module docstring).
    """
    device = resolve_device(device)
    if prefetch < 1:
        raise ZcnasError(f"prefetch must be at least 1, got {prefetch}")
    if streams < 0:
        raise ZcnasError(f"streams must be >= 0, got {streams}")
    if streams and not device.startswith("cuda"):
        raise ZcnasError(f"CUDA streams need a CUDA device, got {device!r}; use --device cuda, "
                         f"or mode 'prefetch' (streams off) on the CPU")
    if not archs:
        return []
    batch = batch.to(device)
    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))  # the batch is on every stream from here
    values: list[float] = [0.0] * len(archs)
    with deterministic(device):  # set once: per-thread save/restore of the flags would race
        values[0] = _check_draws_no_random(space, proxy, archs[0], batch, seed, device)
        built: queue.Queue[tuple[int, nn.Module] | BaseException | None] = queue.Queue(prefetch)
        stop = threading.Event()

        def put(item: tuple[int, nn.Module] | BaseException | None) -> bool:
            """Queue ``item`` unless the scoring side has stopped (then False)."""
            while not stop.is_set():
                try:
                    built.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def builder() -> None:
            try:
                for i in range(1, len(archs)):
                    if not put((i, _build(space, archs[i], batch.num_classes, seed, device,
                                          proxy))):
                        return
                put(None)
            except BaseException as exc:  # handed to the scoring side, which re-raises it
                put(exc)

        thread = threading.Thread(target=builder, name="zcnas-prefetch", daemon=True)
        thread.start()
        try:
            if streams:
                _score_on_streams(proxy, batch, device, streams, built, values)
            else:
                for i, model in _drain(built):
                    values[i] = float(proxy.compute(model, batch))
                    del model
        finally:
            stop.set()
            with contextlib.suppress(queue.Empty):
                while True:
                    built.get_nowait()
            thread.join()
    return values


def _drain(built: queue.Queue) -> Iterator[tuple[int, nn.Module]]:
    while True:
        item = built.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def _score_on_streams(proxy: Proxy, batch: Batch, device: str, streams: int,
                      built: queue.Queue, values: list[float]) -> None:
    """``streams`` threads, each on its own CUDA stream, take built nets and score them."""
    dev = torch.device(device)
    pool = [torch.cuda.Stream(device=dev) for _ in range(streams)]

    def score_one(k: int, i: int, model: nn.Module) -> None:
        stream = pool[k]
        stream.wait_stream(torch.cuda.default_stream(dev))
        with torch.cuda.stream(stream):
            values[i] = float(proxy.compute(model, batch))
            stream.synchronize()  # nothing of this net is pending when its memory is freed

    with ThreadPoolExecutor(max_workers=streams, thread_name_prefix="zcnas-stream") as ex:
        pending: list[Future] = []
        slot = 0
        for i, model in _drain(built):
            pending.append(ex.submit(score_one, slot % streams, i, model))
            slot += 1
            if len(pending) >= streams:  # at most one net per stream in flight
                pending.pop(0).result()
        for fut in pending:
            fut.result()


def _process_worker(args: tuple[SearchSpace, Proxy, list[tuple[int, dict]], Batch, int, str,
                                int | None]) -> tuple[list[tuple[int, float]], float, float]:
    space, proxy, items, batch, seed, device, threads = args
    if threads:
        torch.set_num_threads(threads)
    batch = batch.to(device)
    start = time.perf_counter()
    out = [(i, compute_score(space, proxy, arch, batch, seed, device)) for i, arch in items]
    return out, start, time.perf_counter()


def score_processes(space: SearchSpace, proxy: Proxy, archs: Sequence[Arch], batch: Batch, *,
                    seed: int = 0, device: str = "cpu", workers: int = 2,
                    threads: int | None = 1) -> tuple[list[float], float]:
    """``workers`` spawned processes (torch ``threads`` each), worker ``w`` scoring nets
    ``w, w + workers, ...`` on the single-net path. Returns (values, seconds of the slowest
    worker's scoring, without the process start-up)."""
    device = resolve_device(device)
    if workers < 1:
        raise ZcnasError(f"workers must be at least 1, got {workers}")
    jobs = [(space, proxy, [(i, dict(archs[i])) for i in range(w, len(archs), workers)], batch,
             seed, device, threads) for w in range(workers)]
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(workers)
    try:
        results = pool.map(_process_worker, jobs)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    values = [0.0] * len(archs)
    for out, _start, _stop in results:
        for i, v in out:
            values[i] = v
    busy = max((stop - start for out, start, stop in results if out), default=0.0)
    return values, busy


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _same(a: Sequence[float], b: Sequence[float]) -> bool:
    """Bitwise the same floats (NaN equal to NaN)."""
    return len(a) == len(b) and all(x == y or (x != x and y != y) for x, y in zip(a, b))


def throughput(*, n: int = 8, batch_size: int = 64, proxy: str = "gradsign",
               proxy_params: Mapping[str, Any] | None = None,
               space: SearchSpace | str = DEFAULT_SPACE, device: str = "cpu",
               modes: Sequence[str] | None = None, workers: int = 2, streams: int = 2,
               prefetch: int = 2, seed: int = 0, data: str = "cifar10",
               threads: int | None = None, repeats: int = 1) -> dict[str, Any]:
    """Score the same ``n`` seeded nets of ``space`` in each mode; time it and compare values.

    ``modes`` default: serial, prefetch, processes (and streams on CUDA). One untimed net is
    scored first (warm-up). ``threads`` is ``torch.set_num_threads`` for the in-process modes
    (restored afterwards); each of the ``workers`` processes uses ``max(1, threads // workers)``
    (default 1). ``repeats`` timed runs per mode, the median reported.

    Returns the settings and, per mode: ``seconds`` (wall, for ``processes`` including the
    process start-up), ``nets_per_second``, ``speedup`` (serial seconds / these),
    ``cpu_seconds`` (CPU time of this process and its workers: on a busy machine it compares
    modes better than wall time), ``identical`` (every value bitwise equal to ``serial``'s) and
    ``max_rel_diff``; for
    ``processes`` also ``busy_seconds`` (the slowest worker's scoring time alone).
    """
    if n < 1 or batch_size < 1 or repeats < 1:
        raise ZcnasError("throughput needs --n, --batch-size and --repeats >= 1")
    device = resolve_device(device)
    cuda = device.startswith("cuda")
    modes = list(modes) if modes else ["serial", "prefetch", "processes"] + (["streams"] * cuda)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ZcnasError(f"unknown throughput mode(s) {', '.join(unknown)}; use "
                         f"{', '.join(MODES)}")
    if "streams" in modes and not cuda:
        raise ZcnasError(f"mode 'streams' needs a CUDA device, got {device!r}; use --device cuda "
                         f"or leave 'streams' out of --modes")
    modes = ["serial"] + [m for m in dict.fromkeys(modes) if m != "serial"]
    space = get_space(space) if isinstance(space, str) else space
    p = _proxy(proxy, proxy_params)
    batch = load_batch(data, batch_size)
    archs = space.sample(n, seed=seed)
    runners: dict[str, Callable[[], tuple[list[float], float | None]]] = {
        "serial": lambda: (score_serial(space, p, archs, batch, seed=seed, device=device), None),
        "prefetch": lambda: (score_overlapped(space, p, archs, batch, seed=seed, device=device,
                                              prefetch=prefetch), None),
        "streams": lambda: (score_overlapped(space, p, archs, batch, seed=seed, device=device,
                                             prefetch=prefetch, streams=streams), None),
        "processes": lambda: score_processes(
            space, p, archs, batch, seed=seed, device=device, workers=workers,
            threads=max(1, (threads or 1) // workers)),
    }
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    results: dict[str, dict[str, Any]] = {}
    try:
        score_serial(space, p, archs[:1], batch, seed=seed, device=device)  # warm-up
        reference: list[float] | None = None
        for mode in modes:
            runs = []
            for _ in range(repeats):
                if cuda:
                    torch.cuda.synchronize()
                t0, c0 = time.perf_counter(), _cpu_seconds()
                values, busy = runners[mode]()
                if cuda:
                    torch.cuda.synchronize()
                runs.append((time.perf_counter() - t0, busy, values, _cpu_seconds() - c0))
            seconds = statistics.median(r[0] for r in runs)
            values = runs[-1][2]
            if reference is None:
                reference = values
            rel = max((abs(a - b) / max(abs(b), 1e-30) for a, b in zip(values, reference)
                       if a == a and b == b), default=0.0)
            rec: dict[str, Any] = {
                "seconds": seconds, "nets_per_second": n / seconds,
                "cpu_seconds": statistics.median(r[3] for r in runs),
                "identical": _same(values, reference), "max_rel_diff": rel, "values": values,
            }
            if runs[-1][1] is not None:
                # a mode's runner reports busy seconds on every run or on none
                rec["busy_seconds"] = statistics.median(cast(float, r[1]) for r in runs)
            results[mode] = rec
    finally:
        torch.set_num_threads(old_threads)
    base = results["serial"]["seconds"]
    for rec in results.values():
        rec["speedup"] = base / rec["seconds"]
    return {
        "suite": "throughput", "space": space.name, "proxy": p.name,
        "proxy_params": p.get_params(), "device": device,
        "device_name": torch.cuda.get_device_name(torch.device(device)) if cuda else "cpu",
        "torch_version": torch.__version__, "torch_threads": threads or old_threads,
        "n": n, "batch_size": batch_size, "seed": seed, "data": data, "repeats": repeats,
        "workers": workers, "streams": streams, "prefetch": prefetch,
        "archs": [space.key(a) for a in archs], "modes": results,
    }


def format_throughput(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`throughput`'s result."""
    lines = [
        f"throughput: {result['proxy']} on {result['n']} {result['space']} nets, batch "
        f"{result['batch_size']}, device {result['device']} ({result['device_name']}), torch "
        f"{result['torch_version']}, {result['torch_threads']} threads, workers "
        f"{result['workers']}, streams {result['streams']}",
        f"  {'mode':<12}{'seconds':>10}{'cpu s':>10}{'nets/s':>10}{'speedup':>10}  identical to "
        f"serial",
    ]
    for mode, rec in result["modes"].items():
        busy = f" (scoring alone {rec['busy_seconds']:.2f} s)" if "busy_seconds" in rec else ""
        lines.append(f"  {mode:<12}{rec['seconds']:>10.2f}{rec['cpu_seconds']:>10.2f}"
                     f"{rec['nets_per_second']:>10.2f}"
                     f"{rec['speedup']:>10.2f}  {'yes' if rec['identical'] else 'NO'}"
                     f" (max rel diff {rec['max_rel_diff']:.1e}){busy}")
    return "\n".join(lines)
