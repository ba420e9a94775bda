"""Seconds per photo of each labeling path, measured side by side in one run.

    python bench/label.py [--images DIR] [--n 3] [--points-per-side 32] [--threads N]

Paths, each photo -> candidates -> pick -> trimap:

- original : SAM ViT-B, everything mode (SamAutomaticMaskGenerator), fp32, ``seed`` policy
- default  : SAM ViT-B, prompt mode (encode once, 7 prompts), bf16 autocast where the CPU
             has native bf16, ``foreground`` policy
- opencv   : the classical backend (no checkpoint), ``foreground`` policy
- re-pick  : load the default path's cached candidates (.npz) and pick again, no model

The ViT-B has random weights (no checkpoint is needed): speed does not depend on the weights,
except that with random weights SAM's own quality filters drop most everything-mode masks
before their run-length encoding and duplicate removal, so the original path's time here is a
lower bound and the printed ratio is conservative. Photos are processed in turn by every path,
so a busy machine slows all paths alike. Prints the ratio original / default (target >= 10x).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from seglib.backends.sam import SamProposer
from seglib.core.images import list_images, read_image
from seglib.masks.candidates import Candidates
from seglib.masks.policy import pick
from seglib.masks.trimap import mask_to_trimap

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "shoes" / "images"


def spread(items: list[Path], n: int) -> list[Path]:
    """``n`` items spread evenly over the sorted list (deterministic)."""
    if n >= len(items):
        return items
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES,
                    help=f"folder of photos (default {DEFAULT_IMAGES})")
    ap.add_argument("--n", type=int, default=3, help="photos to time (default 3)")
    ap.add_argument("--points-per-side", type=int, default=32,
                    help="grid of the original everything mode (default 32, as the original)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = ap.parse_args()

    if not args.images.is_dir() or not list_images(args.images):
        print(f"skipped: no photos at {args.images} (pass --images DIR)")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    from segment_anything import sam_model_registry

    try:
        from seglib.backends.opencv import propose as opencv_propose
    except ImportError:  # pragma: no cover - the backend ships with seglib
        opencv_propose = None

    photos = spread(list_images(args.images), args.n)
    torch.manual_seed(0)
    model = sam_model_registry["vit_b"](checkpoint=None)
    original = SamProposer(model, mode="everything", points_per_side=args.points_per_side,
                           autocast=False, device="cpu")
    default = SamProposer(model, mode="prompt", autocast=True, device="cpu")
    pps = args.points_per_side
    print(f"{len(photos)} photos from {args.images}; SAM ViT-B with random weights on cpu, "
          f"{torch.get_num_threads()} threads")
    print(f"original: everything mode, points_per_side={pps} ({3 * pps * pps} masks decoded "
          f"and upsampled per photo), fp32, seed policy")
    print(f"default : prompt mode (28 masks), {default.precision}, foreground policy")

    # Warm-up, not timed: first calls pay one-off kernel set-up (bf16 especially).
    warm = read_image(photos[0])
    with torch.inference_mode():
        original.predictor.set_image(warm)
    default(warm)
    if opencv_propose is not None:
        opencv_propose(warm)

    rows: dict[str, list[float]] = {"original": [], "default": [], "opencv": [], "re-pick": []}
    split: dict[str, list[tuple[float, float]]] = {"original": [], "default": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(photos):
            img = read_image(path)

            def run_sam(proposer: SamProposer, policy: str, img: np.ndarray = img):
                cands = proposer(img)
                return cands, mask_to_trimap(pick(cands, policy).mask)

            (c_orig, _), s = timed(run_sam, original, "seed")
            rows["original"].append(s)
            split["original"].append((original.encode_seconds, original.decode_seconds))

            (c_def, _), s = timed(run_sam, default, "foreground")
            rows["default"].append(s)
            split["default"].append((default.encode_seconds, default.decode_seconds))
            cache = Path(tmp) / f"{path.stem}.npz"
            c_def.save(cache)

            if opencv_propose is not None:
                _, s = timed(lambda im=img: mask_to_trimap(pick(opencv_propose(im)).mask))
                rows["opencv"].append(s)

            _, s = timed(lambda c=cache: mask_to_trimap(pick(Candidates.load(c)).mask))
            rows["re-pick"].append(s)
            print(f"  [{i + 1}/{len(photos)}] {path.name}: original {rows['original'][-1]:.1f} s "
                  f"({len(c_orig)} kept), default {rows['default'][-1]:.2f} s "
                  f"({len(c_def)} candidates)", flush=True)

    print()
    print("| path | seconds per photo | SAM encoder | SAM decoder + masks |")
    print("|---|---:|---:|---:|")
    for name, times in rows.items():
        if not times:
            print(f"| {name} | skipped (backend not available) | | |")
            continue
        mean = float(np.mean(times))
        enc = dec = ""
        if name in split:
            e, d = np.mean(split[name], axis=0)
            enc, dec = f"{e:.2f}", f"{d:.2f}"
        print(f"| {name} | {mean:.3f} | {enc} | {dec} |")
    ratio = float(np.mean(rows["original"]) / np.mean(rows["default"]))
    verdict = "ok" if ratio >= 10 else "BELOW TARGET"
    print(f"\nratio original / default: {ratio:.1f}x (target >= 10x: {verdict}); "
          f"original with points_per_side={pps}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
