"""``correlate``: how well proxies rank architectures, against benchmark ground truth."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import csv
from dataclasses import dataclass
from dataclasses import field
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from zcnas.analysis import PairedDifference
from zcnas.analysis import paired_difference
from zcnas.analysis import rank_correlation
from zcnas.benchmarks import get_benchmark
from zcnas.data import load_batch
from zcnas.evaluate import batch_key
from zcnas.evaluate import score_record
from zcnas.proxies import Proxy
from zcnas.proxies import get_proxy
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache


_logger = logging.getLogger(__name__)


@dataclass
class CorrelateResult:
    """Scores of every proxy on every sampled architecture, and the correlation table."""

    arch_keys: list[str]
    truth: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    seconds: dict[str, np.ndarray]
    directions: dict[str, str]
    summary: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[PairedDifference] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    def row(self, proxy: str, dataset: str) -> dict[str, Any]:
        for r in self.summary:
            if r["proxy"] == proxy and r["dataset"] == dataset:
                return r
        raise KeyError((proxy, dataset))


def _prefetch(cache: ScoreCache | None, space: Any, proxy: Proxy, batch: Any, seed: int,
              keys: Sequence[str]) -> dict:
    if cache is None:
        return {}
    params_json = json.dumps(proxy.get_params(), sort_keys=True, default=str)
    return cache.lookup_many(space.cache_name, proxy.name, proxy.version, params_json,
                             batch_key(proxy, batch), seed, keys)


def score_many(space: Any, proxies: Sequence[Proxy], arch_keys: Sequence[str], batch: Any, *,
               seed: int = 0, device: str = "cpu", cache: ScoreCache | None = None,
               progress: bool = True, desc: str = "scoring"
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Score every arch with every proxy (cached; an interrupted run resumes where it stopped).

    Returns (scores, seconds) by proxy name; failed scores are NaN.
    """
    scores = {p.name: np.full(len(arch_keys), np.nan) for p in proxies}
    seconds = {p.name: np.full(len(arch_keys), np.nan) for p in proxies}
    todo: list[tuple[int, Proxy]] = []
    for proxy in proxies:
        known = _prefetch(cache, space, proxy, batch, seed, arch_keys)
        for i, key in enumerate(arch_keys):
            rec = known.get(key)
            if rec is None:
                todo.append((i, proxy))
            else:
                scores[proxy.name][i] = rec.value if rec.ok else np.nan
                seconds[proxy.name][i] = rec.seconds
    todo.sort(key=lambda t: t[0])  # arch-major: each finished arch is complete for all proxies
    bar = tqdm(todo, desc=desc, unit="score", disable=not progress or not todo, smoothing=0.05)
    for i, proxy in bar:
        rec = score_record(space, proxy, arch_keys[i], batch, seed=seed, device=device,
                           cache=cache)
        scores[proxy.name][i] = rec.value if rec.ok else np.nan
        seconds[proxy.name][i] = rec.seconds
        if not rec.ok:
            _logger.warning("%s failed on %s: %s", proxy.name, arch_keys[i], rec.reason)
    return scores, seconds


def sample_keys(space: Any, n: int, seed: int, exclude: Sequence[str] = ()) -> list[str]:
    """The keys of ``space.sample(n, seed)`` minus ``exclude``, topped up to ``n`` from a larger
    draw with the same seed: a held-out evaluation keeps the cells (and cached scores) of the same
    run without ``--holdout``, except the excluded ones."""
    excluded = set(exclude)
    keys = [k for k in (space.key(a) for a in space.sample(min(space.size(), n), seed=seed))
            if k not in excluded]
    if len(keys) < n:
        have = set(keys)
        larger = space.sample(min(space.size(), n + len(excluded)), seed=seed)
        keys += [k for k in (space.key(a) for a in larger)
                 if k not in excluded and k not in have][: n - len(keys)]
    return keys


