"""``python -m seglib refine IMAGES_DIR --out OUT_DIR``: self-training pass over the labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from seglib.cli import options

HELP = ("Refine a labeled folder: train a small CNN on its confident labels, then redraw every "
        "label by a vote of the pick, the CNN and GrabCuts seeded by them (keeps the "
        "candidates); twice by default.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", type=Path, help="folder of photos that was labeled")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder of `python -m seglib label` (trimaps, labels.csv)")
    p.add_argument("--rounds", type=int, default=2,
                   help="refinement rounds, each training a CNN on the labels so far (2)")
    p.add_argument("--size", type=int,
                   help="CNN input side in pixels (default 96: seglib.refine.rounds.SIZE)")
    p.add_argument("--epochs", type=int,
                   help="training epochs (default: about 6000 photo views, 10..200 epochs)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--retrain", action="store_true",
                   help="train the CNN again even if OUT/refine_model holds one")
    options.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from seglib.refine.rounds import refine_labels

    size = {"size": args.size} if args.size else {}
    summary = refine_labels(args.images, args.out, rounds=args.rounds, epochs=args.epochs,
                            **size,
                            device=args.device, retrain=args.retrain,
                            **options.options(args))
    print(summary.describe())
    return 0
