"""``python -m seglib predict RUN/best.pt IMAGES --out PRED [--overlays]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from seglib.cli import options

HELP = "Predict trimaps (labels 1/2/3, each photo's own size) for a folder of photos."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="RUN/best.pt from 'python -m seglib train'")
    p.add_argument("images", type=Path, help="folder of photos")
    p.add_argument("--out", type=Path, required=True, help="folder for the predicted trimaps")
    p.add_argument("--overlays", action="store_true",
                   help="also write OUT/overlays/<stem>.png (object green, border red)")
    p.add_argument("--raw", action="store_true",
                   help="keep the raw most likely class per pixel instead of redrawing the "
                        "one-pixel border around the predicted object")
    p.add_argument("--overwrite", action="store_true",
                   help="redo trimaps that already exist in --out (by default a rerun keeps "
                        "them: one may have been corrected by hand)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    options.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from seglib.training.predict import predict_folder

    written, skipped, kept = predict_folder(
        args.checkpoint, args.images, args.out, overlays=args.overlays, clean=not args.raw,
        device=args.device, overwrite=args.overwrite, **options.options(args))
    more = (f", kept {kept} that exist (perhaps corrected by hand; --overwrite redoes them)"
            if kept else "")
    print(f"wrote {written} trimaps to {args.out} ({len(skipped)} skipped{more})")
    return 0 if written or kept else 1