def correlate(*, space: str = "nb201",
              proxies: Sequence[str] = ("gradsign", "gradalign", "synflow", "naswot", "params"),
              proxy_params: Mapping[str, Mapping[str, Any]] | None = None,
              benchmark: str = "nb201", benchmark_params: Mapping[str, Any] | None = None,
              datasets: Sequence[str] = ("cifar10",), metric: str = "test", n: int = 1000,
              sample_seed: int = 0, arch_keys: Sequence[str] | None = None,
              exclude: Sequence[str] = (), data: str = "cifar10", batch_size: int = 64,
              data_seed: int = 0, num_classes: int | None = None, seed: int = 0,
              device: str = "cpu", storage: str | None = None, use_cache: bool = True,
              n_bootstrap: int = 1000, out_dir: str | Path | None = "zcnas_out/correlate",
              holdout: int = 0, holdout_seed: int | None = None,
              progress: bool = True) -> CorrelateResult:
    """Sample ``n`` architectures (seeded, excluding ``exclude``), score them with each proxy
    on one data batch, and correlate with ``benchmark``'s ``metric`` on each of ``datasets``.

    Writes ``scores.csv``, ``summary.csv`` and ``correlation.png`` under ``out_dir`` (None:
    write nothing). Scores go through the SQL cache, so a repeated or interrupted run reuses them.

    ``holdout > 0`` fits a ``learned_ensemble`` of the listed single proxies on ``holdout``
    labelled cells (seed ``holdout_seed``, first dataset) and reports every proxy only on
    cells disjoint from those. Each ensemble is compared with its best member by a paired
    bootstrap of the difference in Kendall tau (``result.comparisons``).
    """
    sp = get_space(space)
    bm = get_benchmark(benchmark, **dict(benchmark_params or {}))
    proxy_params = {k: dict(v) for k, v in (proxy_params or {}).items()}
    proxies = list(proxies)
    if holdout > 0:
        from zcnas.ensembles import fit_ensemble  # late: ensembles imports this module

        singles = [p for p in proxies if not get_proxy(p, **proxy_params.get(p, {})).members()]
        path = Path(out_dir or "zcnas_out/correlate") / "learned_ensemble.json"
        spec = fit_ensemble(
            out=path, space=space, members=singles,
            member_params={p: proxy_params[p] for p in singles if p in proxy_params},
            benchmark=benchmark, dataset=datasets[0], metric=metric, n_train=holdout,
            train_seed=sample_seed + 1 if holdout_seed is None else holdout_seed, data=data,
            batch_size=batch_size, data_seed=data_seed, seed=seed, device=device,
            storage=storage, progress=progress,
        )
        exclude = [*exclude, *spec["train_cells"]]
        proxies.append("learned_ensemble")
        proxy_params["learned_ensemble"] = {"path": str(path)}
    proxy_objs = [get_proxy(name, **proxy_params.get(name, {})) for name in proxies]
    if arch_keys is None:
        arch_keys = sample_keys(sp, n, sample_seed, exclude)
    else:
        arch_keys = [sp.key(sp.as_arch(k)) for k in arch_keys]
    truth = {ds: np.array([bm.query(k, ds, metric) for k in arch_keys]) for ds in datasets}
    batch = load_batch(data, batch_size, data_seed, num_classes)
    cache = ScoreCache(storage) if use_cache else None
    scores, seconds = score_many(sp, proxy_objs, arch_keys, batch, seed=seed, device=device,
                                 cache=cache, progress=progress)
    result = CorrelateResult(
        arch_keys=list(arch_keys), truth=truth, scores=scores, seconds=seconds,
        directions={p.name: p.direction for p in proxy_objs},
    )
    result.summary = summarize(result, n_bootstrap=n_bootstrap)
    result.comparisons = compare_ensembles(result, proxy_objs, n_bootstrap=n_bootstrap)
    if out_dir is not None:
        result.files = write_outputs(result, Path(out_dir), benchmark=benchmark, metric=metric)
    return result


