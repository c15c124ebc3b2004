"""``correlate``: how well proxies rank architectures, against benchmark ground truth."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import logging
from pathlib import Path
from typing import Any

import numpy as np

from zcnas.analysis._card import CardRow
from zcnas.analysis._card import card_row
from zcnas.analysis._card import format_card
from zcnas.analysis._card import regret_at
from zcnas.analysis._stats import PairedDifference
from zcnas.analysis._stats import paired_difference
from zcnas.analysis._stats import rank_correlation
from zcnas.benchmarks import DEFAULT_BENCHMARK
from zcnas.benchmarks import Benchmark
from zcnas.benchmarks import get_benchmark
from zcnas.data import load_batch
from zcnas.exceptions import InvalidArchError
from zcnas.exceptions import ZcnasError
from zcnas.reports import ScatterPanel
from zcnas.reports import rank_card
from zcnas.reports import rank_scatter
from zcnas.reports import write_csv
from zcnas.scoring import Scorable
from zcnas.scoring import is_evaluator
from zcnas.scoring import resolve
from zcnas.scoring import score_many
from zcnas.scoring import tag
from zcnas.spaces import DEFAULT_SPACE
from zcnas.spaces import SearchSpace
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
    tags: dict[str, str] = field(default_factory=dict)
    summary: list[dict[str, Any]] = field(default_factory=list)
    agreement: list[dict[str, Any]] = field(default_factory=list)
    controls: dict[str, np.ndarray] = field(default_factory=dict)
    card: list[CardRow] = field(default_factory=list)
    seed_spread: dict[str, float] = field(default_factory=dict)
    comparisons: list[PairedDifference] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    #: scores that differ by dataset (a benchmark's precomputed proxies, computed per task on
    #: TransNAS-Bench-101): ``per_dataset[d][name]`` replaces ``scores[name]`` on dataset d
    per_dataset: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def values(self, name: str, dataset: str) -> np.ndarray:
        """The scores of ``name`` that are compared with ``dataset``'s ground truth."""
        return self.per_dataset.get(dataset, {}).get(name, self.scores[name])

    def row(self, proxy: str, dataset: str) -> dict[str, Any]:
        for r in self.summary:
            if r["proxy"] == proxy and r["dataset"] == dataset:
                return r
        raise KeyError((proxy, dataset))


def benchmark_keys(space: SearchSpace, benchmark: Benchmark, dataset: str, n: int, seed: int,
                   exclude: Sequence[str] = ()) -> list[str] | None:
    """``n`` seeded keys among the cells ``benchmark`` has results for, when it covers only part
    of the space (NB101's table: 292 of 423k cells); None when it covers the whole space (then
    :func:`sample_keys` draws from the space itself, so a seed keeps its cells and cached
    scores). Fewer than ``n`` keys come back when the benchmark has fewer."""
    keys = benchmark.keys(dataset)
    if not keys or len(keys) >= space.size():
        return None
    excluded = set(exclude)
    canonical = [space.key(space.as_arch(benchmark.encoding(k))) for k in keys]
    pool = sorted({k for k in canonical if k not in excluded})
    rng = np.random.default_rng(seed)
    picks = rng.permutation(len(pool))[: min(n, len(pool))]
    return [pool[int(i)] for i in picks]


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


def _as_arch(space: Any, benchmark: Any, key: Any) -> Any:
    """``key`` as an arch of ``space``; a key only the benchmark can invert (an NB101 hash in
    a fresh process) through ``benchmark.encoding``."""
    try:
        return space.as_arch(key)
    except InvalidArchError:
        if not isinstance(key, str):
            raise
        return space.as_arch(benchmark.encoding(key))


DEFAULT_PROXIES = ("gradsign", "gradalign", "synflow", "naswot", "params")


