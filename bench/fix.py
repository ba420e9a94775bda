"""Fixing a wrong label with prompts: object IoU after a click / a box / box + 2 clicks, and
seconds per click.

    SEGLIB_PRECISION=fp32 python bench/fix.py [--shoes /work/shared/shoes/images] [--photos 1]
                                              [--no-sam]

(a) Quality, on the embedded synthetic sample (data/sample: true masks): the labels the
``seed`` policy picks from the opencv backend's candidates with object IoU < 0.8 against the
true mask. For each: the opencv prompter after 1 positive click (the true mask's interior
point farthest from its border), 1 box (the true mask's bounding box, padded 2 px), box + 2
clicks (that positive click and a negative click inside the largest region the box alone got
wrong, or a positive one there when it missed object), beside plain ``cv2.grabCut`` seeded by
the same box (5 iterations, GC_INIT_WITH_RECT) and the prompter without its component step.
(b) Latency: seconds from a click to the mask on ``--photos`` shared shoe photos (default 1;
skipped when absent) and on a 1024 x 768 photo: opencv; random-weight SAM ViT-B, SAM 2.1-tiny
and EdgeTAM (the real architectures; speed does not depend on the weights): the first call on
a photo (with its embedding) and later clicks (decoder only), median (and slowest) of 5. The
default run takes 2-3 minutes on a 2-core CPU: random SAM ViT-B encodes each photo in
25-45 s there, so each more photo adds ~1 minute.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from seglib.backends.opencv import propose  # noqa: E402
from seglib.backends.prompts import OpencvPrompter, Prompts  # noqa: E402
from seglib.core.images import read_image  # noqa: E402
from seglib.masks.policy import pick  # noqa: E402

SAMPLE = ROOT / "data" / "sample"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def deepest(mask: np.ndarray) -> tuple[float, float]:
    """The point of ``mask`` farthest from its border (x, y)."""
    d = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(d.argmax()), d.shape)
    return float(x), float(y)


def box_of(mask: np.ndarray, pad: int = 2) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return (max(xs.min() - pad, 0), max(ys.min() - pad, 0), min(xs.max() + 1 + pad, w),
            min(ys.max() + 1 + pad, h))


def largest_error(got: np.ndarray, truth: np.ndarray) -> tuple[tuple[float, float], bool]:
    """The deepest point of the largest wrong region and whether it is object (missed)."""
    best, where, missed = 0, (0.0, 0.0), False
    for region, is_obj in ((got & ~truth, False), (truth & ~got, True)):
        n, lab, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8))
        if n > 1:
            k = 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())
            if stats[k, cv2.CC_STAT_AREA] > best:
                best, where, missed = stats[k, cv2.CC_STAT_AREA], deepest(lab == k), is_obj
    return where, missed


def plain_grabcut(rgb: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
    x0, y0, x1, y1 = (int(v) for v in box)
    gc = np.zeros(rgb.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)
    cv2.grabCut(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), gc, (x0, y0, x1 - x0, y1 - y0), bgd, fgd,
                5, cv2.GC_INIT_WITH_RECT)
    return (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)


def quality() -> None:
    ours, bare = OpencvPrompter(), OpencvPrompter(keep_components=False)
    rows = []
    for path in sorted((SAMPLE / "images").glob("*.jpg")):
        rgb = read_image(path)
        truth = cv2.imread(str(SAMPLE / "masks" / f"{path.stem}.png"), 0) > 0
        before = iou(pick(propose(rgb), "seed").mask, truth)
        if before >= 0.8:
            continue
        click, box = deepest(truth), box_of(truth)
        ours.set_photo(rgb)
        bare.set_photo(rgb)
        boxed = ours.mask(Prompts(box=box))
        where, missed = largest_error(boxed, truth)
        two = Prompts(positive=[click, where] if missed else [click],
                      negative=[] if missed else [where], box=box)
        rows.append((before, iou(ours.mask(Prompts(positive=[click])), truth),
                     iou(boxed, truth), iou(ours.mask(two), truth),
                     iou(plain_grabcut(rgb, box), truth),
                     iou(bare.mask(Prompts(box=box)), truth)))
    a = np.array(rows)
    print(f"(a) sample: {len(rows)} of 48 seed-policy labels with IoU < 0.8 (mean object IoU)")
    names = ("seed label", "1 click", "1 box", "box + 2 clicks", "plain grabCut, same box",
             "1 box, no component step")
    for name, col in zip(names, a.T, strict=True):
        print(f"    {name:<26} {col.mean():.3f}   (min {col.min():.3f})")
    print(f"    box below plain grabCut (by > 0.01) on {int((a[:, 2] < a[:, 4] - 0.01).sum())}"
          f" of {len(rows)}")


def clicks(prompter, rgb: np.ndarray, n: int = 5) -> tuple[float, float, float]:  # noqa: ANN001
    """Seconds of the first call on the photo (with set_photo), the median and the slowest
    later click."""
    h, w = rgb.shape[:2]
    t = time.perf_counter()
    prompter.set_photo(rgb)
    prompter.mask(Prompts(box=(0.2 * w, 0.2 * h, 0.8 * w, 0.8 * h)))
    first = time.perf_counter() - t
    later = []
    for i in range(n):
        p = Prompts(positive=[(w * (0.4 + 0.04 * i), h / 2)], negative=[(3, 3)],
                    box=(0.2 * w, 0.2 * h, 0.8 * w, 0.8 * h))
        t = time.perf_counter()
        prompter.set_photo(rgb)  # the widget tells the photo on every click: cached
        prompter.mask(p)
        later.append(time.perf_counter() - t)
    return first, statistics.median(later), max(later)


def sam_prompters() -> dict:
    import torch
    from sam_backends import build
    from segment_anything import sam_model_registry

    from seglib.backends.sam import SamProposer
    from seglib.backends.sam_prompter import HfSamPrompter, SamPrompter

    torch.manual_seed(0)
    out = {"SAM ViT-B (random)": lambda: SamPrompter(
        SamProposer(sam_model_registry["vit_b"](checkpoint=None), device="cpu"))}
    for name in ("sam2.1_tiny", "edgetam"):
        out[f"{name} (random)"] = (lambda n=name: HfSamPrompter(build(n, "prompt", 32)))
    return out


def latency(shoes: Path, n_photos: int, with_sam: bool) -> None:
    photos = sorted(shoes.glob("*.jpg"))[:n_photos] if shoes.is_dir() else []
    big = cv2.resize(read_image(photos[0] if photos else SAMPLE / "images" / "sample_000.jpg"),
                     (1024, 768), interpolation=cv2.INTER_CUBIC)
    print(f"(b) seconds per click (first call on a photo with its embedding / later clicks, "
          f"median of 5, slowest in brackets); shoe photos: {len(photos) or 'absent'}")
    makers = {"opencv grabcut": OpencvPrompter}
    if with_sam:
        makers.update(sam_prompters())
    for name, make in makers.items():
        prompter = make()
        shown = []
        if photos:
            runs = [clicks(prompter, read_image(p)) for p in photos]
            shown.append(f"shoes {photos and read_image(photos[0]).shape[1]} px: first "
                         f"{statistics.median(r[0] for r in runs):.3f}, later "
                         f"{statistics.median(r[1] for r in runs):.3f} "
                         f"({max(r[2] for r in runs):.3f})")
        f, later, slowest = clicks(prompter, big)
        shown.append(f"1024x768: first {f:.3f}, later {later:.3f} ({slowest:.3f})")
        print(f"    {name:<22} {'; '.join(shown)}  [{prompter.description}]")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shoes", type=Path, default=Path("/work/shared/shoes/images"))
    p.add_argument("--photos", type=int, default=1,
                   help="shoe photos to time each prompter on, beside the 1024 x 768 one "
                        "(default 1: random SAM ViT-B encodes each in 25-45 s on 2 cores)")
    p.add_argument("--no-sam", action="store_true", help="time the opencv prompter only")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from sam_backends import cpu_name

    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores, {torch.get_num_threads()} torch "
          f"threads), SEGLIB_PRECISION={os.environ.get('SEGLIB_PRECISION', '(unset)')}, "
          f"python {platform.python_version()}, opencv {cv2.__version__}")
    t = time.perf_counter()
    quality()
    latency(args.shoes, max(0, args.photos), not args.no_sam)
    print(f"({time.perf_counter() - t:.0f} s in all)")


if __name__ == "__main__":
    main()
