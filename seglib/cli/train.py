"""``python -m seglib train IMAGES TRIMAPS --out RUN [options]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from seglib.cli import options
from seglib.core.errors import SeglibError
from seglib.training.presets import PRESETS

HELP = ("Train a segmentation CNN on photos + trimaps; writes RUN/best.pt, last.pt, "
        "history.csv, metrics.json.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", type=Path, help="folder of photos")
    p.add_argument("trimaps", type=Path, help="folder of trimap PNGs (same file stems)")
    p.add_argument("--out", type=Path, required=True, help="run folder to write")
    p.add_argument("--n", type=int, default=None,
                   help="train on the first N training photos after the fixed validation split")
    p.add_argument("--standard", action="store_true",
                   help="train the five standard models (10, 161, 207, 711, 711B) into "
                        "OUT/model_<name>")
    p.add_argument("--no-shuffle", action="store_true",
                   help="keep one fixed batch order (the '711B' model)")
    p.add_argument("--arch", choices=("unet", "seed"), default=None,
                   help="model (default: the preset's; unet for smoke/demo/quick)")
    p.add_argument("--size", type=int, default=None, help="training size in pixels (square)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the preset's)")
    p.add_argument("--batch", type=int, default=None, help="batch size")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--preset", choices=list(PRESETS), default="quick",
                   help="smoke (seconds), demo (sample), quick (CPU, default), full (GPU)")
    p.add_argument("--seed", type=int, default=1337, help="random seed (default 1337)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--no-amp", action="store_true", help="plain fp32 (no bf16/fp16 autocast)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from RUN/last.pt")
    options.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from seglib.training.loop import train_run, train_standard

    common = dict(preset=args.preset, arch=args.arch, size=args.size, epochs=args.epochs,
                  batch=args.batch, lr=args.lr, seed=args.seed, device=args.device,
                  amp=not args.no_amp)
    spread = options.options(args)
    if not args.standard and (args.engine != "local" or args.workers is not None):
        raise SeglibError("--engine and --workers spread the five standard models over "
                          "workers; add --standard (one model trains in one process)")
    if args.standard:
        results = train_standard(args.images, args.trimaps, args.out, **common, **spread)
        for name, r in results.items():
            print(f"model_{name}: n_train {r.n_train}, iou_object "
                  f"{_fmt(r.metrics.get('iou_object'))}, mean_iou "
                  f"{_fmt(r.metrics.get('mean_iou'))}, {r.seconds:.0f} s")
        print(f"wrote {args.out}/summary.csv")
        return 0
    r = train_run(args.images, args.trimaps, args.out, n=args.n, shuffle=not args.no_shuffle,
                  resume=args.resume, **common)
    print(json.dumps({k: r.metrics.get(k) for k in
                      ("val_loss", "pixel_accuracy", "mean_iou", "iou_object", "epoch",
                       "n_train", "n_val", "train_seconds")}))
    print(f"wrote {r.best} ({r.n_train} training photos, {r.n_val} validation)")
    return 0


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"