def correlate(*, space: str = DEFAULT_SPACE, proxies: Sequence[str] = DEFAULT_PROXIES,
              proxy_params: Mapping[str, Mapping[str, Any]] | None = None,
              benchmark: str = DEFAULT_BENCHMARK, benchmark_params: Mapping[str, Any] | None = None,
              datasets: Sequence[str] | None = None, metric: str | None = None, n: int = 100,
              sample_seed: int = 0, arch_keys: Sequence[str] | None = None,
              exclude: Sequence[str] = (), data: str = "cifar10", batch_size: int = 64,
              data_seed: int = 0, num_classes: int | None = None,
              input_size: tuple[int, int, int] | None = None, seed: int = 0,
              device: str = "cpu", storage: str | None = None, use_cache: bool = True,
              n_bootstrap: int = 1000, out_dir: str | Path | None = "zcnas_out/correlate",
              holdout: int = 0, holdout_seed: int | None = None, reference: bool = False,
              card: bool = True, more_seeds: Sequence[int] = (),
              progress: bool = True) -> CorrelateResult:
    """Sample ``n`` architectures (seeded, excluding ``exclude``), score them with each proxy
    on one data batch, and correlate with ``benchmark``'s ``metric`` on each of ``datasets``.

    Writes ``scores.csv``, ``summary.csv`` and ``correlation.png`` under ``out_dir`` (None:
    write nothing). Scores go through the SQL cache, so a repeated or interrupted run reuses them.

    ``input_size`` (channels, height, width) bilinearly resizes the batch's images (a batch of
    its own identity in the cache); fitting an ensemble (``holdout``) needs the loaded size.

    ``metric`` defaults to the benchmark's first metric (``test`` for NB201). ``reference``
    adds the benchmark's precomputed proxy scores (e.g. NAS-Bench-Suite-Zero's) of the same
    cells as rows named ``ref:<proxy>`` (tag ``precomputed``): a cross-check of zcnas's
    builders and proxies, never a target. On a benchmark with results for only part of the space
    (NB101: 321 cells) the cells are drawn among those.

    ``more_seeds`` (uncertainty): each single proxy is also scored with these weight
    initialisations (each score its own cache row); rows ``<proxy>@<k>seeds`` average the
    per-seed rank quantiles of the first k seeds (``seed`` first), for k = 3, 5, ... and all,
    and ``result.seed_spread`` holds each proxy's seed-to-seed Spearman rho.

    ``card`` (default) adds the evaluation card (:mod:`zcnas.analysis._card`: nDCG@k, top-k
    regret, Kendall tau controlled for params and FLOPs, bootstrap intervals), written as
    ``card.md``, ``card.csv`` and ``card.png``.

    ``holdout > 0`` fits a ``learned_ensemble`` of the listed single proxies on ``holdout``
    labelled cells (seed ``holdout_seed``, first dataset) and reports every proxy only on
    cells disjoint from those. Each ensemble is compared with its best member by a paired
    bootstrap of the difference in Kendall tau (``result.comparisons``).
    """
    if n < 1:
        raise ZcnasError(f"--n must be at least 1 (architectures to score), got {n}")
    sp = get_space(space)
    bm = get_benchmark(benchmark, **dict(benchmark_params or {}))
    if bm.space != sp.name:
        raise ZcnasError(f"benchmark {bm.name!r} holds results for space {bm.space!r}, not "
                         f"{sp.name!r}; pass --space {bm.space}")
    datasets = list(datasets or bm.datasets[:1])
    for ds in datasets:
        bm.dataset(ds)
    metric = metric or bm.metrics[0]
    proxy_params = {k: dict(v) for k, v in (proxy_params or {}).items()}
    proxies = list(proxies)
    if not proxies:
        raise ZcnasError("give at least one proxy, e.g. --proxies gradsign,synflow")
    objs = [resolve(name, **proxy_params.get(name, {})) for name in proxies]
    if holdout > 0 and input_size is not None:
        raise ZcnasError("--holdout fits the ensemble on the images as loaded; drop "
                         "--input-size or --holdout")
    batch = load_batch(data, batch_size, data_seed, num_classes).with_input_size(input_size)
    if holdout > 0:
        from zcnas.ensembles import fit_ensemble

        singles = [o.name for o in objs if not is_evaluator(o)]
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
        objs.append(resolve("learned_ensemble", path=str(path)))
    if arch_keys is None:
        arch_keys = benchmark_keys(sp, bm, datasets[0], n, sample_seed, exclude)
        if arch_keys is None:
            arch_keys = sample_keys(sp, n, sample_seed, exclude)
    else:
        arch_keys = [sp.key(_as_arch(sp, bm, k)) for k in arch_keys]
    truth = {ds: np.array([bm.query(k, ds, metric) for k in arch_keys]) for ds in datasets}
    cache = ScoreCache(storage) if use_cache else None
    scores, seconds = score_many(sp, objs, arch_keys, batch, seed=seed, device=device,
                                 cache=cache, progress=progress)
    result = CorrelateResult(
        arch_keys=list(arch_keys), truth=truth, scores=scores, seconds=seconds,
        directions={p.name: p.direction for p in objs}, tags={p.name: tag(p) for p in objs},
    )
    if more_seeds:
        add_seed_averages(result, sp, [o for o in objs if not is_evaluator(o)], arch_keys, batch,
                          [seed, *more_seeds], device=device, cache=cache, progress=progress)
    if reference:
        add_reference_scores(result, bm, datasets)
        result.agreement = reference_agreement(result)
    result.summary = summarize(result, n_bootstrap=n_bootstrap)
    result.comparisons = compare_ensembles(result, objs, n_bootstrap=n_bootstrap)
    if card:
        sizes = [resolve("params"), resolve("flops")]
        result.controls, _ = score_many(sp, sizes, arch_keys, batch, seed=seed, device=device,
                                        cache=cache, progress=progress, desc="params/flops")
        result.card = evaluation_card(result, n_bootstrap=min(n_bootstrap, 200))
    if out_dir is not None:
        result.files = write_outputs(result, Path(out_dir), benchmark=benchmark, metric=metric)
    return result


