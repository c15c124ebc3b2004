"""The TransNAS-Bench-101 micro and macro spaces: official keys, counts, validity, the encoder
network and its parameter counts against NASLib's (NB-Suite-Zero's) ``params`` column."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
import csv
import gzip
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from zcnas.exceptions import InvalidArchError
from zcnas.spaces import get_space
from zcnas.spaces._tnb101 import TNB101MacroSpace
from zcnas.spaces._tnb101 import TNB101MicroSpace


def _read(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def micro_rows(shared_data: Path) -> list[dict[str, str]]:
    return _read(shared_data / "tnb101" / "tnb101_micro_val.csv")


@pytest.fixture(scope="module")
def macro_rows(shared_data: Path) -> list[dict[str, str]]:
    return _read(shared_data / "tnb101" / "tnb101_macro_val.csv")


@pytest.fixture(scope="module")
def naslib_params(shared_data: Path) -> dict[tuple[str, str], dict[str, int]]:
    """(space, arch_str) -> task -> NASLib's parameter count of the task's whole model."""
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for row in _read(shared_data / "tnb101" / "tnb101_zc_proxies_naslib_subset.csv.gz"):
        out[(row["space"], row["arch_str"])][row["task"]] = round(float(row["params"]) * 1e6)
    return dict(out)


def test_micro_keys_are_the_4096_official_strings(micro_rows: list[dict[str, str]]) -> None:
    space = get_space("tnb101_micro")
    assert space.size() == 4096
    official = [row["arch_str"] for row in micro_rows]
    assert len(set(official)) == 4096
    assert {space.key(a) for a in space.all_archs()} == set(official)
    codes = {"none": "0", "skip_connect": "1", "conv_1x1": "2", "conv_3x3": "3"}
    for row in micro_rows:
        arch = space.parse(row["arch_str"])
        assert space.key(arch) == row["arch_str"]
        # NASLib's op tuple lists the same 6 codes in the same edge order
        assert "-".join(codes[arch[n]] for n in space.distributions) == row["arch"]


def test_micro_edge_order_follows_the_readme_example() -> None:
    # TNB101 README: 64-41414-1_02_333: node1 = skip(node0); node2 = none(node0) + conv1x1(node1);
    # node3 = conv3x3 of nodes 0, 1, 2
    arch = get_space("tnb101_micro").parse("64-41414-1_02_333")
    assert arch == {"edge_0_1": "skip_connect", "edge_0_2": "none", "edge_1_2": "conv_1x1",
                    "edge_0_3": "conv_3x3", "edge_1_3": "conv_3x3", "edge_2_3": "conv_3x3"}


def test_macro_enumeration_gives_exactly_3256(macro_rows: list[dict[str, str]]) -> None:
    space = get_space("tnb101_macro")
    keys = [space.key(a) for a in space.all_archs()]
    assert len(keys) == len(set(keys)) == 3256 == space.size()
    official = {row["arch_str"] for row in macro_rows}
    assert set(keys) == official
    by_length = defaultdict(int)
    for k in keys:
        by_length[len(k.split("-")[1])] += 1
    assert dict(by_length) == {4: 210, 5: 750, 6: 2296}  # the counts of the data README
    for row in macro_rows:
        arch = space.parse(row["arch_str"])
        assert space.key(arch) == row["arch_str"]
        modules = [arch[f"module_{i}"] for i in range(1, 7)]
        assert "-".join(str(m) for m in modules if m) == row["arch"]  # NASLib's codes


MACRO_INVALID = {
    "no halving": ("64-1212-basic", "halve the resolution"),
    "five halvings": ("64-33333-basic", "halve the resolution"),
    "no doubling": ("64-1313-basic", "double the channels"),
    "four doublings": ("64-22223-basic", "double the channels"),
}


@pytest.mark.parametrize("case", list(MACRO_INVALID))
def test_macro_validity_rules(case: str) -> None:
    key, reason = MACRO_INVALID[case]
    with pytest.raises(InvalidArchError, match=reason):
        get_space("tnb101_macro").parse(key)


def test_macro_modules_must_be_consecutive() -> None:
    space = get_space("tnb101_macro")
    arch = space.parse("64-1234-basic")
    assert arch["module_5"] == arch["module_6"] == 0
    with pytest.raises(InvalidArchError, match="consecutive"):
        space.key({**arch, "module_6": 1})
    with pytest.raises(InvalidArchError, match="choose one of 1, 2, 3, 4"):
        space.key({**arch, "module_1": 0})
    assert not space.all_valid


MALFORMED = {
    "tnb101_micro": ["64-41414-1_02_33", "64-41414-1_02_334", "32-41414-1_02_333",
                     "64-4141-1_02_333", "64-41414-102333", "64-41414-1_02_333-basic", "", "x"],
    "tnb101_macro": ["64-123-basic", "64-1234567-basic", "64-1235-basic", "64-1234",
                     "64-1234-micro", "32-1234-basic", "64-0234-basic", ""],
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_strings(name: str) -> None:
    space = get_space(name)
    for key in MALFORMED[name]:
        with pytest.raises(InvalidArchError) as err:
            space.parse(key)
        assert "\n" not in str(err.value) and "TNB101" in str(err.value), key
    with pytest.raises(InvalidArchError, match="must be a string"):
        space.parse(7)  # type: ignore[arg-type]


def test_sampling_is_uniform_over_valid_macro_archs() -> None:
    space = get_space("tnb101_macro")
    archs = space.sample(3256, seed=0)
    assert len({space.key(a) for a in archs}) == 3256
    with pytest.raises(ValueError, match="3256"):
        space.sample(3257)
    rng = np.random.default_rng(0)
    arch = space.parse("64-1234-basic")
    for _ in range(20):
        child = space.mutate(arch, rng)
        assert space.is_valid(child) and sum(child[k] != arch[k] for k in arch) == 1


# --- the network ------------------------------------------------------------------------------
_INIT = ("kaiming_normal_", "kaiming_uniform_", "uniform_", "normal_", "ones_", "zeros_",
         "constant_")


@contextmanager
def shapes_only() -> Iterator[None]:
    """Build networks on the meta device without initialising them (parameter counts only)."""
    def keep(t: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        return t
    with mock.patch.multiple(torch.nn.init, **{n: keep for n in _INIT}), torch.device("meta"):
        yield


def encoder_params(space: TNB101MicroSpace | TNB101MacroSpace, key: str) -> tuple[int, int]:
    """(parameters of the encoder, its output channels), from zcnas' built network."""
    with shapes_only():
        net = space.build(space.parse(key), num_classes=1)
    total = sum(p.numel() for p in net.parameters())
    return total - sum(p.numel() for p in net.classifier.parameters()), net.classifier.in_features


