"""The ``oneshot`` evaluator: an architecture's score is the held-out accuracy (or loss) of its
child in a trained weight-sharing supernet, after batch-norm recalibration."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import fields
from dataclasses import replace
import logging
import time
from typing import Any
from typing import ClassVar

import torch

from zcnas.data import Batch
from zcnas.exceptions import DataError
from zcnas.exceptions import ZcnasError
from zcnas.oneshot._data import SplitData
from zcnas.oneshot._data import split_images
from zcnas.oneshot._evaluate import ChildResult
from zcnas.oneshot._evaluate import bn_state
from zcnas.oneshot._evaluate import evaluate_child
from zcnas.oneshot._evaluate import interleaved
from zcnas.oneshot._train import SupernetConfig
from zcnas.oneshot._train import artifact_root
from zcnas.oneshot._train import checkpoint_path
from zcnas.oneshot._train import load_checkpoint
from zcnas.oneshot._train import run_key
from zcnas.oneshot._train import train_supernet
from zcnas.scoring import Evaluator
from zcnas.scoring import register_evaluator
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace
from zcnas.storage import ScoreCache


_logger = logging.getLogger(__name__)
_CONFIG_FIELDS = tuple(f.name for f in fields(SupernetConfig))
_SPLITS: dict[tuple[Any, ...], SplitData] = {}
_LOADED: OrderedDict[tuple[str, str, float], tuple[Any, dict[str, torch.Tensor], dict]] = \
    OrderedDict()
_RESULTS: OrderedDict[tuple[Any, ...], tuple[ChildResult, float]] = OrderedDict()


def _split(config: SupernetConfig, num_classes: int) -> SplitData:
    key = (config.data, config.n_images, config.holdout, num_classes)
    if key not in _SPLITS:
        _SPLITS[key] = split_images(config.data, config.n_images, config.holdout, num_classes)
    return _SPLITS[key]


def load_supernet(path: Any, space: SearchSpace, device: str = "cpu"
                  ) -> tuple[Any, dict[str, torch.Tensor], dict[str, Any]]:
    """(supernet with the checkpoint's weights, its trained BN statistics, the checkpoint)
    (the last two loaded are kept in memory)."""
    from zcnas.search.nni import require_nni

    require_nni()
    from zcnas.oneshot._supernet import Supernet

    stamp = (str(path), str(device), path.stat().st_mtime if path.exists() else 0.0)
    if stamp in _LOADED:
        _LOADED.move_to_end(stamp)
        return _LOADED[stamp]
    state = load_checkpoint(path)
    meta = state["meta"]
    if meta["space"] != space.cache_name:
        raise DataError(f"checkpoint {path} is for space {meta['space']!r}, not "
                        f"{space.cache_name!r}; train one for this space with `zcnas oneshot "
                        f"train`")
    supernet = Supernet(space, int(meta["num_classes"]), seed=int(meta["seed"]))
    supernet.load_state_dict(state["model"])
    supernet.to(device)
    entry = (supernet, bn_state(supernet), state)
    _LOADED[stamp] = entry
    while len(_LOADED) > 2:
        _LOADED.popitem(last=False)
    return entry


@register_evaluator("oneshot")
class OneShotEvaluator(Evaluator):
    """Weight-sharing (one-shot) evaluation: the score of an architecture is its child's
    held-out accuracy in % (``metric="accuracy"``, maximize) or held-out cross-entropy
    (``metric="loss"``, minimize) in a supernet trained on the training part of the images,
    with inherited weights and (``recalibrate``) batch-norm statistics re-estimated on
    ``calib_batches`` x ``calib_batch_size`` training images first.

    The supernet (NNI ``RandomOneShot`` supernet modules; sandwich rule and in-place
    distillation by default, see :mod:`zcnas.oneshot`) is identified by the training
    parameters below, the space, the classifier width (``batch.num_classes``), the images and
    their split, and the score's ``seed`` (its weight-initialisation seed). Its checkpoint is an
    artefact beside the database (:func:`artifact_root`); if missing, the first score trains it
    (``train_missing``; ``zcnas oneshot train`` does it beforehand with a progress bar). The
    batch a search passes is not looked at beyond its classifier width: the held-out images are
    the data. Its training CPU seconds are :meth:`setup_seconds`, charged once per study.

    Args:
        epochs ... holdout: the :class:`SupernetConfig` fields.
        metric: ``accuracy`` or ``loss`` (sets ``direction``).
        recalibrate, calib_batches, calib_batch_size: BN recalibration per child.
        eval_images: held-out images scored (the first N, classes interleaved; None: all).
        artifact_dir: folder of the checkpoints (not part of the key; default beside the
            SQLite database, or ``$ZCNAS_ARTIFACT_DIR``).
        train_missing: train a missing supernet on first use (else the score fails).
        progress: show the training progress bar.
    """

    paper = ("SPOS (Guo et al., ECCV 2020) via NNI RandomOneShot; sandwich rule and in-place "
             "distillation of BigNAS (Yu et al., ECCV 2020)")
    version = "1"
    uses_data: ClassVar[bool] = True
    uses_labels: ClassVar[bool] = True
    _NOT_IN_KEY: ClassVar[tuple[str, ...]] = ("artifact_dir", "train_missing", "progress")

    def __init__(self, *, epochs: int = 10, batch_size: int = 64, lr: float = 0.05,
                 momentum: float = 0.9, weight_decay: float = 5e-4, warmup_steps: int = 20,
                 grad_clip: float | None = 5.0, sandwich: bool = True, n_random: int = 2,
                 distill: float = 1.0, augment: bool = True, data: str = "cifar10",
                 n_images: int = 2000, holdout: int = 500, metric: str = "accuracy",
                 recalibrate: bool = True, calib_batches: int = 4, calib_batch_size: int = 64,
                 eval_images: int | None = None, artifact_dir: str | None = None,
                 train_missing: bool = True, progress: bool = False) -> None:
        if metric not in ("accuracy", "loss"):
            raise ZcnasError(f"oneshot metric must be 'accuracy' or 'loss', got {metric!r}")
        if eval_images is not None and (not isinstance(eval_images, int) or eval_images < 1):
            raise ZcnasError(f"oneshot eval_images must be a positive int or null, got "
                             f"{eval_images!r}")
        self.epochs, self.batch_size, self.lr, self.momentum = epochs, batch_size, lr, momentum
        self.weight_decay, self.warmup_steps, self.grad_clip = weight_decay, warmup_steps, \
            grad_clip
        self.sandwich, self.n_random, self.distill, self.augment = sandwich, n_random, distill, \
            augment
        self.data, self.n_images, self.holdout = data, n_images, holdout
        self.metric, self.recalibrate = metric, recalibrate
        self.calib_batches, self.calib_batch_size = calib_batches, calib_batch_size
        self.eval_images = eval_images
        self.artifact_dir, self.train_missing, self.progress = artifact_dir, train_missing, \
            progress
        self.direction = "maximize" if metric == "accuracy" else "minimize"  # type: ignore[misc]
        self.config()  # validates

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in super().get_params().items() if k not in self._NOT_IN_KEY}

    def config(self) -> SupernetConfig:
        """The supernet's training configuration."""
        return SupernetConfig(**{k: getattr(self, k) for k in _CONFIG_FIELDS})

    # --- the checkpoint ----------------------------------------------------------------------
    def checkpoint(self, space: SearchSpace, num_classes: int, *, seed: int,
                   cache: ScoreCache | None = None) -> Any:
        """The checkpoint file this evaluator scores with (it may not exist yet)."""
        cfg = self.config()
        split = _split(cfg, num_classes)
        root = artifact_root(self.artifact_dir, cache.url if cache is not None else None)
        return checkpoint_path(root, run_key(space, num_classes, split.identity, seed, cfg),
                               cfg.epochs)

    def setup_seconds(self, space: SearchSpace, batch: Batch, *, seed: int,
                      cache: ScoreCache | None = None) -> float | None:
        """CPU seconds the supernet's training took (the one-time cost of every study that
        uses it); None if it is not trained yet."""
        path = self.checkpoint(space, batch.num_classes, seed=seed, cache=cache)
        if not path.is_file():
            return None
        return float(load_checkpoint(path)["cpu_seconds"])

    def prepare(self, space: SearchSpace, num_classes: int, *, seed: int, device: str = "cpu",
                cache: ScoreCache | None = None) -> Any:
        """The checkpoint path, training the supernet first if it is missing."""
        path = self.checkpoint(space, num_classes, seed=seed, cache=cache)
        if not path.is_file():
            if not self.train_missing:
                raise DataError(f"no supernet checkpoint {path}; train it with `zcnas oneshot "
                                f"train --epochs {self.epochs} --seed {seed}` (same settings)")
            _logger.warning("training the supernet %s (one-time cost of this study)", path.name)
            train_supernet(space, self.config(), seed=seed, num_classes=num_classes,
                           artifact_dir=path.parents[2], device=device, progress=self.progress,
                           split=_split(self.config(), num_classes))
        return path

    # --- scoring -------------------------------------------------------------------------------
    def child_result(self, space: SearchSpace, arch: Arch, num_classes: int, *, seed: int,
                     device: str = "cpu", cache: ScoreCache | None = None
                     ) -> tuple[ChildResult, float]:
        """(accuracy and loss of the child, wall seconds of its evaluation), memoised in memory
        per checkpoint and setting, so ``accuracy`` and ``loss`` of a child cost one pass."""
        path = self.prepare(space, num_classes, seed=seed, device=device, cache=cache)
        memo = (str(path), space.key(arch), self.recalibrate, self.calib_batches,
                self.calib_batch_size, self.eval_images, str(device))
        if memo in _RESULTS:
            return _RESULTS[memo]
        supernet, trained_bn, _ = load_supernet(path, space, device)
        split = _split(self.config(), num_classes)
        if self.eval_images is not None and self.eval_images < len(split.held_y):
            idx = interleaved(split.held_y)[: self.eval_images]
            split = replace(split, held_x=split.held_x[idx], held_y=split.held_y[idx])
        if str(device) != "cpu":
            split = replace(split, train_x=split.train_x.to(device),
                            train_y=split.train_y.to(device), held_x=split.held_x.to(device),
                            held_y=split.held_y.to(device))
        start = time.perf_counter()
        result = evaluate_child(supernet, arch, split, trained_bn=trained_bn,
                                recalibrate_bn=self.recalibrate,
                                calib_batches=self.calib_batches,
                                calib_batch_size=self.calib_batch_size)
        out = (result, time.perf_counter() - start)
        _RESULTS[memo] = out
        while len(_RESULTS) > 100_000:
            _RESULTS.popitem(last=False)
        return out

    def evaluate(self, space: SearchSpace, arch: Arch, batch: Batch, *, seed: int, device: str,
                 cache: ScoreCache | None) -> tuple[float | None, str | None, float]:
        result, seconds = self.child_result(space, arch, batch.num_classes, seed=seed,
                                            device=device, cache=cache)
        value = result.accuracy if self.metric == "accuracy" else result.loss
        return value, None, seconds
