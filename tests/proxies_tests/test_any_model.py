"""Per-sample gradients and every proxy on models beyond NAS-Bench-201 (zcnas.testing.models):
BatchNorm, LayerNorm, GroupNorm, grouped and depthwise convs, ReLU/ReLU6/Hardswish/SiLU/GELU,
``nn.MultiheadAttention``, hand-written and ``scaled_dot_product_attention`` attention, residual
blocks, Dropout, ``nn.Embedding`` and patch-embedding convs, on a real CIFAR-10 batch.

float64: the vectorised per-sample gradients equal the batch-1 loop's to rounding (1e-9 relative
per sample and layer). float32: the same error-model checks as on NAS-Bench-201 (``roundoff``):
GradSign signs, GradAlign's Gram matrix and scores, LGA's NTK and score.
"""

from __future__ import annotations

from collections.abc import Callable
import math
import re

import pytest
import torch
from torch import nn

from proxies_tests import roundoff
import zcnas
from zcnas.data import Batch
from zcnas.exceptions import ScoreError
from zcnas.proxies import PROXIES
from zcnas.proxies import get_proxy
from zcnas.proxies import list_proxies
from zcnas.proxies._gradalign import alignment_from_gram
from zcnas.proxies._gradalign import logdet_from_gram
from zcnas.proxies._lga import centred_alignment
from zcnas.proxies._lga import label_kernel
from zcnas.proxies._persample import all_parameters
from zcnas.proxies._persample import conv_linear_weights
from zcnas.proxies._persample import loop_per_sample_matrix
from zcnas.proxies._persample import per_sample_gram
from zcnas.testing import models


CASES: dict[str, Callable[[], nn.Module]] = {
    "resnet18_grouped": lambda: models.resnet18_small(groups=2),
    "mobilenetv2": lambda: models.mobilenetv2_small(),
    "mobilenetv2_hardswish": lambda: models.mobilenetv2_small(activation="hardswish"),
    "mobilenetv2_silu": lambda: models.mobilenetv2_small(activation="silu"),
    "vit_mha": lambda: models.vit_small(attention="mha", dropout=0.1),
    "vit_manual": lambda: models.vit_small(attention="manual", pos_embedding="embedding",
                                           dropout=0.1),
    "vit_sdpa": lambda: models.vit_small(attention="sdpa"),
    "convnext": lambda: models.convnext_small(),
}
# float32 checks taking more than ~5 s on one CPU thread
SLOW = {"resnet18_grouped"}


def maker(case: str) -> Callable[[torch.dtype], nn.Module]:
    def make(dtype: torch.dtype) -> nn.Module:
        torch.manual_seed(0)
        return CASES[case]().to(dtype).train()

    return make


def cases(slow: set[str] | None = None) -> list:
    return [pytest.param(c, id=c, marks=[pytest.mark.slow] if c in (slow or ()) else [])
            for c in CASES]


@pytest.fixture(scope="module")
def batch8(shared_data) -> Batch:  # noqa: ANN001
    return roundoff.first_samples(zcnas.load_batch("cifar10", 16, seed=0), 8)


# ------------------------------------------------------------------------ exact semantics (float64)


@pytest.mark.parametrize("case", cases())
def test_float64_vmap_equals_loop(case: str, batch8: Batch) -> None:
    """Both parameter sets and both objectives: each sample a batch of one, dropout off.

    Per sample and layer the difference is at most 1e-9 of the layer's gradient, plus 1e-12 of
    the sample's whole gradient (1e4 x float64 rounding) for gradients that are exactly zero in
    exact arithmetic and rounding noise in both paths: a BatchNorm shift followed only by a 1x1
    conv and a per-sample BatchNorm (MobileNetV2 ``blocks.0.block.4.bias``) changes nothing."""
    make = maker(case)
    b64 = roundoff.as_float64(batch8)
    for names, objective in ((None, "ce"), (all_parameters(make(torch.float64)), "logit_sum")):
        vmap = roundoff.run_vmap(make(torch.float64), b64, names=names, objective=objective)
        loop, _ = roundoff.run_loop(make(torch.float64), b64, names=names, objective=objective)
        assert vmap.grads.keys() == loop.grads.keys()
        total = torch.cat(list(loop.grads.values()), dim=1).norm(dim=1)
        for name, g in loop.grads.items():
            err = (vmap.grads[name] - g).norm(dim=1)
            assert (err <= 1e-9 * g.norm(dim=1) + 1e-12 * total).all(), (name, objective)


