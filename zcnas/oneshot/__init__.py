"""Weight-sharing (one-shot) evaluation beside the zero-cost proxies: a supernet over a zcnas
space, trained once, ranks every child by its held-out accuracy with inherited weights.

* The supernet is the NNI model space zcnas generates (:class:`zcnas.search.nni.ZcnasModelSpace`)
  with one NNI ``LayerChoice`` per position, turned by NNI 3.0's ``RandomOneShot`` strategy into
  its path-sampling super-modules (:class:`Supernet`; needs the ``nni`` extra).
* Training (:func:`train_supernet`, ``zcnas oneshot train``): SPOS single-path uniform sampling,
  or (default) the BigNAS sandwich rule (largest, smallest and random children every step) with
  in-place distillation from the largest child, written over NNI's super-modules. NNI's own
  Lightning training loop (``RandomSamplingLightningModule``) runs one ``resample()`` and one
  optimizer step per batch with automatic optimisation, so it cannot train several children per
  step; and a Ctrl-C inside its Lightning fit ends the process (``sys.exit(1)``). Both were checked
  with NNI 3.0 / pytorch-lightning 2.6.6 / torch 2.13; hence this thin loop.
* Evaluation (:func:`evaluate_child`): batch-norm recalibration on training images, accuracy and
  loss on the held-out images.
* The ``oneshot`` evaluator (:class:`OneShotEvaluator`) puts this behind ``zcnas.scoring``: every
  search, ``correlate`` and ``compare`` accept it by name; child scores are cached in SQL and the
  checkpoint is an artefact beside the database, keyed like a score (:func:`run_key`).

Data: the 2,000 shared CIFAR-10 images split 1,500 / 500 (:func:`split_images`), far below the
50,000 (CIFAR-10) or 1.28 M (ImageNet) images the papers train supernets on.

Layer: above ``zcnas.search`` (it uses the NNI model space), below ``zcnas.cli``.
"""

from __future__ import annotations

from typing import Any

from zcnas.oneshot._data import SplitData
from zcnas.oneshot._data import augment
from zcnas.oneshot._data import split_images
from zcnas.oneshot._evaluate import ChildResult
from zcnas.oneshot._evaluate import bn_state
from zcnas.oneshot._evaluate import calibration_images
from zcnas.oneshot._evaluate import evaluate_child
from zcnas.oneshot._evaluate import held_out_metrics
from zcnas.oneshot._evaluate import interleaved
from zcnas.oneshot._evaluate import load_bn_state
from zcnas.oneshot._evaluate import recalibrate
from zcnas.oneshot._evaluator import OneShotEvaluator
from zcnas.oneshot._evaluator import load_supernet
from zcnas.oneshot._train import ENV_ARTIFACT_DIR
from zcnas.oneshot._train import TRAINER_VERSION
from zcnas.oneshot._train import SupernetConfig
from zcnas.oneshot._train import TrainResult
from zcnas.oneshot._train import artifact_root
from zcnas.oneshot._train import checkpoint_path
from zcnas.oneshot._train import extremes
from zcnas.oneshot._train import load_checkpoint
from zcnas.oneshot._train import run_key
from zcnas.oneshot._train import step_children
from zcnas.oneshot._train import train_supernet


_NNI = ("Supernet", "child_network", "child_state_dict")

__all__ = [
    "ENV_ARTIFACT_DIR", "TRAINER_VERSION", "ChildResult", "OneShotEvaluator", "SplitData",
    "Supernet", "SupernetConfig", "TrainResult", "artifact_root", "augment", "bn_state",
    "calibration_images", "checkpoint_path", "child_network", "child_state_dict",
    "evaluate_child", "extremes", "held_out_metrics", "interleaved", "load_bn_state", "load_checkpoint",
    "load_supernet", "recalibrate", "run_key", "split_images", "step_children",
    "train_supernet",
]


def __getattr__(name: str) -> Any:
    if name in _NNI:  # these import NNI
        from zcnas.search.nni import require_nni

        require_nni()
        from zcnas.oneshot import _supernet

        return getattr(_supernet, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