#: zcnas proxy -> the same quantity's name in NAS-Bench-Suite-Zero / NASLib files
REFERENCE_NAMES = {"naswot": "nwot", "jacob_cov": "jacov", "synflow": "synflow", "snip": "snip",
                   "grad_norm": "grad_norm", "grasp": "grasp", "fisher": "fisher",
                   "params": "params", "flops": "flops", "zen": "zen", "l2_norm": "l2_norm",
                   "epe_nas": "epe_nas"}


def reference_agreement(result: CorrelateResult) -> list[dict[str, Any]]:
    """Spearman rho between each zcnas proxy and the benchmark's precomputed score of the same
    quantity on the cells both have: near 1 when builder and proxy match the reference's (the
    reference's own run-to-run agreement is the ceiling, see the data README)."""
    from scipy import stats

    out = []
    for ours, theirs in REFERENCE_NAMES.items():
        col = f"ref:{theirs}"
        if ours not in result.scores or col not in result.scores:
            continue
        a, b = result.scores[ours], result.scores[col]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() >= 3:
            out.append({"proxy": ours, "reference": col, "n": int(ok.sum()),
                        "spearman": float(stats.spearmanr(a[ok], b[ok]).statistic)})
    return out


def add_seed_averages(result: CorrelateResult, space: SearchSpace, proxies: Sequence[Scorable],
                      keys: Sequence[str], batch: Any, seeds: Sequence[int], *, device: str,
                      cache: ScoreCache | None, progress: bool) -> None:
    """Score ``proxies`` with every seed of ``seeds`` and add ``<proxy>@<k>seeds`` columns (the
    mean of the per-seed rank quantiles of the first k seeds) for k = 3, 5, ... and all."""
    from scipy import stats
    from scipy.stats import rankdata

    per_seed = {s: score_many(space, proxies, keys, batch, seed=s, device=device, cache=cache,
                              progress=progress, desc=f"seed {s}") for s in seeds[1:]}
    ks = sorted({k for k in (3, 5, len(seeds)) if 1 < k <= len(seeds)})
    for p in proxies:
        runs = [result.scores[p.name], *[per_seed[s][0][p.name] for s in seeds[1:]]]
        secs = [result.seconds[p.name], *[per_seed[s][1][p.name] for s in seeds[1:]]]
        quantiles = []
        for v in runs:
            q = np.full(len(v), np.nan)
            ok = np.isfinite(v)
            signed = v[ok] if p.direction != "minimize" else -v[ok]
            q[ok] = rankdata(signed) / max(1, ok.sum())
            quantiles.append(q)
        a, b = quantiles[0], quantiles[1]
        ok = np.isfinite(a) & np.isfinite(b)
        result.seed_spread[p.name] = float(stats.spearmanr(a[ok], b[ok]).statistic)
        for k in ks:
            col = f"{p.name}@{k}seeds"
            result.scores[col] = np.mean(np.stack(quantiles[:k]), axis=0)
            result.seconds[col] = np.sum(np.stack(secs[:k]), axis=0)
            result.directions[col] = "maximize"
            result.tags[col] = result.tags.get(p.name, "")