# ------------------------------------------------------------------- float32 under the error model

# The fraction of per-sample entries the float32 check may leave undecided. On most models it
# is ~1e-4 (smooth rounding); on mobilenetv2_hardswish ~11%: BatchNorm -> Hardswish (affine on
# [-3, 3]) -> global pooling makes a sample's BatchNorm backward cancel almost exactly, so the
# exact gradients above it are ~1e-3 of the scale of their terms and float32 fixes their signs
# only where they are large. 25% keeps the check meaningful without hiding that.
ANY_MAX_UNDECIDED = 0.25
GRAM_MAX_RELATIVE = 1e-2  # as in test_gradalign.py


@pytest.mark.parametrize("case", cases(SLOW))
def test_float32_gradsign_signs_and_gradalign_gram(case: str, batch8: Batch) -> None:
    make = maker(case)
    paths = {"vmap": roundoff.run_vmap(make(torch.float32), batch8, chunk_size=32),
             "loop": roundoff.run_loop(make(torch.float32), batch8)[0]}
    ref = roundoff.reference(make, batch8, paths)
    signs = roundoff.check_signs(ref, paths)
    signs.assert_consistent(ANY_MAX_UNDECIDED)
    gradsign = get_proxy("gradsign")
    assert gradsign.compute(make(torch.float32), batch8) == signs.scores["vmap"]
    assert gradsign.reference(make(torch.float32), batch8) == signs.scores["loop"]

    flat = torch.cat(list(paths["loop"].grads.values()), dim=1)
    grams = {"vmap": per_sample_gram(make(torch.float32), batch8), "loop": flat @ flat.T}
    roundoff.check_gram(ref, grams).assert_consistent(GRAM_MAX_RELATIVE)
    for variant in ("gram", "alignment"):
        proxy = get_proxy("gradalign", variant=variant)
        values = {"vmap": proxy.compute(make(torch.float32), batch8),
                  "loop": proxy.reference(make(torch.float32), batch8)}
        for key, value in values.items():
            exact_gram = roundoff.exact_gram(ref.exact[key])
            exact = (logdet_from_gram(exact_gram, proxy.eps) if variant == "gram"
                     else alignment_from_gram(exact_gram))
            bound = roundoff.score_bounds(exact_gram, roundoff.gram_bound(ref, key), proxy.eps)
            assert abs(value - exact) <= bound[variant], (variant, key)


@pytest.mark.parametrize("case", cases(SLOW))
def test_float32_lga_ntk(case: str, batch8: Batch) -> None:
    make = maker(case)
    check = roundoff.check_gram_paths(make, batch8, names=all_parameters(make(torch.float32)),
                                      objective="logit_sum")
    check.report.assert_consistent(GRAM_MAX_RELATIVE)
    proxy = get_proxy("lga")
    values = {"vmap": proxy.compute(make(torch.float32), batch8),
              "loop": proxy.reference(make(torch.float32), batch8)}
    labels = label_kernel(batch8.targets)
    for key, value in values.items():
        exact = centred_alignment(check.exact[key], labels)
        assert abs(value - exact) <= check.score_bound(key, "lga"), key


# --------------------------------------------------------------------------------- dropout policy


def without_dropout(model: nn.Module) -> nn.Module:
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Dropout):
                setattr(parent, name, nn.Identity())
            elif isinstance(child, nn.MultiheadAttention):
                child.dropout = 0.0
    return model


