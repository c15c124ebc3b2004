"""The TransNAS-Bench-101 benchmarks (tnb101_micro, tnb101_macro): 7 tasks of final-epoch
validation values, NB-Suite-Zero / GRAF reference scores."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from zcnas.benchmarks import get_benchmark
from zcnas.exceptions import DataError
from zcnas.spaces import get_space


TASKS = ("class_scene", "class_object", "jigsaw", "room_layout", "segmentsemantic", "normal",
         "autoencoder")


def _read(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name, n", [("tnb101_micro", 4096), ("tnb101_macro", 3256)])
def test_keys_and_values(shared_data: Path, name: str, n: int) -> None:
    bench = get_benchmark(name)
    assert bench.datasets == TASKS
    assert bench.space == name
    space = get_space(bench.space)
    rows = _read(shared_data / "tnb101" / f"{name}_val.csv")
    for task in TASKS:
        keys = bench.keys(task)
        assert len(keys) == len(set(keys)) == n
    assert all(space.key(space.parse(k)) == k for k in bench.keys())
    columns = {"class_scene": "class_scene_valid_top1", "room_layout": "room_layout_valid_neg_loss",
               "autoencoder": "autoencoder_valid_ssim"}
    for row in rows[::97]:
        for task, column in columns.items():
            assert bench.query(row["arch_str"], task) == float(row[column])
    for key in bench.keys()[::50]:
        assert bench.query(key, "room_layout") < 0  # a negative loss: higher is better
        assert 0.0 <= bench.query(key, "normal") <= 1.0  # SSIM
        assert 0.0 <= bench.query(key, "autoencoder") <= 1.0
        assert 1.0 < bench.query(key, "class_object") < 100.0  # top-1 %


def test_best_architectures_match_the_data_readme() -> None:
    micro, macro = get_benchmark("tnb101_micro"), get_benchmark("tnb101_macro")
    best = max(micro.keys(), key=lambda k: micro.query(k, "class_scene"))
    assert best == "64-41414-3_32_132"
    assert micro.query(best, "class_scene") == pytest.approx(54.936, abs=1e-3)
    best = max(macro.keys(), key=lambda k: macro.query(k, "class_scene"))
    assert best == "64-224131-basic"
    assert macro.query(best, "class_scene") == pytest.approx(57.414, abs=1e-3)
    assert max(micro.query(k, "room_layout") for k in micro.keys()) == pytest.approx(-0.6010,
                                                                                     abs=1e-4)


def test_dataset_info_follows_the_official_configs() -> None:
    bench = get_benchmark("tnb101_micro")
    # yawen-d/TransNASBench configs/train_from_scratch/*/config.py target_dim
    assert bench.dataset("class_scene").num_classes == 47
    assert bench.dataset("class_object").num_classes == 75
    assert bench.dataset("jigsaw").num_classes == 1000
    for task in ("room_layout", "segmentsemantic", "normal", "autoencoder"):
        info = bench.dataset(task)
        assert info.num_classes == 10 and "stand-in" in info.description
    assert bench.dataset("class_scene").input_size == (3, 256, 256)


def test_micro_reference_scores(shared_data: Path) -> None:
    bench = get_benchmark("tnb101_micro")
    scores = bench.reference_scores("class_scene")
    assert set(scores) == {"fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot",
                           "params", "plain", "snip", "zen", "epe_nas", "synflow"}
    assert len(scores["zen"]) == len(scores["synflow"]) == 4096
    assert len(scores["nwot"]) == len(scores["params"]) == 2128  # GRAF's cells only
    graf = {r["arch_str"]: r for r in _read(shared_data / "tnb101" /
                                            "tnb101_micro_class_scene_zc_proxies_graf.csv")}
    nbsz = {r["arch_str"]: r for r in _read(shared_data / "tnb101" / "tnb101_zc_proxies_nbsz.csv.gz")
            if r["space"] == "micro" and r["task"] == "class_scene"}
    differ = [k for k in graf if nbsz[k]["fisher"] and nbsz[k]["fisher"] != graf[k]["fisher"]]
    assert differ  # the two fisher runs disagree on some cells: GRAF's final values win
    for key in differ:
        assert scores["fisher"][key] == float(graf[key]["fisher"])
    only_nbsz = [k for k in nbsz if nbsz[k]["fisher"] and k not in graf]
    assert only_nbsz
    for key in only_nbsz[:20]:
        assert scores["fisher"][key] == float(nbsz[key]["fisher"])
    assert set(bench.reference_scores("segmentsemantic")) == {"zen", "fisher"}
    assert len(bench.reference_scores("jigsaw")["fisher"]) == 4096


def test_macro_reference_scores() -> None:
    bench = get_benchmark("tnb101_macro")
    assert set(bench.reference_scores("class_scene")) == {"zen", "epe_nas", "synflow"}
    assert set(bench.reference_scores("class_object")) == {"zen", "epe_nas", "synflow", "fisher"}
    assert set(bench.reference_scores("autoencoder")) == {"zen"}
    assert len(bench.reference_scores("autoencoder")["zen"]) == 3256


def test_errors_name_the_fix(tmp_path: Path) -> None:
    bench = get_benchmark("tnb101_macro")
    key = bench.keys()[0]
    with pytest.raises(DataError, match="choose valid"):
        bench.query(key, "class_scene", "test")
    with pytest.raises(DataError, match="choose class_scene, class_object"):
        bench.query(key, "cifar10")
    with pytest.raises(DataError, match="not in TNB101 macro"):
        bench.query("64-41414-3_32_132", "class_scene")
    with pytest.raises(DataError, match="ZCNAS_DATA"):
        get_benchmark("tnb101_micro", path=str(tmp_path / "x.csv")).keys()
    with pytest.raises(DataError, match="scores_path"):
        get_benchmark("tnb101_micro", scores_path=str(tmp_path / "x.csv.gz")).reference_scores(
            "jigsaw")
    with pytest.raises(DataError, match="graf_path"):
        get_benchmark("tnb101_micro", graf_path=str(tmp_path / "x.csv")).reference_scores(
            "class_scene")