def add_reference_scores(result: CorrelateResult, benchmark: Benchmark,
                         datasets: Sequence[str]) -> None:
    """Add the benchmark's precomputed scores (NaN where a cell has none) as ``ref:<proxy>``
    columns (higher is better, NASLib's sign conventions): the first dataset's in ``scores``;
    a later dataset the benchmark has scores of its own for (TransNAS-Bench-101's tasks) is
    compared with those (``per_dataset``; a proxy missing there is NaN, never another
    task's); a dataset without any (NB201's CIFAR-100) with the first dataset's."""
    refs = {ds: benchmark.reference_scores(ds) for ds in datasets}
    names = list(dict.fromkeys(n for r in refs.values() for n in r))

    def column(values: Mapping[str, float]) -> np.ndarray:
        return np.array([values.get(k, np.nan) for k in result.arch_keys])

    for name in names:
        col = f"ref:{name}"
        result.scores[col] = column(refs[datasets[0]].get(name, {}))
        result.seconds[col] = np.full(len(result.arch_keys), np.nan)
        result.directions[col] = "maximize"
        result.tags[col] = "precomputed"
        for ds in datasets[1:]:
            if refs[ds] and refs[ds] != refs[datasets[0]]:
                result.per_dataset.setdefault(ds, {})[col] = column(refs[ds].get(name, {}))


def summarize(result: CorrelateResult, n_bootstrap: int = 1000) -> list[dict[str, Any]]:
    rows = []
    for dataset, truth in result.truth.items():
        for name in result.scores:
            values = result.values(name, dataset)
            rc = rank_correlation(values, truth, n_bootstrap=n_bootstrap,
                                  direction=result.directions.get(name, "maximize"))
            secs = result.seconds.get(name)
            timed = secs is not None and bool(np.isfinite(secs).any())
            rows.append({
                "proxy": name, "tag": result.tags.get(name, ""), "dataset": dataset,
                **rc.as_dict(),
                "failed": int(np.sum(~np.isfinite(values))),
                "mean_seconds": float(np.nanmean(secs)) if timed and secs is not None
                else float("nan"),
            })
    return rows


def compare_ensembles(result: CorrelateResult, proxies: Sequence[Scorable],
                      n_bootstrap: int = 1000) -> list[PairedDifference]:
    """Each evaluator (ensemble) vs the best (by Kendall tau) single proxy of the run, per
    dataset."""
    singles = [p.name for p in proxies if not is_evaluator(p)]  # ref: columns are not rivals
    ensembles = [p.name for p in proxies if is_evaluator(p)]
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


def evaluation_card(result: CorrelateResult, n_bootstrap: int = 200) -> list[CardRow]:
    """The card of every method on every ground-truth column of ``result``."""
    controls = [result.controls[k] for k in ("params", "flops") if k in result.controls]
    return [card_row(name, dataset, result.values(name, dataset), truth,
                     direction=result.directions.get(name, "maximize"), controls=controls,
                     n_bootstrap=n_bootstrap)
            for dataset, truth in result.truth.items() for name in result.scores]


