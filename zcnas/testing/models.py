"""Small hand-built models of four common families, for tests and examples on CPU.

torchvision and timm are not dependencies (their wheels pull their own torch builds), so these
follow the published block designs at toy widths for 32 x 32 inputs; every factory is
deterministic given ``torch.manual_seed`` and returns a model in train mode:

* :func:`resnet18_small`: CIFAR ResNet-18 (He et al. 2016): 3x3 stem, BasicBlocks [2, 2, 2, 2]
  with BatchNorm, ReLU and 1x1 projection shortcuts; ``groups > 1`` makes the 3x3 convs grouped
  (ResNeXt-style). No max-pool (the CIFAR variant).
* :func:`mobilenetv2_small`: MobileNetV2 (Sandler et al. 2018): inverted residuals (1x1 expand,
  3x3 depthwise, linear 1x1 projection), BatchNorm, ReLU6 (or Hardswish / SiLU).
* :func:`vit_small`: ViT (Dosovitskiy et al. 2021): patch-embedding conv, class token, learned
  position embedding (a parameter or an ``nn.Embedding``), pre-norm blocks with LayerNorm,
  attention (``nn.MultiheadAttention``, hand-written softmax attention, or
  ``F.scaled_dot_product_attention``), a GELU MLP and Dropout.
* :func:`convnext_small`: ConvNeXt (Liu et al. 2022): patchify stem, blocks of 7x7 depthwise conv,
  channels-last LayerNorm, 4x Linear MLP with GELU (or SiLU / Hardswish) and layer scale;
  GroupNorm + strided conv between stages.

Activations are modules (never ``F.relu``) so that hooks see them. ``MODELS`` maps names to
factories.
"""

from __future__ import annotations

from collections.abc import Callable
import math
from typing import Literal

import torch
from torch import nn
import torch.nn.functional as F


Activation = Literal["relu6", "hardswish", "silu", "gelu", "relu"]


def _act(name: Activation) -> nn.Module:
    acts: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "silu": nn.SiLU,
        "gelu": nn.GELU,
    }
    if name not in acts:
        raise ValueError(f"activation must be one of {', '.join(acts)}, got {name!r}")
    return acts[name]()


