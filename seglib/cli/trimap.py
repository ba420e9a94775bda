"""``python -m seglib trimap MASKS_DIR --out TRIMAPS_DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from seglib.core.errors import SeglibError
from seglib.core.folders import keep_existing, mark_folder, refuse_output
from seglib.core.images import decode_image, scan_images
from seglib.masks.trimap import mask_to_trimap, save_trimap

HELP = "Convert a folder of binary masks (0/255 or 0/1 PNG) to trimaps (1 object, 2 bg, 3 border)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("masks", type=Path, help="folder of mask PNGs (object > 0)")
    p.add_argument("--out", type=Path, required=True, help="folder for the trimap PNGs")
    p.add_argument("--width", type=int, default=1, help="border width in pixels (default 1)")
    p.add_argument("--overwrite", action="store_true", help="redo trimaps that already exist")


MAX_COLOUR = 0.005  # share of pixels whose channels differ by more than COLOUR_STEP
COLOUR_STEP = 24
MAX_MID_GREY = 0.002  # share of pixels between 1/4 and 3/4 of the brightest value


class NotAMaskError(SeglibError):
    """A readable image that is not a binary mask (e.g. a photo)."""


def read_mask(path: Path) -> np.ndarray:
    """A mask file as bool H×W: pixels brighter than half the brightest value are object
    (any non-zero pixel of a 0/1 or 0/255 mask).

    A mask is grey with two levels (JPEG noise near them is fine); a photo or a grey-level
    image raises :class:`NotAMaskError` (its trimap would be meaningless). Of 873 sneaker
    photos none passes as a mask; JPEG-saved masks (quality 75) all do.
    """
    data = np.fromfile(path, dtype=np.uint8)
    m = decode_image(data, path, cv2.IMREAD_UNCHANGED) if data.size else None
    if m is None:
        raise SeglibError(f"{path}: not a readable mask image; delete or replace it")
    m = m.astype(np.int32)
    if m.ndim == 3:
        c = m[..., :3]
        if np.mean(np.abs(c - c[..., :1]).max(axis=2) > COLOUR_STEP) > MAX_COLOUR:
            raise NotAMaskError(f"{path}: a colour image, not a binary mask (0/255 or 0/1); "
                                "masks come from a labeling tool, photos go to `label`")
        m = c.max(axis=2)
    top = int(m.max())
    if np.mean((m * 4 > top) & (m * 4 < 3 * top)) > MAX_MID_GREY:
        raise NotAMaskError(f"{path}: {len(np.unique(m))} grey levels, not a binary mask "
                            "(0/255 or 0/1); masks come from a labeling tool, photos go to "
                            "`label`")
    return m * 2 > top


def run(args: argparse.Namespace) -> int:
    scan = scan_images(args.masks)
    masks = scan.photos
    if not masks:
        raise SeglibError(f"{args.masks}: no .png/.jpg masks found")
    refuse_output(args.out, inputs=[args.masks], allow="trimaps",
                  writes=[f"{m.stem}.png" for m in masks] if args.overwrite else [])
    mark_folder(args.out, "trimaps")
    for line in scan.skipped_lines():
        tqdm.write(line, file=sys.stderr)
    done = skipped = 0
    not_masks: list[str] = []
    todo, _ = keep_existing(args.out, masks, overwrite=args.overwrite)
    for path in tqdm(todo, desc="trimaps", unit="mask"):
        out = args.out / f"{path.stem}.png"
        try:
            save_trimap(out, mask_to_trimap(read_mask(path), width=args.width))
            done += 1
        except NotAMaskError as exc:  # said after the loop, or one error when all are
            skipped += 1
            not_masks.append(f"skipped {path.name}: {exc}")
        except (SeglibError, ValueError) as exc:
            skipped += 1
            tqdm.write(f"skipped {path.name}: {exc}", file=sys.stderr)
    if not done and len(not_masks) == len(masks):
        raise SeglibError(f"{args.masks}: none of the {len(masks)} images is a binary mask "
                          "(0/255 or 0/1); for a folder of photos run `python -m seglib label`")
    for line in not_masks:
        print(line, file=sys.stderr)
    print(f"wrote {done} trimaps to {args.out} ({skipped} skipped)")
    return 0 if done or not skipped else 1