def summarize(result: CorrelateResult, n_bootstrap: int = 1000) -> list[dict[str, Any]]:
    rows = []
    for dataset, truth in result.truth.items():
        for name, values in result.scores.items():
            rc = rank_correlation(values, truth, n_bootstrap=n_bootstrap,
                                  direction=result.directions.get(name, "maximize"))
            secs = result.seconds.get(name)
            timed = secs is not None and bool(np.isfinite(secs).any())
            rows.append({
                "proxy": name, "dataset": dataset, **rc.as_dict(),
                "failed": int(np.sum(~np.isfinite(values))),
                "mean_seconds": float(np.nanmean(secs)) if timed else float("nan"),
            })
    return rows


def compare_ensembles(result: CorrelateResult, proxies: Sequence[Proxy],
                      n_bootstrap: int = 1000) -> list[PairedDifference]:
    """Each ensemble vs the best (by Kendall tau) single proxy of the run, per dataset."""
    singles = [p.name for p in proxies if not p.members()]
    ensembles = [p.name for p in proxies if p.members()]
    out = []
    for dataset, truth in result.truth.items():
        if not singles:
            break
        best = max(singles, key=lambda n: result.row(n, dataset)["kendall"])
        for name in ensembles:
            out.append(paired_difference(
                result.scores[name], result.scores[best], truth,
                names=(f"{name}@{dataset}", best), n_bootstrap=n_bootstrap,
                directions=(result.directions[name], result.directions[best]),
            ))
    return out


def format_comparisons(diffs: Sequence[PairedDifference]) -> str:
    return "\n".join(
        f"{d.a} - {d.b}: d_kendall {d.kendall:+.3f} [{d.kendall_ci[0]:+.3f}, "
        f"{d.kendall_ci[1]:+.3f}], d_spearman {d.spearman:+.3f} [{d.spearman_ci[0]:+.3f}, "
        f"{d.spearman_ci[1]:+.3f}] on {d.n} cells{'  (significant)' if d.significant else ''}"
        for d in diffs
    )


def format_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of the summary rows."""
    lines = [f"{'proxy':<18}{'dataset':<12}{'n':>6}{'fail':>6}  {'spearman [95% CI]':<26}"
             f"{'kendall [95% CI]':<26}{'s/arch':>8}"]
    for r in rows:
        lines.append(
            f"{r['proxy']:<18}{r['dataset']:<12}{r['n']:>6}{r['failed']:>6}  "
            f"{r['spearman']:6.3f} [{r['spearman_lo']:.3f}, {r['spearman_hi']:.3f}]     "
            f"{r['kendall']:6.3f} [{r['kendall_lo']:.3f}, {r['kendall_hi']:.3f}]     "
            f"{r['mean_seconds']:8.3f}"
        )
    return "\n".join(lines)


def write_outputs(result: CorrelateResult, out: Path, *, benchmark: str, metric: str
                  ) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    scores_csv, summary_csv, plot = out / "scores.csv", out / "summary.csv", out / "correlation.png"
    with scores_csv.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", *[f"{benchmark}_{d}_{metric}" for d in result.truth], *result.scores])
        for i, key in enumerate(result.arch_keys):
            w.writerow([key, *[t[i] for t in result.truth.values()],
                        *[s[i] for s in result.scores.values()]])
    with summary_csv.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(result.summary[0]))
        w.writeheader()
        w.writerows(result.summary)
    plot_correlation(result, plot)
    return {"scores": scores_csv, "summary": summary_csv, "plot": plot}


def plot_correlation(result: CorrelateResult, path: Path) -> None:
    """Rank-vs-accuracy scatter per proxy (first dataset), titled with rho and tau."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import rankdata

    dataset = next(iter(result.truth))
    truth = result.truth[dataset]
    names = list(result.scores)
    cols = min(4, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        values = result.scores[name]
        ok = np.isfinite(values)
        signed = values[ok] if result.directions.get(name) != "minimize" else -values[ok]
        ax.scatter(rankdata(signed) / max(1, ok.sum()), truth[ok], s=4, alpha=0.5)
        r = next(x for x in result.summary if x["proxy"] == name and x["dataset"] == dataset)
        ax.set_title(f"{name}: rho={r['spearman']:.3f} tau={r['kendall']:.3f}", fontsize=9)
        ax.set_xlabel("proxy rank (quantile)")
        ax.set_ylabel(f"{dataset} accuracy (%)")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