@pytest.mark.parametrize("attention", ["manual", "mha"])
def test_dropout_is_disabled_while_taking_per_sample_gradients(attention: str,
                                                               batch8: Batch) -> None:
    def make() -> nn.Module:
        torch.manual_seed(0)
        return models.vit_small(attention=attention, dropout=0.5)

    model = make()
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    attn_p = [m.dropout for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    assert drops and all(m.training for m in drops)
    vmap = roundoff.run_vmap(model, batch8)
    # restored afterwards, and the rest of the model never left train mode
    assert all(m.training for m in model.modules())
    assert [m.dropout for m in model.modules() if isinstance(m, nn.MultiheadAttention)] == attn_p
    plain = roundoff.run_vmap(without_dropout(make()), batch8)
    assert all(torch.equal(vmap.grads[n], plain.grads[n]) for n in plain.grads)
    loop = loop_per_sample_matrix(make(), batch8)
    assert torch.equal(loop, loop_per_sample_matrix(without_dropout(make()), batch8))
    # hence scores are deterministic although dropout is active in train mode
    scores = {get_proxy("gradsign").compute(make(), batch8) for _ in range(2)}
    assert scores == {get_proxy("gradsign").compute(without_dropout(make()), batch8)}


def test_functional_dropout_is_refused_with_the_reason(batch8: Batch) -> None:
    torch.manual_seed(0)
    model = models.vit_small(attention="sdpa", dropout=0.1)  # dropout_p=0.1 in train mode
    for name in ("gradsign", "gradalign", "lga"):
        with pytest.raises(ScoreError, match="draws random numbers itself"):
            get_proxy(name).compute(model, batch8)
    assert all(m.training for m in model.modules())


def test_batchnorm_with_one_value_per_channel_is_refused(batch8: Batch) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 16), nn.BatchNorm1d(16), nn.ReLU(),
                          nn.Linear(16, 10))
    proxy = get_proxy("gradsign")
    for run in (proxy.compute, proxy.reference):
        with pytest.raises(ScoreError, match=r"BatchNorm1d '2' would normalise a single value"):
            run(model, batch8)
    assert model[2].running_mean is not None and model[2].track_running_stats


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x.flatten(1))
        return out if bool(out.detach().sum() > 0) else -out


def test_what_vmap_cannot_batch_fails_in_one_line(batch8: Batch) -> None:
    with pytest.raises(ScoreError, match=r"torch.func.vmap cannot compute") as info:
        get_proxy("gradsign").compute(DataDependent(), batch8)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------- parameter sets


