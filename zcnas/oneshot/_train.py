"""Supernet training: single-path uniform sampling (SPOS, NNI's ``RandomOneShot``) or the
BigNAS sandwich rule with in-place distillation, checkpointed as artefacts keyed like scores.

Sandwich rule (BigNAS, Yu et al., ECCV 2020, section 3.1, after slimmable networks' US-Nets):
every step trains the largest child, the smallest child and ``n_random`` uniformly sampled
children on the same batch and applies their summed gradients in one optimizer step. For a cell
space "largest" and "smallest" are defined per position from the candidates (:func:`extremes`):

* largest: the candidate with the most parameters (NB201: ``nor_conv_3x3`` on all six edges,
  1.53 M parameters, the most of the 15,625 cells and the most FLOPs);
* smallest: a parameter-free candidate, the identity when there is one (NB201:
  ``skip_connect`` everywhere: no cell parameters, the cheapest *connected* cell; the all-``none``
  cell has fewer FLOPs but its output does not depend on its input, so it has nothing to learn).

In-place distillation (BigNAS; Yu & Huang, ICCV 2019): the largest child learns from the labels;
every other child from the largest child's detached softmax (``distill`` is the weight of that
soft loss, ``1 - distill`` of the labels').

Schedule: SGD with Nesterov momentum, a linear warm-up over ``warmup_steps`` and then a constant
learning rate, so the checkpoint after ``k`` epochs of a longer run *is* the ``k``-epoch
supernet (same data order, same children, same weights): one run yields every training length,
and ``train_supernet(epochs=6)`` continues an existing 3-epoch checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
import hashlib
import json
import logging
import os
from pathlib import Path
import re
import signal
import threading
import time
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from zcnas.data import Batch
from zcnas.exceptions import DataError
from zcnas.exceptions import ZcnasError
from zcnas.oneshot._data import SplitData
from zcnas.oneshot._data import augment
from zcnas.oneshot._data import epoch_batches
from zcnas.oneshot._data import split_images
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace
from zcnas.storage import default_storage
from zcnas.version import __version__


if TYPE_CHECKING:  # NNI is optional: the class is imported where a supernet is built
    from zcnas.oneshot._supernet import Supernet


_logger = logging.getLogger(__name__)
#: version of the training procedure (part of every checkpoint key): bump when it changes
TRAINER_VERSION = "1"
FORMAT = "zcnas-oneshot-1"
ENV_ARTIFACT_DIR = "ZCNAS_ARTIFACT_DIR"


@dataclass(frozen=True)
class SupernetConfig:
    """Everything that determines a trained supernet besides space, classes and seed.

    Attributes:
        epochs: passes over the training part.
        batch_size: images per step (every child of a step sees the same batch).
        lr, momentum, weight_decay: SGD (Nesterov) hyper-parameters; ``warmup_steps`` linear
            warm-up, then constant.
        grad_clip: max gradient norm of each step (None: off).
        sandwich: True: the BigNAS sandwich rule (largest + smallest + ``n_random`` random
            children per step); False: SPOS (one uniformly random child per step, labels only).
        n_random: random children per sandwich step.
        distill: weight of the in-place distillation loss of the non-largest children.
        augment: random crop (pad 4) + horizontal flip.
        data, n_images, holdout: the image set and its split (see :func:`split_images`).
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: int = 20
    grad_clip: float | None = 5.0
    sandwich: bool = True
    n_random: int = 2
    distill: float = 1.0
    augment: bool = True
    data: str = "cifar10"
    n_images: int = 2000
    holdout: int = 500

    def __post_init__(self) -> None:
        for name in ("epochs", "n_random", "warmup_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ZcnasError(f"oneshot {name} must be an int >= 0, got {v!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) \
                or self.batch_size < 2:
            raise ZcnasError(f"oneshot batch_size must be an int >= 2, got {self.batch_size!r}")
        if not 0.0 <= float(self.distill) <= 1.0:
            raise ZcnasError(f"oneshot distill must be in [0, 1], got {self.distill!r}")
        if not float(self.lr) > 0:
            raise ZcnasError(f"oneshot lr must be positive, got {self.lr!r}")

    def run_params(self) -> dict[str, Any]:
        """The parameters that define the run, i.e. all but ``epochs``."""
        out = asdict(self)
        out.pop("epochs")
        return out


# --- keys and files ------------------------------------------------------------------------------
def run_key(space: SearchSpace, num_classes: int, data_identity: str, seed: int,
            config: SupernetConfig) -> str:
    """The key of a training run (all but its length): space cache name (name, version,
    non-default parameters), classes, data identity (images and split), seed, training
    hyper-parameters and the trainer version; ``<space>-s<seed>-<16 hex>``."""
    blob = json.dumps({"space": space.cache_name, "num_classes": int(num_classes),
                       "data_identity": data_identity, "seed": int(seed),
                       "trainer": TRAINER_VERSION,
                       **config.run_params()}, sort_keys=True, default=str)
    slug = re.sub(r"[^A-Za-z0-9@.]+", "_", space.cache_name).strip("_")[:40]
    return f"{slug}-c{num_classes}-s{seed}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def artifact_root(artifact_dir: str | os.PathLike[str] | None = None,
                  storage: str | None = None) -> Path:
    """Where artefacts live: ``artifact_dir``, else ``$ZCNAS_ARTIFACT_DIR``, else
    ``zcnas_artifacts`` beside the SQLite database of ``storage`` (default storage if None).

    Raises:
        DataError: a non-SQLite storage and no folder given.
    """
    if artifact_dir:
        return Path(artifact_dir).expanduser()
    if os.environ.get(ENV_ARTIFACT_DIR):
        return Path(os.environ[ENV_ARTIFACT_DIR]).expanduser()
    from sqlalchemy.engine import make_url

    url = make_url(storage or default_storage())
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        raise DataError(
            "supernet checkpoints need a local folder for this database; pass --artifact-dir "
            f"DIR (artifact_dir=...) or set {ENV_ARTIFACT_DIR}")
    return Path(url.database).expanduser().resolve().parent / "zcnas_artifacts"


