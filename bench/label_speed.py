"""The labeler and the refinement votes, the old path and the new, side by side (issue 24).

    python bench/label_speed.py [--images DIR] [--n 120] [--model RUN/best.pt]

Each of ``n`` shared photos (spread over the folder) goes through both paths in turn, so a busy
machine slows both alike:

- labeler: the opencv backend's candidates and the ``foreground`` pick, the old path
  (``propose(polish_crop=False)``: the refined pick polished on the whole photo) against the
  new (``polish_crop=True``, the default: on the band's bounding box);
- votes: one refinement vote per photo (:func:`seglib.refine.views.refine_photo` on the new
  path's candidates and pick), old path ``grabcut_side=None, polish_crop=False`` (the GrabCut
  views and the polish at the photo's size) against the defaults (views at 160 px). The
  network is ``--model`` (a refinement run's ``best.pt``); without one the votes are skipped.

Prints each path's ms per photo, the ratio old / new, the mean Jaccard distance
``1 - IoU(new, old)`` of the object masks (a bound on how far the labels' IoU against any true
mask can move), the share of photos whose picked candidate changed, and the CPU. Torch and
OpenCV run one thread (as the label and refine workers do).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from seglib.backends.opencv import propose
from seglib.core.images import list_images, read_image
from seglib.masks.policy import pick
from seglib.masks.trimap import mask_to_trimap, save_trimap

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "shoes" / "images"
VOTE_PATHS = {"old": dict(grabcut_side=None, polish_crop=False),
              "new": dict(grabcut_side=160, polish_crop=True)}


def cpu_name() -> str:
    """The CPU's model name (lscpu's, from /proc/cpuinfo), else the platform's."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    u = np.count_nonzero(a | b)
    return 1.0 - (np.count_nonzero(a & b) / u if u else 1.0)


def spread(items: list[Path], n: int) -> list[Path]:
    if n >= len(items):
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def label_both(image: np.ndarray) -> tuple[dict[str, float], float, bool, object]:
    """Seconds of each labeler path, the picks' Jaccard distance, whether the picked candidate
    changed, and the new path's candidates and pick."""
    secs, picks, cands = {}, {}, None
    for name, crop in (("old", False), ("new", True)):
        t = time.perf_counter()
        c = propose(image, polish_crop=crop)
        picks[name] = pick(c)
        secs[name] = time.perf_counter() - t
        cands = c
    old, new = picks["old"], picks["new"]
    return secs, jaccard(old.mask, new.mask), old.chosen != new.chosen, (cands, new)


def vote_both(model, path: Path, cands, chosen, tmp: Path) -> tuple[dict[str, float], float]:
    """Seconds of each vote path and the Jaccard distance of their refined masks (0 when the
    network keeps the label)."""
    from seglib.refine.views import refine_photo

    cpath, tpath = tmp / "c.npz", tmp / "t.png"
    cands.save(cpath)
    save_trimap(tpath, mask_to_trimap(chosen.mask))
    secs, masks = {}, {}
    for name, kw in VOTE_PATHS.items():
        t = time.perf_counter()
        r = refine_photo(path.stem, path, cpath, tpath, model, 0.8, **kw)
        secs[name] = time.perf_counter() - t
        masks[name] = None if r.kept else r.candidates.masks[r.chosen]
    if masks["old"] is None or masks["new"] is None:
        return secs, 0.0 if masks["old"] is masks["new"] else 1.0
    return secs, jaccard(masks["old"], masks["new"])


def report(what: str, secs: dict[str, list[float]], dist: list[float], n: int) -> None:
    old, new = sum(secs["old"]), sum(secs["new"])
    print(f"{what}: old {1000 * old / n:.0f} ms/photo, new {1000 * new / n:.0f} ms/photo, "
          f"ratio old/new {old / new:.2f}; mean Jaccard distance new vs old "
          f"{np.mean(dist):.4f} (max {np.max(dist):.3f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    ap.add_argument("--n", type=int, default=120, help="photos (default 120)")
    ap.add_argument("--model", type=Path, help="a refinement run's best.pt (votes)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    model = None
    if args.model:
        from seglib.training.predict import load_model

        model = load_model(args.model, "cpu")
    paths = spread(list_images(args.images), args.n)
    lab = {"old": [], "new": []}
    vot = {"old": [], "new": []}
    ld, vd, changed = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            secs, d, moved, (cands, chosen) = label_both(read_image(path))
            for k in secs:
                lab[k].append(secs[k])
            ld.append(d)
            changed += moved
            if model is not None:
                secs, d = vote_both(model, path, cands, chosen, Path(tmp))
                for k in secs:
                    vot[k].append(secs[k])
                vd.append(d)
    print(f"{len(paths)} photos of {args.images}, CPU {cpu_name()}, one thread")
    report("labeler", lab, ld, len(paths))
    print(f"  picked candidate changed on {changed}/{len(paths)} photos")
    if model is not None:
        report("one refinement vote", vot, vd, len(paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
