"""``python -m seglib weights NAME [--dir DIR]``: SAM (vit_b/l/h), SAM 2.1, EdgeTAM, SlimSAM."""

from __future__ import annotations

import argparse
from pathlib import Path

from seglib.backends import hf_weights
from seglib.backends.sam_weights import CHECKPOINTS, default_download_dir, download_weights
from seglib.core.files import file_sha256

HELP = (
    "Download a checkpoint (resumable, checked). SAM: vit_b (375 MB) is enough for labeling, "
    "vit_l 1.2 GB, vit_h 2.6 GB (sha256-checked); SAM 2.1: sam2.1_tiny (~156 MB) ... "
    "sam2.1_large (~898 MB); EdgeTAM: edgetam (~40 MB, the fastest on a CPU); SlimSAM: "
    "slimsam_77 (~38 MB) (checked by their safetensors "
    "header and config)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_type", choices=[*CHECKPOINTS, *hf_weights.CHECKPOINTS],
                   help="which checkpoint")
    p.add_argument(
        "--dir", type=Path, default=None,
        help=f"folder to put it in (default {default_download_dir()}; ./checkpoints also "
             f"works: both are searched by `label --backend auto`)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.model_type in hf_weights.CHECKPOINTS:
        return _run_hf(args)
    ckpt = CHECKPOINTS[args.model_type]
    print(f"{ckpt.filename}: {ckpt.size / 1e6:.0f} MB from {ckpt.url}")
    path = download_weights(args.model_type, args.dir, progress=not args.quiet)
    print(f"ready: {path} (sha256 ok); use it with "
          f"`python -m seglib label PHOTOS --out LABELS --checkpoint {path}`")
    return 0


def _run_hf(args: argparse.Namespace, base: str | None = None) -> int:
    ckpt = hf_weights.CHECKPOINTS[args.model_type]
    print(f"{ckpt.folder}: about {ckpt.megabytes} MB ({', '.join(hf_weights.FILES)}) from "
          f"{ckpt.url('', base)}")
    folder = hf_weights.download(args.model_type, args.dir, base=base,
                                 progress=not args.quiet)
    sha = file_sha256(folder / "model.safetensors")
    backend = hf_weights.BACKEND_OF[ckpt.family]
    print(f"ready: {folder} (complete; model.safetensors sha256 {sha}); use it with "
          f"`python -m seglib label PHOTOS --out LABELS --backend {backend} "
          f"--checkpoint {folder}`")
    return 0