def format_agreement(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line per proxy: its Spearman rho with the benchmark's precomputed score."""
    return "\n".join(f"{r['proxy']} vs {r['reference']}: rho {r['spearman']:.3f} on {r['n']} cells"
                     for r in rows)


def format_comparisons(diffs: Sequence[PairedDifference]) -> str:
    return "\n".join(
        f"{d.a} - {d.b}: d_kendall {d.kendall:+.3f} [{d.kendall_ci[0]:+.3f}, "
        f"{d.kendall_ci[1]:+.3f}], d_spearman {d.spearman:+.3f} [{d.spearman_ci[0]:+.3f}, "
        f"{d.spearman_ci[1]:+.3f}] on {d.n} cells{'  (significant)' if d.significant else ''}"
        for d in diffs
    )


def format_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of the summary rows (with each method's honesty tag)."""
    lines = [f"{'proxy':<18}{'tag':<19}{'dataset':<12}{'n':>6}{'fail':>6}  "
             f"{'spearman [95% CI]':<26}{'kendall [95% CI]':<26}{'s/arch':>8}"]
    for r in rows:
        lines.append(
            f"{r['proxy']:<18}{r.get('tag', ''):<19}{r['dataset']:<12}{r['n']:>6}{r['failed']:>6}  "
            f"{r['spearman']:6.3f} [{r['spearman_lo']:.3f}, {r['spearman_hi']:.3f}]     "
            f"{r['kendall']:6.3f} [{r['kendall_lo']:.3f}, {r['kendall_hi']:.3f}]     "
            f"{r['mean_seconds']:8.3f}"
        )
    return "\n".join(lines)


def write_outputs(result: CorrelateResult, out: Path, *, benchmark: str, metric: str
                  ) -> dict[str, Path]:
    """``scores.csv`` (one row per architecture), ``summary.csv`` and ``correlation.png``."""
    out.mkdir(parents=True, exist_ok=True)
    scores_csv, summary_csv, plot = out / "scores.csv", out / "summary.csv", out / "correlation.png"
    rows = []
    for i, key in enumerate(result.arch_keys):
        row: dict[str, Any] = {"arch": key}
        row.update({f"{benchmark}_{d}_{metric}": t[i] for d, t in result.truth.items()})
        row.update({name: s[i] for name, s in result.scores.items()})
        row.update({f"{name}@{d}": s[i] for d, cols in result.per_dataset.items()
                    for name, s in cols.items()})
        rows.append(row)
    write_csv(scores_csv, rows)
    write_csv(summary_csv, result.summary)
    dataset = next(iter(result.truth))
    panels = []
    for name, values in result.scores.items():
        r = result.row(name, dataset)
        panels.append(ScatterPanel(name, values, result.directions.get(name, "maximize"),
                                   f"{name}: rho={r['spearman']:.3f} tau={r['kendall']:.3f} "
                                   f"(n={r['n']})"))
    rank_scatter(plot, result.truth[dataset], panels,
                 truth_label=f"{benchmark} {dataset} {metric} (%)",
                 title=f"proxy rank vs {benchmark} {dataset} {metric} accuracy, "
                       f"{len(result.arch_keys)} architectures")
    files = {"scores": scores_csv, "summary": summary_csv, "plot": plot}
    if result.card:
        files.update(_write_card(result, out, dataset, benchmark, metric))
    return files


def _write_card(result: CorrelateResult, out: Path, dataset: str, benchmark: str,
                metric: str) -> dict[str, Path]:
    md, csv_path, png = out / "card.md", out / "card.csv", out / "card.png"
    md.write_text(f"# Evaluation card: {benchmark} {metric}, {len(result.arch_keys)} cells\n\n"
                  f"tags: " + ", ".join(f"{k} = {v}" for k, v in result.tags.items()) + "\n\n"
                  + format_card(result.card) + "\n")
    write_csv(csv_path, [r.as_dict() for r in result.card])
    truth = result.truth[dataset]
    panels, curves = [], {}
    ks = [k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500) if k <= len(result.arch_keys)]
    for row in result.card:
        if row.dataset != dataset or not row.values:
            continue
        values = result.scores[row.method]
        d = result.directions.get(row.method, "maximize")
        panels.append(ScatterPanel(row.method, values, d,
                                   f"{row.method}: tau={row.values['kendall']:.3f} "
                                   f"partial={row.values.get('kendall_partial', float('nan')):.3f}"))
        ok = np.isfinite(values) & np.isfinite(truth)
        x = values[ok] if d != "minimize" else -values[ok]
        curves[row.method] = (ks, [regret_at(x, truth[ok], k) for k in ks])
    rank_card(png, truth, panels, curves,
              title=f"rank vs true rank and top-k regret: {benchmark} {dataset} {metric}")
    return {"card": md, "card_csv": csv_path, "card_plot": png}