def _divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` (at least ``divisor``), as MobileNet does."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


# ----------------------------------------------------------------------------------------- ResNet


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with ReLU and an identity (or 1x1 conv-BN) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, groups=groups, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, num_classes: int, width: int, blocks: tuple[int, ...], groups: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        layers: list[nn.Module] = []
        c_in = width
        for stage, n in enumerate(blocks):
            c_out = width * 2 ** stage
            for b in range(n):
                layers.append(BasicBlock(c_in, c_out, 2 if stage and b == 0 else 1, groups))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


def resnet18_small(num_classes: int = 10, width: int = 8, groups: int = 1) -> nn.Module:
    """CIFAR ResNet-18 with stage widths ``width x (1, 2, 4, 8)`` (64 is the paper's)."""
    if width % groups:
        raise ValueError(f"width {width} must be a multiple of groups {groups}")
    return ResNet(num_classes, width, (2, 2, 2, 2), groups).train()


# -------------------------------------------------------------------------------------- MobileNet


class InvertedResidual(nn.Module):
    """1x1 expand (skipped for ratio 1), 3x3 depthwise, linear 1x1 projection; residual when the
    shape is kept."""

    def __init__(self, c_in: int, c_out: int, stride: int, ratio: int, act: Activation) -> None:
        super().__init__()
        hidden = c_in * ratio
        layers: list[nn.Module] = []
        if ratio != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), _act(act)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), _act(act),
            nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


# (expansion t, channels c, repeats n, first stride s), a shortened MobileNetV2 table for 32x32
MOBILENET_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 2, 2), (6, 96, 1, 1))


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int, width: float, act: Activation) -> None:
        super().__init__()
        c = _divisible(32 * width)
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), _act(act))
        blocks: list[nn.Module] = []
        for t, channels, n, s in MOBILENET_SETTING:
            c_out = _divisible(channels * width)
            for i in range(n):
                blocks.append(InvertedResidual(c, c_out, s if i == 0 else 1, t, act))
                c = c_out
        self.blocks = nn.Sequential(*blocks)
        last = _divisible(320 * width)
        self.head = nn.Sequential(nn.Conv2d(c, last, 1, bias=False), nn.BatchNorm2d(last), _act(act),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.0),
                                  nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def mobilenetv2_small(num_classes: int = 10, width: float = 0.25,
                      activation: Activation = "relu6") -> nn.Module:
    """MobileNetV2 at width multiplier ``width`` (channels rounded to multiples of 8)."""
    return MobileNetV2(num_classes, width, activation).train()


# -------------------------------------------------------------------------------------------- ViT


class ManualAttention(nn.Module):
    """Multi-head self-attention written out: ``softmax(q k^T / sqrt(d)) v`` with Dropout."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attn_drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        attn = self.attn_drop(attn.softmax(dim=-1))
        return self.proj((attn @ v).transpose(1, 2).reshape(n, t, d))


class SDPAttention(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention``; its attention
    dropout is functional (``dropout_p`` in train mode), as in timm."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.p = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class MHAttention(nn.Module):
    """``nn.MultiheadAttention`` used as self-attention (batch first, no attention weights)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


ATTENTIONS: dict[str, type[nn.Module]] = {
    "mha": MHAttention, "manual": ManualAttention, "sdpa": SDPAttention,
}


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(LN(x))``, then ``x + MLP(LN(x))`` with a GELU MLP."""

    def __init__(self, dim: int, heads: int, attention: str, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ATTENTIONS[attention](dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(4 * dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, num_classes: int, image_size: int, patch: int, dim: int, depth: int,
                 heads: int, attention: str, dropout: float, pos_embedding: str) -> None:
        super().__init__()
        tokens = (image_size // patch) ** 2 + 1
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if pos_embedding == "embedding":
            # the Embedding, or a Parameter (a plain Tensor under torch.func.functional_call)
            self.pos_embed: nn.Embedding | torch.Tensor = nn.Embedding(tokens, dim)
        else:
            self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.register_buffer("positions", torch.arange(tokens), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads, attention, dropout)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        pos = self.pos_embed(self.positions) if isinstance(self.pos_embed, nn.Embedding) \
            else self.pos_embed
        x = self.blocks(self.drop(x + pos))
        return self.head(self.norm(x)[:, 0])


def vit_small(num_classes: int = 10, *, image_size: int = 32, patch: int = 8, dim: int = 32,
              depth: int = 2, heads: int = 2,
              attention: Literal["mha", "manual", "sdpa"] = "mha", dropout: float = 0.0,
              pos_embedding: Literal["parameter", "embedding"] = "parameter") -> nn.Module:
    """A ViT on ``(image_size / patch)^2`` patches plus a class token, classified from the class
    token after the final LayerNorm."""
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}")
    if pos_embedding not in ("parameter", "embedding"):
        raise ValueError(f"pos_embedding must be 'parameter' or 'embedding', got {pos_embedding!r}")
    if dim % heads:
        raise ValueError(f"dim {dim} must be a multiple of heads {heads}")
    return ViT(num_classes, image_size, patch, dim, depth, heads, attention, dropout,
               pos_embedding).train()


# --------------------------------------------------------------------------------------- ConvNeXt


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (ConvNeXt's channels-first LayerNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """7x7 depthwise conv, channels-last LayerNorm, Linear 4x, activation, Linear, layer scale,
    residual."""

    def __init__(self, dim: int, act: Activation, layer_scale: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = _act(act)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x).permute(0, 2, 3, 1))
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(self, num_classes: int, width: int, depths: tuple[int, ...], act: Activation,
                 layer_scale: float) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 2, 2), LayerNorm2d(width))
        stages: list[nn.Module] = []
        c = width
        for i, depth in enumerate(depths):
            if i:
                stages += [nn.GroupNorm(1, c), nn.Conv2d(c, 2 * c, 2, 2)]
                c *= 2
            stages += [ConvNeXtBlock(c, act, layer_scale) for _ in range(depth)]
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(c)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.stages(self.stem(x)).mean(dim=(2, 3))))


def convnext_small(num_classes: int = 10, width: int = 16, depths: tuple[int, ...] = (1, 1, 1),
                   activation: Activation = "gelu", layer_scale: float = 1e-6) -> nn.Module:
    """ConvNeXt with stage widths ``width x (1, 2, 4, ...)`` (96 is the paper's ConvNeXt-T)."""
    return ConvNeXt(num_classes, width, tuple(depths), activation, layer_scale).train()


MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet18_small": resnet18_small,
    "mobilenetv2_small": mobilenetv2_small,
    "vit_small": vit_small,
    "convnext_small": convnext_small,
}
