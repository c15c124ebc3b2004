"""``zcnas bench``: time proxies against the plain forward+backward floor on seeded networks of a
search space (the default space, NAS-Bench-201).

For each net, side by side in one process: the floor (one batched forward + backward of the
cross-entropy loss), each proxy's :meth:`Proxy.compute`, and for proxies that offer a
``reference(model, batch)`` (GradSign, GradAlign: the plain per-sample loop) that reference too.
Every timed call gets a freshly built model (building is not timed); each method is run once
untimed first (warm-up), then ``repeats`` times, and the median is reported.

``variants=("channels_last",)`` also times each proxy on the model and batch in
``torch.channels_last`` memory format (``name@channels_last``, with ``rel_diff`` to the default
score). It is a timing variant, not a scoring option (its values differ from the default path's
by float rounding), and the only layout/precision variant offered: on the CPU its GradSign sign
counts are as close to the batch-1 loop's as the default path's are (the sign dead-zone rule,
``tests/proxies_tests/test_gradsign_variants.py``), whereas bfloat16 autocast changed 9-77% of
the per-weight sign counts and the score by up to 1% on the nets measured, so no AMP variant
exists (the device check's ``precision`` step measures both, on CUDA too).

Peak memory is measured in a separate untimed run per method and net: on CUDA
``torch.cuda.max_memory_allocated`` above what was allocated before the call; on CPU (Linux) the
process's peak RSS (VmHWM, reset through /proc/self/clear_refs) above the RSS before the call,
with glibc told to return freed blocks >= 64 KiB to the OS so that reused heap does not hide the
peak. Without /proc the ``ru_maxrss`` delta is used, which only sees new process-wide peaks.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
import ctypes
from functools import partial
import resource
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.exceptions import ZcnasError
from zcnas.proxies import get_proxy
from zcnas.proxies import list_proxies
from zcnas.scoring._device import resolve_device
from zcnas.scoring._score import fresh_model
from zcnas.scoring._score import isolated_rng
from zcnas.spaces import DEFAULT_SPACE
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space


VARIANTS = ("channels_last",)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_GLIBC_DEFAULT_THRESHOLD = 128 * 1024


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/self/status")


def _reset_hwm() -> bool:
    """Reset the process's peak RSS to its current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _status_bytes("VmHWM")
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _malloc_returns_memory() -> Iterator[None]:
    """glibc: serve allocations >= 64 KiB by mmap and trim eagerly, so that freed tensors leave
    the RSS and the next peak is visible (restored to glibc's fixed defaults afterwards)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 64 * 1024)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT_THRESHOLD)


class _PeakMemory(contextlib.AbstractContextManager):
    """Peak extra memory (bytes) used inside the block; see the module docstring."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.peak = 0

    def __enter__(self) -> _PeakMemory:
        if self.cuda:
            torch.cuda.synchronize()
            self._base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        elif _reset_hwm():
            self._hwm = True
            self._base = _status_bytes("VmRSS")
        else:  # ru_maxrss is KiB on Linux and only moves when the old peak is passed
            self._hwm = False
            self._base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._base
        elif self._hwm:
            self.peak = _status_bytes("VmHWM") - self._base
        else:
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self._base


def _memory_method(device: str) -> str:
    if device.startswith("cuda"):
        return "cuda max_memory_allocated delta"
    if _reset_hwm():
        return "peak RSS (VmHWM) delta"
    return "ru_maxrss delta (new peaks only)"


def _floor(model: torch.nn.Module, batch: Batch) -> float:
    loss = F.cross_entropy(model(batch.inputs), batch.targets)
    loss.backward()
    return loss.item()


