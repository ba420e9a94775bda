"""Object IoU of the opencv labeler against audited masks, side by side with plain GrabCut.

    python bench/label_quality.py --truth MASKS [--images DIR] [--labels LABELS ...]

``MASKS`` holds one audited mask per photo, ``<stem>.png``: 0/255 (object white) or a trimap
(1 object, 2 background, 3 border). For each of those photos in ``--images`` (default: the
shared sneaker photos next to the project) this prints the object IoU of

- ``rect90``   : plain GrabCut from a fixed rectangle over 90 % of the frame (5 iterations,
                 at the photo's size): the classical baseline;
- ``labeler``  : the opencv backend's candidates and the ``foreground`` pick;
- ``ceiling``  : the best single candidate (what a perfect policy could reach);
- each ``--labels`` folder: label 1 of its trimaps (e.g. after ``seglib label`` or
  ``seglib refine``),

their means, the labeler minus rect90, and the labeler's CPU seconds per photo.

``--rect90-at X`` also estimates every column's mean on an audited set of easier photos, one on
which plain GrabCut scores ``X``, in two ways: the mean on the largest subset of the photos
(the ones rect90 does best on first) whose rect90 mean is at least ``X``, and a straight-line
fit of the column against rect90 over all photos, read at ``X``, with a 95 % bootstrap
interval.

No audited masks ship with the project (they would be derived from photos it may not carry):
audit your own, e.g. a few dozen photos, and keep a part of them aside from any tuning.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from seglib.backends.opencv import propose
from seglib.core.images import list_images, read_image
from seglib.masks.metrics import mask_iou
from seglib.masks.policy import pick
from seglib.masks.shapes import grabcut

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "shoes" / "images"


def load_truth(path: Path) -> np.ndarray:
    """An audited mask: 0/255 (object white) or a trimap (object 1)."""
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise SystemExit(f"{path}: not a readable PNG mask")
    return m == 1 if set(np.unique(m)) <= {1, 2, 3} else m > 127


def rect90(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return grabcut(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                   rect=(int(0.05 * w), int(0.05 * h), int(0.9 * w), int(0.9 * h)), iters=5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    ap.add_argument("--labels", type=Path, nargs="*", default=[])
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per photo")
    ap.add_argument("--rect90-at", type=float, metavar="X",
                    help="also estimate the means on photos where rect90 scores X: on the "
                         "largest subset whose rect90 mean is >= X, and by a line fit")
    args = ap.parse_args()
    photos = {p.stem: p for p in list_images(args.images)}
    stems = sorted(p.stem for p in args.truth.glob("*.png") if p.stem in photos)
    if not stems:
        raise SystemExit(f"{args.truth}: no <stem>.png mask matches a photo in {args.images}")
    cols = ["rect90", "labeler", "ceiling", *(d.name for d in args.labels)]
    scores: dict[str, list[float]] = {c: [] for c in cols}
    seconds = []
    for stem in stems:
        rgb, truth = read_image(photos[stem]), load_truth(args.truth / f"{stem}.png")
        t0 = time.process_time()
        cands = propose(rgb)
        chosen = pick(cands).mask
        seconds.append(time.process_time() - t0)
        row = {"rect90": mask_iou(rect90(rgb), truth), "labeler": mask_iou(chosen, truth),
               "ceiling": max((mask_iou(m, truth) for m in cands.masks), default=0.0)}
        for d in args.labels:
            f = d / f"{stem}.png"
            tri = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) if f.is_file() else None
            row[d.name] = mask_iou(tri == 1, truth) if tri is not None else 0.0
        for c in cols:
            scores[c].append(row[c])
        if args.verbose:
            print(f"{stem:24s} " + " ".join(f"{c} {row[c]:.3f}" for c in cols))
    print(f"{len(stems)} audited photos from {args.truth}")
    print(" | ".join(f"{c} {np.mean(v):.4f}" for c, v in scores.items()))
    gain = np.mean(scores["labeler"]) - np.mean(scores["rect90"])
    print(f"labeler - rect90 = {gain:+.4f}; labeler {np.mean(seconds):.3f} s CPU per photo")
    if args.rect90_at is not None:
        keep = easiest_subset(scores["rect90"], args.rect90_at)
        if not keep:
            print(f"no photo has rect90 >= {args.rect90_at}")
            return
        print(f"{len(keep)} photos where rect90 does best, rect90 mean >= {args.rect90_at}: "
              + " | ".join(f"{c} {np.mean([v[i] for i in keep]):.4f}" for c, v in scores.items()))
        print(f"line fit against rect90, read at {args.rect90_at} (95 % bootstrap interval):")
        for c, v in scores.items():
            if c != "rect90":
                est, lo, hi = fit_at(scores["rect90"], v, args.rect90_at)
                print(f"  {c:12s} {est:.4f} ({lo:.3f} .. {hi:.3f})")


def easiest_subset(rect90_scores: list[float], at: float) -> list[int]:
    """Indices of the largest subset, highest rect90 first, whose mean rect90 is >= ``at``."""
    order = np.argsort(rect90_scores, kind="stable")[::-1]
    means = np.cumsum(np.asarray(rect90_scores)[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(means >= at)
    return sorted(order[: ok[-1] + 1].tolist()) if len(ok) else []


def fit_at(x: list[float], y: list[float], at: float, boot: int = 2000, seed: int = 0
           ) -> tuple[float, float, float]:
    """Least-squares line of ``y`` on ``x`` read at ``x = at``, and the 2.5 / 97.5 percentiles
    of the same over ``boot`` bootstrap resamples of the photos."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def read(idx: np.ndarray) -> float:
        if np.ptp(xs[idx]) == 0:  # a resample with one rect90 value: no slope to fit
            return float(ys[idx].mean())
        slope, icpt = np.polyfit(xs[idx], ys[idx], 1)
        return float(icpt + slope * at)

    rng = np.random.default_rng(seed)
    reads = [read(rng.integers(0, len(xs), len(xs))) for _ in range(boot)]
    est = read(np.arange(len(xs)))
    return est, float(np.quantile(reads, 0.025)), float(np.quantile(reads, 0.975))


if __name__ == "__main__":
    main()
