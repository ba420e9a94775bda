"""``python -m seglib weights vit_b|vit_l|vit_h [--dir DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from seglib.backends.sam_weights import CHECKPOINTS, default_download_dir, download_weights

HELP = (
    "Download an official SAM checkpoint (sha256-checked, resumable). vit_b (375 MB) is "
    "enough for labeling; vit_l is 1.2 GB, vit_h 2.6 GB."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_type", choices=list(CHECKPOINTS), help="which checkpoint")
    p.add_argument(
        "--dir", type=Path, default=None,
        help=f"folder to put it in (default {default_download_dir()}; ./checkpoints also "
             f"works: both are searched by `label --backend auto`)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    ckpt = CHECKPOINTS[args.model_type]
    print(f"{ckpt.filename}: {ckpt.size / 1e6:.0f} MB from {ckpt.url}")
    path = download_weights(args.model_type, args.dir, progress=not args.quiet)
    print(f"ready: {path} (sha256 ok); use it with "
          f"`python -m seglib label PHOTOS --out LABELS --checkpoint {path}`")
    return 0