def conv3x3(c_in: int, c_out: int, bn: bool = True) -> int:
    return 9 * c_in * c_out + c_out + (2 * c_out if bn else 0)


def decoder_params(task: str, c: int) -> int:
    """Parameters of NASLib's / TNB101's task decoder on ``c`` encoder channels (the layer lists
    of tnb101/models/decoder.py; NASLib's heads: 63 scene, 100 object classes)."""
    if task in ("class_scene", "class_object", "room_layout"):
        n = {"class_scene": 63, "class_object": 100, "room_layout": 9}[task]
        return c * n + n
    if task == "jigsaw":  # SiameseDecoder: linear on the 9 tiles' concatenated features
        return 9 * c * 1000 + 1000
    if task == "segmentsemantic":  # SegmentationDecoder, 256x256 target, 17 classes
        widths = [1024, 512, 256, 128, 64, 32]
        return (conv3x3(c, 1024) + sum(conv3x3(a, b) for a, b in zip(widths, widths[1:]))
                + conv3x3(32, 32) + conv3x3(32, 17, bn=False))
    # autoencoder / normal: GenerativeDecoder (its discriminator is not counted)
    layers = [(c, 1024), (1024, 1024), (1024, 512), (512, 512), (512, 256), (256, 128), (128, 64),
              (64, 64), (64, 32), (32, 32), (32, 16), (16, 32), (32, 16)]
    return sum(conv3x3(a, b) for a, b in layers) + conv3x3(16, 3, bn=False)