def run_dir(root: Path, key: str) -> Path:
    return root / "oneshot" / key


def checkpoint_path(root: Path, key: str, epochs: int) -> Path:
    """The file of the ``epochs``-epoch supernet of run ``key``."""
    return run_dir(root, key) / f"e{epochs}.pt"


def _save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint written by :func:`train_supernet` (tensors and plain values only)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"no supernet checkpoint at {path}; train it with `zcnas oneshot "
                        f"train`") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DataError(f"{path} is not a zcnas supernet checkpoint; train a new one with "
                        f"`zcnas oneshot train`")
    return state


# --- children -----------------------------------------------------------------------------------
def extremes(supernet: Supernet) -> tuple[Arch, Arch]:
    """(largest, smallest) child of the sandwich rule (see the module docstring)."""
    largest: Arch = {}
    smallest: Arch = {}
    for module in supernet.positions:
        label = module.label
        if label in largest:
            continue
        sizes = {name: sum(p.numel() for p in module[name].parameters()) for name in module.names}
        largest[label] = max(module.names, key=lambda n: sizes[n])
        fewest = min(sizes.values())
        light = [n for n in module.names if sizes[n] == fewest]
        ident = [n for n in light if isinstance(module[n], nn.Identity)]
        smallest[label] = (ident or light)[0]
    space = supernet.space
    names = list(space.distributions)
    return ({n: largest[n] for n in names}, {n: smallest[n] for n in names})


