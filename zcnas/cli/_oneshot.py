"""``zcnas oneshot train`` (:func:`zcnas.oneshot.train_supernet`): train, resume or find a
weight-sharing supernet. Its children are then scored by name like any proxy:
``zcnas score --proxy oneshot --proxy-params '{"epochs": 10}'``."""

from __future__ import annotations

import argparse
import json

from zcnas.cli._common import Formatter
from zcnas.cli._common import add_json_arg
from zcnas.cli._common import add_progress_arg
from zcnas.cli._common import add_run_args
from zcnas.cli._common import add_space_arg
from zcnas.cli._common import add_threads_arg
from zcnas.cli._common import positive
from zcnas.cli._common import split_names
from zcnas.exceptions import ZcnasError


def _train(args: argparse.Namespace) -> int:
    import torch

    from zcnas.oneshot import SupernetConfig
    from zcnas.oneshot import train_supernet
    from zcnas.spaces import get_space

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        keep = [int(k) for k in split_names(args.keep_epochs)]
    except ValueError:
        raise ZcnasError(f"--keep-epochs must be comma-separated integers, e.g. 1,3; got "
                         f"{args.keep_epochs!r}") from None
    config = SupernetConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
        grad_clip=args.grad_clip or None, sandwich=not args.spos, n_random=args.n_random,
        distill=args.distill, augment=not args.no_augment, data=args.data,
        n_images=args.n_images, holdout=args.holdout)
    result = train_supernet(get_space(args.space), config, seed=args.seed,
                            num_classes=args.num_classes, artifact_dir=args.artifact_dir,
                            storage=args.storage, device=args.device, keep_epochs=keep,
                            progress=not args.no_progress)
    summary = {"checkpoint": str(result.path), "key": result.key, "epochs": result.epochs,
               "cpu_seconds": result.cpu_seconds, "wall_seconds": result.wall_seconds,
               "trained_now": result.trained_now, "resumed_from": result.resumed_from,
               "final_loss": result.history[-1]["loss"] if result.history else None}
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    state = "trained" if result.trained_now else "already trained"
    resumed = f", resumed from {result.resumed_from}" if result.resumed_from else ""
    print(f"{state}: {result.path} ({result.epochs} epochs, {result.cpu_seconds:.0f} CPU s"
          f"{resumed})")
    params = {"epochs": args.epochs}
    print(f"score children with: zcnas score --proxy oneshot --seed {args.seed} "
          f"--proxy-params '{json.dumps(params)}' (plus any non-default training settings)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("oneshot", formatter_class=Formatter,
                       help="weight-sharing supernet (zcnas.oneshot): `zcnas oneshot train`")
    osub = p.add_subparsers(dest="oneshot_command", metavar="SUBCOMMAND")
    t = osub.add_parser("train", formatter_class=Formatter,
                        help="train (or resume after Ctrl-C) a supernet; "
                             "zcnas.oneshot.train_supernet")
    add_space_arg(t)
    t.add_argument("--epochs", type=positive, required=True, help="passes over the training part")
    t.add_argument("--keep-epochs", default="",
                   help="also keep these epochs' checkpoints, e.g. 1,3 (constant learning rate: "
                        "each is the supernet of that training length)")
    t.add_argument("--batch-size", type=positive, default=64, help="images per training step")
    t.add_argument("--lr", type=float, default=0.05)
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--warmup-steps", type=int, default=20)
    t.add_argument("--grad-clip", type=float, default=5.0, help="max gradient norm (0: off)")
    t.add_argument("--spos", action="store_true",
                   help="one uniformly random child per step (SPOS) instead of the sandwich rule")
    t.add_argument("--n-random", type=int, default=2, help="random children per sandwich step")
    t.add_argument("--distill", type=float, default=1.0,
                   help="weight of in-place distillation from the largest child (0..1)")
    t.add_argument("--no-augment", action="store_true", help="no random crop / flip")
    t.add_argument("--data", default="cifar10",
                   help="image set: cifar10 (shared sample), synthetic, npz:<file>, folder:<dir>")
    t.add_argument("--n-images", type=positive, default=2000, help="images of --data used")
    t.add_argument("--holdout", type=positive, default=500, help="held-out images (stratified)")
    t.add_argument("--num-classes", type=positive, default=None,
                   help="classifier width (default: the data's classes)")
    t.add_argument("--artifact-dir", default=None,
                   help="checkpoint folder (default: $ZCNAS_ARTIFACT_DIR, else zcnas_artifacts "
                        "beside the SQLite database of --storage)")
    add_run_args(t, cache=False)
    add_threads_arg(t)
    add_progress_arg(t)
    add_json_arg(t)
    t.set_defaults(func=_train)
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])