def _time(fn: Callable[[], Any], device: str) -> tuple[float, Any]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def _peak(fn: Callable[[], Any], device: str) -> int:
    if not device.startswith("cuda"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # give back what earlier calls left in the heap
    with _PeakMemory(device) as mem:
        fn()
    return mem.peak


def bench(*, n: int = 5, batch_size: int = 64, proxies: Sequence[str] | None = None,
          space: SearchSpace | str = DEFAULT_SPACE, device: str = "cpu", repeats: int = 3,
          seed: int = 0, data: str = "cifar10", threads: int | None = None, loops: bool = True,
          variants: Sequence[str] = (), progress: bool = True) -> dict[str, Any]:
    """Time proxies on ``n`` seeded random networks of ``space``; returns a JSON-serialisable dict.

    Args:
        n: number of nets (``space.sample(n, seed)``).
        batch_size: samples per batch (``load_batch(data, batch_size)``).
        proxies: names (default every registered single-network proxy; ensembles and other
            evaluators are timed through their members).
        space: the search space (object or registered name).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        repeats: timed runs per method and net (median reported).
        seed: seeds the net sample and each net's initialisation.
        threads: ``torch.set_num_threads`` for the run (restored afterwards; default: as is).
        loops: also time ``reference`` (the per-sample loop) where a proxy has one.
        variants: layout variants to time too (``channels_last``; see the module docstring).

    Returns a dict with the settings, ``nets`` (per net: arch, floor seconds and peak bytes, and per
    method: median seconds, ratio to the floor, peak bytes, score; for loops also
    ``loop_over_vectorised``) and ``summary`` (per method: median over nets of those ratios).
    """
    if n < 1 or batch_size < 1 or repeats < 1:
        raise ZcnasError("bench needs --n, --batch-size and --repeats >= 1")
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise ZcnasError(f"unknown bench variant(s) {', '.join(bad)}; use {', '.join(VARIANTS)} "
                         f"(AMP is not offered: it changes GradSign's signs)")
    device = resolve_device(device)
    space = get_space(space) if isinstance(space, str) else space
    names = list(proxies) if proxies else list_proxies()
    instances = {name: get_proxy(name) for name in names}
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        with isolated_rng(device):
            return _bench(space, n, batch_size, instances, device, repeats, seed, data, loops,
                          tuple(variants), progress)
    finally:
        torch.set_num_threads(old_threads)


def _bench(space: SearchSpace, n: int, batch_size: int, instances: dict[str, Any], device: str,
           repeats: int, seed: int, data: str, loops: bool, variants: tuple[str, ...],
           progress: bool) -> dict[str, Any]:
    batch = load_batch(data, batch_size).to(device)
    batch_cl = Batch(batch.inputs.contiguous(memory_format=torch.channels_last), batch.targets,
                     batch.num_classes, batch.source)
    archs = space.sample(n, seed=seed)

    def fresh(arch: dict) -> torch.nn.Module:
        return fresh_model(space, arch, batch.num_classes, seed, device)

    methods: list[tuple[str, Callable[[torch.nn.Module], Any]]] = [
        ("floor", lambda m: _floor(m, batch))
    ]

    def compute(p: Any, m: torch.nn.Module) -> Any:
        return p.compute(m, batch)

    def reference(p: Any, m: torch.nn.Module) -> Any:
        return p.reference(m, batch)

    def compute_channels_last(p: Any, m: torch.nn.Module) -> Any:
        # Module.to takes memory_format at runtime (documented), torch's overloads omit it
        return p.compute(m.to(memory_format=torch.channels_last), batch_cl)  # type: ignore[call-overload]

    for name, proxy in instances.items():
        methods.append((name, partial(compute, proxy)))
        if loops and callable(getattr(proxy, "reference", None)):
            methods.append((f"{name}:loop", partial(reference, proxy)))
        if "channels_last" in variants:
            methods.append((f"{name}@channels_last", partial(compute_channels_last, proxy)))

    nets: list[dict[str, Any]] = []
    steps = n * len(methods) * (repeats + 1)
    bar = tqdm(total=steps, desc="bench", unit="run", disable=not progress)
    for index, arch in enumerate(archs):
        row: dict[str, Any] = {
            "arch": space.key(arch),
            "params_m": sum(p.numel() for p in fresh(arch).parameters()) / 1e6,
            "methods": {},
        }
        for method, fn in methods:
            bar.set_postfix_str(f"net {index + 1}/{n} {method}")
            if index == 0:
                fn(fresh(arch))  # warm-up (vmap tracing, allocator, thread pools)
            runs = []
            for _ in range(repeats):
                model = fresh(arch)
                runs.append(_time(partial(fn, model), device))
                del model
                bar.update(1)
            out = runs[-1][1]
            row["methods"][method] = {
                "seconds": statistics.median(r[0] for r in runs),
                "score": float(out) if isinstance(out, (int, float)) else None,
            }
        floor = row["methods"]["floor"]["seconds"]
        for method, rec in row["methods"].items():
            rec["ratio_floor"] = rec["seconds"] / floor
            if method.endswith(":loop"):
                vec = row["methods"][method[:-5]]["seconds"]
                rec["loop_over_vectorised"] = rec["seconds"] / vec
            if "@" in method:
                default = row["methods"][method.split("@")[0]]["score"]
                rec["rel_diff"] = (None if rec["score"] is None or not default
                                   else abs(rec["score"] - default) / abs(default))
        nets.append(row)
    # memory in a separate, untimed pass (the allocator settings it needs would slow timings)
    with _malloc_returns_memory():
        for index, arch in enumerate(archs):
            for method, fn in methods:
                bar.set_postfix_str(f"memory net {index + 1}/{n} {method}")
                model = fresh(arch)
                peak = _peak(partial(fn, model), device)
                nets[index]["methods"][method]["peak_bytes"] = peak
                del model
                bar.update(1)
    bar.close()

    summary = {}
    for method, _fn in methods:
        recs = [net["methods"][method] for net in nets]
        summary[method] = {
            "median_seconds": statistics.median(r["seconds"] for r in recs),
            "median_ratio_floor": statistics.median(r["ratio_floor"] for r in recs),
            "max_peak_bytes": max(r["peak_bytes"] for r in recs),
        }
        if method.endswith(":loop"):
            summary[method]["median_loop_over_vectorised"] = statistics.median(
                r["loop_over_vectorised"] for r in recs
            )
        if "@" in method:
            diffs = [r["rel_diff"] for r in recs]
            summary[method]["max_rel_diff"] = None if None in diffs else max(diffs)
    return {
        "space": space.name,
        "device": device,
        "device_name": (torch.cuda.get_device_name(torch.device(device))
                        if device.startswith("cuda") else "cpu"),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "n": n, "batch_size": batch_size, "repeats": repeats, "seed": seed, "data": data,
        "variants": list(variants),
        "memory": _memory_method(device),
        "nets": nets,
        "summary": summary,
    }


def format_report(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`bench`'s result."""
    lines = [
        f"device {result['device']} ({result['device_name']}), torch {result['torch_version']}, "
        f"{result['torch_threads']} threads, batch {result['batch_size']}, "
        f"median of {result['repeats']}, memory: {result['memory']}",
    ]
    header = f"{'method':<22}{'seconds':>10}{'x floor':>9}{'loop/vec':>10}{'peak MB':>10}  score"
    for i, net in enumerate(result["nets"]):
        lines.append(f"net {i} ({net['params_m']:.3f}M params) {net['arch']}")
        lines.append("  " + header)
        for method, rec in net["methods"].items():
            lv = rec.get("loop_over_vectorised")
            score = "" if rec["score"] is None else f"{rec['score']:.6g}"
            lines.append(
                f"  {method:<22}{rec['seconds']:>10.3f}{rec['ratio_floor']:>9.2f}"
                f"{'' if lv is None else f'{lv:.2f}':>10}{rec['peak_bytes'] / 2**20:>10.1f}  {score}"
            )
    lines.append("summary (median over nets)")
    lines.append(f"  {'method':<22}{'seconds':>10}{'x floor':>9}{'loop/vec':>10}{'max MB':>10}")
    for method, rec in result["summary"].items():
        lv = rec.get("median_loop_over_vectorised")
        lines.append(
            f"  {method:<22}{rec['median_seconds']:>10.3f}{rec['median_ratio_floor']:>9.2f}"
            f"{'' if lv is None else f'{lv:.2f}':>10}{rec['max_peak_bytes'] / 2**20:>10.1f}"
            + (f"  max rel diff to {method.split('@')[0]} {rec['max_rel_diff']:.1e}"
               if rec.get("max_rel_diff") is not None else "")
        )
    return "\n".join(lines)
