"""The weight-sharing supernet: the NNI model space zcnas generates
(:class:`zcnas.search.nni.ZcnasModelSpace`) plus one NNI ``LayerChoice`` per architecture
parameter and position, converted by NNI's own ``RandomOneShot`` strategy into its sampling
super-modules (``PathSamplingLayer``, the single-path uniform-sampling supernet of SPOS).

This module imports NNI; use it through :mod:`zcnas.oneshot`.

How the supernet is built from a zcnas space (no space-specific code): for each index ``j`` of
the parameters' choices, ``space.build`` makes the network in which every parameter takes its
``j``-th choice; every ``nn.ModuleDict`` keyed by parameter names (NB201: ``cells.<i>.edges``)
becomes, entry by entry, a ``LayerChoice({choice: module of network j})`` labelled with the
parameter name, and everything else (stem, reduction blocks, classifier) is the first network's.
So the child of ``arch`` runs exactly the modules ``space.build(arch)`` has, under the same names
(:func:`child_state_dict` maps the weights one to one), and NNI's sample of the supernet *is*
the zcnas architecture dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nni.nas.nn.pytorch import LayerChoice
from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule
from nni.nas.strategy import RandomOneShot
import torch
from torch import nn

from zcnas.exceptions import ZcnasError
from zcnas.search.nni import ZcnasModelSpace
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace


def _choice_networks(space: SearchSpace, num_classes: int) -> tuple[list[nn.Module], dict]:
    choices = {n: list(d.choices) for n, d in space.distributions.items()}  # type: ignore[attr-defined]
    width = max(len(c) for c in choices.values())
    nets = [space.build({n: c[j % len(c)] for n, c in choices.items()}, num_classes=num_classes)
            for j in range(width)]
    return nets, choices


class Supernet(ZcnasModelSpace):
    """A weight-sharing supernet over ``space`` (see the module docstring).

    ``RandomOneShot().mutate_model`` has been applied: each position is an NNI
    ``PathSamplingLayer``. :meth:`set_child` selects a child (through NNI's ``resample(memo)``);
    the forward pass then runs that child only.

    Args:
        space: a zcnas space whose networks hold one module per parameter in an
            ``nn.ModuleDict`` keyed by the parameter name (NB201 does).
        num_classes: classifier width.
        seed: seed of the weight initialisation.
    """

    def __init__(self, space: SearchSpace, num_classes: int = 10, seed: int = 0) -> None:
        super().__init__(space, num_classes)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            nets, choices = _choice_networks(space, num_classes)
        skeleton = nets[0]
        found: set[str] = set()
        for path, module in list(skeleton.named_modules()):
            if not isinstance(module, nn.ModuleDict) or not module.keys():
                continue
            if not set(module.keys()) <= set(choices):
                continue
            for name in list(module.keys()):
                candidates = {c: nets[j].get_submodule(f"{path}.{name}")
                              for j, c in enumerate(choices[name])}
                module[name] = LayerChoice(candidates, label=name)
                found.add(name)
        missing = sorted(set(choices) - found)
        if missing:
            raise ZcnasError(
                f"space {space.name!r} builds no nn.ModuleDict entry for parameter(s) "
                f"{', '.join(missing)}, so no weight-sharing supernet can be made from it; its "
                f"networks must keep one module per parameter in a ModuleDict keyed by the name"
            )
        self.net = skeleton
        RandomOneShot().mutate_model(self)  # LayerChoice -> NNI's PathSamplingLayer
        self.positions = [m for m in self.modules() if isinstance(m, BaseSuperNetModule)]
        self.child: Arch | None = None

    def set_child(self, arch: Mapping[str, Any]) -> None:
        """Select the child ``arch`` (a zcnas architecture dict) in every position."""
        memo = dict(arch)
        for module in self.positions:
            module.resample(memo=memo)
        self.child = dict(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.child is None:
            raise ZcnasError("no child selected; call set_child(arch) before the forward pass")
        return self.net(x)

    def freeze(self, sample: dict) -> nn.Module:
        """The child as a plain ``space.build`` network with the inherited (shared) weights."""
        return child_network(self, sample)


def child_state_dict(supernet: Supernet, arch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The supernet's weights of child ``arch``, under the parameter names of
    ``space.build(arch)`` (``load_state_dict`` of that network accepts it, strictly)."""
    arch = supernet.space.as_arch(arch)
    full = supernet.net.state_dict()
    positions = {n for n, m in supernet.net.named_modules() if isinstance(m, BaseSuperNetModule)}
    out = {}
    for name, tensor in full.items():
        parts = name.split(".")
        for i in range(len(parts)):
            if ".".join(parts[:i]) in positions:
                label = parts[i - 1]
                if parts[i] != arch[label]:
                    break
                name = ".".join(parts[:i] + parts[i + 1:])
                out[name] = tensor
                break
        else:
            out[name] = tensor
    return out


def child_network(supernet: Supernet, arch: Mapping[str, Any]) -> nn.Module:
    """``space.build(arch)`` with the supernet's weights (a standalone copy)."""
    net = supernet.space.build(supernet.space.as_arch(arch), num_classes=supernet.num_classes)
    net.load_state_dict(child_state_dict(supernet, arch))
    return net
