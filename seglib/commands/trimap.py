"""``python -m seglib trimap MASKS_DIR --out TRIMAPS_DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from seglib.errors import SeglibError
from seglib.io import list_images
from seglib.trimap import mask_to_trimap, save_trimap

HELP = "Convert a folder of binary masks (0/255 or 0/1 PNG) to trimaps (1 object, 2 bg, 3 border)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("masks", type=Path, help="folder of mask PNGs (object > 0)")
    p.add_argument("--out", type=Path, required=True, help="folder for the trimap PNGs")
    p.add_argument("--width", type=int, default=1, help="border width in pixels (default 1)")
    p.add_argument("--overwrite", action="store_true", help="redo trimaps that already exist")


def read_mask(path: Path) -> np.ndarray:
    """A mask file as bool H×W: any non-zero pixel (of any channel) is object."""
    data = np.fromfile(path, dtype=np.uint8)
    m = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if m is None:
        raise SeglibError(f"{path}: not a readable mask image; delete or replace it")
    if m.ndim == 3:
        m = m[..., :3].max(axis=2)
    return m > 0


def run(args: argparse.Namespace) -> int:
    if args.out.resolve() == args.masks.resolve():
        raise SeglibError(f"{args.out}: is the mask folder; the trimaps would replace the masks, "
                          "choose another --out")
    masks = list_images(args.masks)
    if not masks:
        raise SeglibError(f"{args.masks}: no .png/.jpg masks found")
    done = skipped = 0
    for path in tqdm(masks, desc="trimaps", unit="mask"):
        out = args.out / f"{path.stem}.png"
        if out.exists() and not args.overwrite:
            continue
        try:
            save_trimap(out, mask_to_trimap(read_mask(path), width=args.width))
            done += 1
        except (SeglibError, ValueError) as exc:
            skipped += 1
            tqdm.write(f"skipped {path.name}: {exc}", file=sys.stderr)
    print(f"wrote {done} trimaps to {args.out} ({skipped} skipped)")
    return 0 if done or not skipped else 1