def test_gradsign_set_includes_attention_projections_and_every_conv() -> None:
    vit = models.vit_small(attention="mha")
    names = conv_linear_weights(vit)
    assert "blocks.0.attn.mha.in_proj_weight" in names
    assert "blocks.0.attn.mha.out_proj.weight" in names
    assert names.index("blocks.0.attn.mha.in_proj_weight") < names.index(
        "blocks.0.attn.mha.out_proj.weight")
    assert names[0] == "patch_embed.weight" and names[-1] == "head.weight"
    assert not any(k in n for n in names for k in ("bias", "norm", "pos_embed", "cls_token"))
    cross = nn.MultiheadAttention(8, 2, kdim=4, vdim=6)
    assert conv_linear_weights(cross) == ["q_proj_weight", "k_proj_weight", "v_proj_weight",
                                          "out_proj.weight"]
    mixed = nn.Sequential(nn.Conv1d(3, 4, 3), nn.Conv3d(4, 4, 1), nn.ConvTranspose2d(4, 2, 2),
                          nn.Embedding(5, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    assert conv_linear_weights(mixed) == ["0.weight", "1.weight", "2.weight", "5.weight"]


def test_tied_weights_are_listed_once() -> None:
    embed = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = embed.weight
    model = nn.Sequential(embed, nn.Linear(4, 4), head)
    assert conv_linear_weights(model) == ["1.weight", "0.weight"]  # the head's is "0.weight"


# --------------------------------------------------------------------- every proxy on every model

MODEL_CASES: dict[str, Callable[[], nn.Module]] = {
    "resnet18": lambda: models.resnet18_small(),
    "mobilenetv2": lambda: models.mobilenetv2_small(),
    "vit_mha": lambda: models.vit_small(attention="mha", dropout=0.1),
    "vit_manual": lambda: models.vit_small(attention="manual", pos_embedding="embedding",
                                           dropout=0.1),
    "vit_sdpa": lambda: models.vit_small(attention="sdpa"),
    "vit_sdpa_dropout": lambda: models.vit_small(attention="sdpa", dropout=0.1),
    "convnext": lambda: models.convnext_small(),
}
STAGES = (r"^AZ-NAS \(az_expressivity, az_progressivity, az_trainability\) reads stage "
          r"features and needs a model with a `stem` module .*; {} has none$")
MODEL_CLASS = {"resnet18": "ResNet", "mobilenetv2": "MobileNetV2", "convnext": "ConvNeXt",
               **{m: "ViT" for m in ("vit_mha", "vit_manual", "vit_sdpa", "vit_sdpa_dropout")}}
NO_RELU = r"^naswot needs nn\.ReLU activations .* no nn\.ReLU module \(its activations: {}\)"
NO_RELU_MAP = r"^{} found no nn\.ReLU with a 4-D input in the forward pass"
RANDOM = r"^per-sample gradients need a deterministic forward, but the model draws random numbers"
BOUNDED = r"^{} needs activations unbounded above: .* saturates ReLU6 'stem\.2'"
# (proxy, model) -> regex of the ScoreError; every other pair must give a finite float
EXPECTED_FAILURES: dict[tuple[str, str], str] = {
    ("naswot", "mobilenetv2"): NO_RELU.format("ReLU6"),
    **{("naswot", m): NO_RELU.format("GELU") for m in MODEL_CASES if m.startswith(("vit", "conv"))},
    **{(p, "mobilenetv2"): BOUNDED.format(p) for p in ("synflow", "logsynflow")},
    **{(p, "vit_sdpa_dropout"): RANDOM for p in ("gradsign", "gradalign", "lga", "knas",
                                                 "tenas_ntk")},
    # AZ-NAS's three feature components read the stem and cells of a zcnas cell network
    **{(p, m): STAGES.format(MODEL_CLASS[m]) for m in MODEL_CASES
       for p in ("az_expressivity", "az_progressivity", "az_trainability")},
    ("tenas_regions", "mobilenetv2"): NO_RELU_MAP.format("tenas_regions"),
    **{("swap", m): NO_RELU_MAP.format("swap") for m in MODEL_CASES if m != "resnet18"},
    **{("tenas_regions", m): r"^tenas_regions feeds 3x3 crops and .* cannot take them \(.*\); "
       r"raise crop$" for m in MODEL_CASES if m.startswith(("vit", "conv"))},
    **{("vkdnw", m): r"^vkdnw reads per-sample gradients of parameters of Conv2d .* belongs to "
       r"LayerNorm" for m in MODEL_CASES if m.startswith(("vit", "conv"))},
    **{("zen", m): r"^zen reads the feature map before global average pooling and found no "
       r"nn\.AdaptiveAvgPool2d" for m in MODEL_CASES if m.startswith(("vit", "conv"))},
}
BUILTINS = {"fisher", "flops", "grad_norm", "gradalign", "gradsign", "grasp", "jacob_cov", "lga",
            "naswot", "params", "snip", "synflow", "zico", "az_complexity", "az_expressivity",
            "az_progressivity", "az_trainability", "knas", "meco", "swap", "tenas_ntk",
            "tenas_regions", "vkdnw", "zen", "logsynflow"}
# the 8-image batch of these tests is below swap's default 16 samples
PARAMS: dict[str, dict[str, int]] = {"swap": {"samples": 8}}
# ensembles combine cached member scores over a reference pool of a search space, not a model
ENSEMBLES = {"ensemble", "learned_ensemble"}


def shipped_proxies() -> list[str]:
    return [n for n in list_proxies() if n not in ENSEMBLES
            and PROXIES.get_class(n).__module__.startswith("zcnas.")]


def test_the_table_names_every_shipped_proxy() -> None:
    assert set(shipped_proxies()) == BUILTINS, "add the new proxy's outcomes to this test"


def score(proxy_name: str, factory: Callable[[], nn.Module], batch: Batch) -> float:
    """What the scoring choke point does: seed, build, train mode, check, compute."""
    torch.manual_seed(0)
    model = factory().train()
    proxy = get_proxy(proxy_name, **PARAMS.get(proxy_name, {}))
    proxy.check_model(model)
    return float(proxy.compute(model, batch))


@pytest.mark.parametrize("model", list(MODEL_CASES))
def test_every_proxy_scores_or_says_why(model: str, batch8: Batch) -> None:
    for name in sorted(BUILTINS):
        expected = EXPECTED_FAILURES.get((name, model))
        if expected is None:
            value = score(name, MODEL_CASES[model], batch8)
            assert math.isfinite(value), (name, model, value)
            assert value == score(name, MODEL_CASES[model], batch8), (name, model)
        else:
            with pytest.raises(ScoreError) as info:
                score(name, MODEL_CASES[model], batch8)
            message = str(info.value)
            assert re.search(expected, message) and "\n" not in message, (name, model, message)


# ------------------------------------------------------------------------ flops, fisher on tokens


def test_flops_count_attention_whichever_implementation(batch8: Batch) -> None:
    # patch conv 16 x 32 x (3 x 8 x 8); per block, 17 tokens: qkv 17 x 32 x 96, scores and
    # weighted sum 2 x 2 heads x 17 x 17 x 16, proj 17 x 32 x 32, MLP 2 x 17 x 32 x 128; head
    tokens, dim = 17, 32
    block = tokens * dim * 3 * dim + 2 * 2 * tokens * tokens * 16 + tokens * dim * dim \
        + 2 * tokens * dim * 4 * dim
    expected = (16 * dim * 3 * 8 * 8 + 2 * block + dim * 10) / 1e6
    for attention in ("mha", "manual", "sdpa"):
        value = get_proxy("flops").compute(models.vit_small(attention=attention), batch8)
        assert value == pytest.approx(expected, rel=1e-12), attention


@pytest.mark.parametrize("model", list(MODEL_CASES))
def test_flops_equal_half_of_torch_flop_counter(model: str, batch8: Batch) -> None:
    """An independent count: torch.utils.flop_counter (aten level, FLOPs = 2 MACs; attention on
    the math backend, whose matmuls it sees)."""
    from torch.nn.attention import SDPBackend
    from torch.nn.attention import sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    net = MODEL_CASES[model]()
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel([SDPBackend.MATH]), torch.no_grad():
        net(batch8.inputs[:1])
    assert get_proxy("flops").compute(net, batch8) == counter.get_total_flops() / 2 / 1e6


class Tokens(nn.Module):
    """Pixels as tokens: a Linear on (N, T, C), averaged over tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(2).transpose(1, 2)).mean(1)


def test_fisher_takes_the_last_dim_of_a_linear_as_its_channels(batch8: Batch) -> None:
    torch.manual_seed(0)
    model = Tokens()
    act = model.fc(batch8.inputs.flatten(2).transpose(1, 2))
    loss = nn.functional.cross_entropy(act.mean(1), batch8.targets)
    (grad,) = torch.autograd.grad(loss, act)
    per_channel = (act * grad).sum(1)  # (N, C): summed over tokens
    expected = 3 * float(per_channel.pow(2).mean(0).mul(0.5).sum())
    assert get_proxy("fisher").compute(model, batch8) == pytest.approx(expected, rel=1e-6)