def step_children(supernet: Supernet, config: SupernetConfig, seed: int,
                  global_step: int) -> list[Arch]:
    """The children trained at ``global_step``: [largest, smallest, random...] (sandwich) or
    [random] (SPOS). Random children are uniform over the space's valid architectures (as NNI's
    ``PathSamplingLayer.resample``), drawn from a generator seeded by (seed, step) so a resumed
    run trains the same children."""
    space = supernet.space
    rng = np.random.default_rng([seed, global_step, 7])
    if not config.sandwich:
        return [space.random_arch(rng)]
    largest, smallest = extremes(supernet)
    return [largest, smallest] + [space.random_arch(rng) for _ in range(config.n_random)]


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    return -(target_probs * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


# --- training -----------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """A finished (or found) supernet: its checkpoint file and what it cost."""

    path: Path
    key: str
    epochs: int
    cpu_seconds: float
    wall_seconds: float
    history: list[dict[str, Any]]
    resumed_from: str | None = None
    trained_now: bool = False


class _StopFlag:
    """First SIGINT: finish the current step, save, raise KeyboardInterrupt; a second one
    interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _lr(config: SupernetConfig, step: int) -> float:
    if config.warmup_steps and step < config.warmup_steps:
        return float(config.lr) * (step + 1) / config.warmup_steps
    return float(config.lr)


def _starting_point(root: Path, key: str, epochs: int) -> Path | None:
    """The saved state of run ``key`` with the most progress not beyond ``epochs``."""
    best, best_step = None, -1
    folder = run_dir(root, key)
    if not folder.is_dir():
        return None
    for p in folder.glob("*.pt"):
        try:
            prog = torch.load(p, map_location="cpu", weights_only=True)["progress"]
        except Exception:  # a torn or foreign file: ignore it
            _logger.warning("ignoring unreadable checkpoint %s", p)
            continue
        if prog["epoch"] + (1 if prog["step_in_epoch"] else 0) <= epochs \
                and prog["global_step"] > best_step:
            best, best_step = p, prog["global_step"]
    return best


def train_supernet(space: SearchSpace, config: SupernetConfig, *, seed: int = 0,
                   num_classes: int | None = None, artifact_dir: str | os.PathLike[str] | None
                   = None, storage: str | None = None, device: str = "cpu",
                   keep_epochs: Sequence[int] = (), checkpoint_every: int = 20,
                   progress: bool = True, on_step: Callable[[int, float], None] | None = None,
                   split: SplitData | None = None) -> TrainResult:
    """Train (or resume, or find) the supernet of ``config`` on ``space`` and save it.

    Checkpoints go to ``<artifact root>/oneshot/<run key>/e<epochs>.pt`` (see
    :func:`artifact_root`, :func:`run_key`); ``partial-e<epochs>.pt`` beside it holds the
    latest state of this call (every ``checkpoint_every`` steps and at each epoch's end). A
    finished checkpoint is returned without training; otherwise training resumes from the most
    advanced state of the same run (a partial one, or a shorter run's checkpoint). The epochs
    in ``keep_epochs`` are saved as their own checkpoints on the way.

    Ctrl-C (SIGINT) finishes the current step, saves the partial state and raises
    ``KeyboardInterrupt``: run the same call again to continue.

    Args:
        on_step: called after each optimizer step with (global step, loss of the step).
        split: the images (default: ``split_images(config.data, ...)``).
    """
    from zcnas.search.nni import require_nni

    require_nni()
    from zcnas.oneshot._supernet import Supernet

    split = split or split_images(config.data, config.n_images, config.holdout, num_classes)
    classes = int(num_classes or split.num_classes)
    root = artifact_root(artifact_dir, storage)
    key = run_key(space, classes, split.identity, seed, config)
    final = checkpoint_path(root, key, config.epochs)
    if final.is_file():
        state = load_checkpoint(final)
        return TrainResult(final, key, config.epochs, state["cpu_seconds"],
                           state["wall_seconds"], state["history"])
    model = Supernet(space, classes, seed=seed).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=float(config.lr), momentum=config.momentum,
                          nesterov=config.momentum > 0, weight_decay=config.weight_decay)
    meta = {"key": key, "space": space.cache_name, "space_name": space.name,
            "space_params": json.loads(json.dumps(space.get_params(), default=str)),
            "num_classes": classes, "seed": int(seed), "data": split.describe(),
            "data_identity": split.identity, "config": asdict(config),
            "trainer_version": TRAINER_VERSION, "zcnas_version": __version__,
            "torch_version": str(torch.__version__)}
    start = _starting_point(root, key, config.epochs)
    epoch, step_in_epoch, global_step = 0, 0, 0
    cpu_done, wall_done, history = 0.0, 0.0, []
    if start is not None:
        state = load_checkpoint(start)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        prog = state["progress"]
        epoch, step_in_epoch, global_step = prog["epoch"], prog["step_in_epoch"], \
            prog["global_step"]
        cpu_done, wall_done, history = state["cpu_seconds"], state["wall_seconds"], \
            list(state["history"])
        _logger.info("resuming %s from %s (epoch %d, step %d)", key, start.name, epoch,
                     global_step)
    partial = run_dir(root, key) / f"partial-e{config.epochs}.pt"
    run_dir(root, key).mkdir(parents=True, exist_ok=True)
    (run_dir(root, key) / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    train_x, train_y = split.train_x.to(device), split.train_y.to(device)
    per_epoch = len(epoch_batches(len(train_y), config.batch_size, seed, 0))
    total = per_epoch * config.epochs
    cpu0, wall0 = time.process_time(), time.perf_counter()

    def snapshot() -> dict[str, Any]:
        return {"format": FORMAT, "meta": meta, "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "progress": {"epoch": epoch, "step_in_epoch": step_in_epoch,
                             "global_step": global_step},
                "cpu_seconds": cpu_done + time.process_time() - cpu0,
                "wall_seconds": wall_done + time.perf_counter() - wall0, "history": history}

    children_per_step = (2 + config.n_random) if config.sandwich else 1
    bar = tqdm(total=total, initial=global_step, unit="step", disable=not progress,
               desc=f"supernet {space.name} {config.epochs} ep", smoothing=0.1)
    model.train()
    losses: list[float] = []
    with _StopFlag() as stop:
        while epoch < config.epochs:
            batches = epoch_batches(len(train_y), config.batch_size, seed, epoch)
            gen = torch.Generator().manual_seed(int(seed) * 100_003 + epoch)
            for i, idx in enumerate(batches):
                x = train_x[idx]
                if config.augment:
                    x = augment(x.cpu(), gen).to(device)  # same draws as an uninterrupted run
                if i < step_in_epoch:
                    continue
                t_step = time.perf_counter()
                loss = _step(model, opt, x, train_y[idx], config, seed, global_step)
                losses.append(loss)
                global_step += 1
                step_in_epoch = i + 1
                dt = time.perf_counter() - t_step
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}",
                                img_s=f"{children_per_step * len(idx) / max(dt, 1e-9):.0f}")
                if on_step is not None:
                    on_step(global_step, loss)
                if stop.requested:
                    _save(partial, snapshot())
                    bar.close()
                    raise KeyboardInterrupt
                if checkpoint_every and global_step % checkpoint_every == 0:
                    _save(partial, snapshot())
            history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses
                            else None, "cpu_seconds": cpu_done + time.process_time() - cpu0,
                            "wall_seconds": wall_done + time.perf_counter() - wall0})
            losses = []
            epoch, step_in_epoch = epoch + 1, 0
            state = snapshot()
            if epoch in set(keep_epochs) or epoch == config.epochs:
                kept = {**state, "meta": {**meta, "config": {**meta["config"], "epochs": epoch}}}
                _save(checkpoint_path(root, key, epoch), kept)
            if epoch < config.epochs:
                _save(partial, state)
    partial.unlink(missing_ok=True)  # the final checkpoint holds the same state
    bar.close()
    state = load_checkpoint(final)
    return TrainResult(final, key, config.epochs, state["cpu_seconds"], state["wall_seconds"],
                       state["history"], resumed_from=start.name if start else None,
                       trained_now=True)


def _step(model: Supernet, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
          config: SupernetConfig, seed: int, global_step: int) -> float:
    """One optimizer step over the step's children; returns the mean child loss."""
    for group in opt.param_groups:
        group["lr"] = _lr(config, global_step)
    opt.zero_grad(set_to_none=True)
    children = step_children(model, config, seed, global_step)
    teacher: torch.Tensor | None = None
    total = 0.0
    for k, child in enumerate(children):
        model.set_child(child)
        logits = model(x)
        if config.sandwich and k > 0 and config.distill > 0:
            assert teacher is not None
            loss = float(config.distill) * soft_cross_entropy(logits, teacher)
            if config.distill < 1:
                loss = loss + (1 - float(config.distill)) * F.cross_entropy(logits, y)
        else:
            loss = F.cross_entropy(logits, y)
        if config.sandwich and k == 0:
            teacher = F.softmax(logits.detach(), dim=1)
        loss.backward()
        total += float(loss.detach())
    if config.grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), float(config.grad_clip))
    opt.step()
    return total / len(children)


def batch_for(split: SplitData) -> Batch:
    """The held-out images as a zcnas :class:`~zcnas.data.Batch` (e.g. for reports)."""
    return Batch(split.held_x, split.held_y, split.num_classes, f"{split.source}[held-out]")


def describe_checkpoint(state: Mapping[str, Any]) -> str:
    m = state["meta"]
    return (f"supernet {m['key']} ({m['space']}, {state['progress']['epoch']} epochs, "
            f"{state['cpu_seconds']:.0f} CPU s)")