def _check_params(naslib_params: dict[tuple[str, str], dict[str, int]],
                  items: list[tuple[str, str]]) -> int:
    checked = 0
    for subspace, key in items:
        space = get_space(f"tnb101_{subspace}")
        encoder, channels = encoder_params(space, key)
        for task, expected in naslib_params[(subspace, key)].items():
            assert encoder + decoder_params(task, channels) == expected, (subspace, key, task)
            checked += 1
    return checked


def test_params_equal_naslib_on_a_sample(naslib_params: dict) -> None:
    rng = np.random.default_rng(0)
    items = sorted(naslib_params)
    micro = [k for k in items if k[0] == "micro"]
    macro = [k for k in items if k[0] == "macro"]
    sample = [micro[int(i)] for i in rng.choice(len(micro), 4, replace=False)]
    sample += [macro[int(i)] for i in rng.choice(len(macro), 4, replace=False)]
    assert _check_params(naslib_params, sample) == sum(len(naslib_params[k]) for k in sample)


@pytest.mark.slow
def test_params_equal_naslib_on_every_row(naslib_params: dict) -> None:
    assert _check_params(naslib_params, sorted(naslib_params)) == 9926


def test_default_network_is_tnb101_sized() -> None:
    # 64-41414-1_00_210 : NASLib's class_scene model has 910,687 parameters = this encoder plus a
    # 512 x 63 linear head (the data's params column, 0.910687 M)
    encoder, channels = encoder_params(get_space("tnb101_micro"), "64-41414-1_00_210")
    assert (encoder, channels) == (910_687 - 512 * 63 - 63, 512)
    _, channels = encoder_params(get_space("tnb101_macro"), "64-224131-basic")
    assert channels == 64 * 2**3


@pytest.mark.parametrize("key", ["64-41414-0_00_000", "64-41414-0_03_300", "64-41414-1_11_111",
                                 "64-41414-3_32_132"])
def test_micro_forward_on_the_32px_stand_in(key: str) -> None:
    space = TNB101MicroSpace(channels=8)
    torch.manual_seed(0)
    net = space.build(space.parse(key), num_classes=47)
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 47)
    if key == "64-41414-0_00_000":  # every path is cut: the features are exactly 0
        assert torch.equal(net.forward_features(torch.randn(2, 3, 32, 32)), torch.zeros(2, 64))


@pytest.mark.parametrize("key", ["64-1234-basic", "64-443311-basic", "64-323131-basic"])
def test_macro_forward_on_the_32px_stand_in(key: str) -> None:
    space = TNB101MacroSpace(channels=8)
    net = space.build(space.parse(key), num_classes=75)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 75)
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 75)  # resolution-agnostic


def test_official_init_and_shortcut_batchnorm() -> None:
    torch.manual_seed(0)
    net = get_space("tnb101_macro").build(get_space("tnb101_macro").parse("64-1234-basic"))
    conv = net.stem[2][1]  # ReLU-conv3x3-BN, 32 -> 64 channels
    fan_out = conv.out_channels * 9
    assert float(conv.weight.detach().std()) == pytest.approx((2.0 / fan_out) ** 0.5, rel=0.03)
    # TNB101's basic block passes (affine, track_running_stats) positionally to BatchNorm2d, so
    # the shortcut BN of the official network runs with eps=1 and momentum=1
    shortcut_bn = net.layers[1][0].downsample[1]
    assert shortcut_bn.eps == 1.0 and shortcut_bn.momentum == 1.0
    assert net.layers[0][0].downsample is None  # module code 1: no shape change, identity
