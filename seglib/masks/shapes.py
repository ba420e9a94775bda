"""Shape and colour helpers every mask stage shares: morphology (holes, components, the
frame's edge), OpenCV GrabCut and its outline polish, and CIELAB colour bins.

The opencv backend proposes with them, the policy scores with them, refinement redraws with
them and the label confidence measures with them; none of those owns them.
"""

from __future__ import annotations

import cv2
import numpy as np


def frame_edge(mask: np.ndarray) -> np.ndarray:
    return np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])


def large_components(mask: np.ndarray, min_share: float = 0.2, connectivity: int = 4
                     ) -> np.ndarray:
    """The connected components of a bool mask with at least ``min_share`` of the largest
    one's area (and 0.2 % of the frame), holes filled."""
    m = np.asarray(mask, dtype=bool).astype(np.uint8)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=connectivity)
    if n <= 1:
        return m.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= max(min_share * areas.max(), 0.002 * m.size)) + 1
    return fill_holes(np.isin(lab, keep))


def clean_complement(mask: np.ndarray) -> np.ndarray:
    """``~mask`` keeping its large connected components (>= 20 % of the largest), holes filled."""
    return large_components(~np.asarray(mask, dtype=bool), 0.2, connectivity=4)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the regions of ``~mask`` that do not reach the frame's edge."""
    m = np.asarray(mask, dtype=bool)
    inv = (~m).astype(np.uint8)
    n, lab = cv2.connectedComponents(inv, connectivity=4)
    if n <= 1:
        return m
    outside = np.unique(frame_edge(lab))
    holes = ~np.isin(lab, outside) & (lab > 0)
    return m | holes


LAB_BINS = 8  # bins per CIELAB channel of the colour histograms (lab_bins)


LAB_COLOURS = LAB_BINS ** 3


# a refined pick is polished in a band this wide around its outline (px of a 240 px photo; scaled)
POLISH_BAND = 5
# the polish's GrabCut sees the band's bounding box grown by this many bands (polish(crop=True))
POLISH_MARGIN = 3


def grabcut(bgr: np.ndarray, mask: np.ndarray | None = None,
            rect: tuple[int, int, int, int] | None = None, iters: int = 3) -> np.ndarray:
    """The object of GrabCut (definite or probable), from a rectangle or a GC_* seed mask;
    reproducible (OpenCV's RNG is reseeded). A seed without object or without background
    pixels (GrabCut has nothing to learn a colour model from) gives the seed's object."""
    if rect is None and mask is not None:
        seed_fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        if seed_fg.all() or not seed_fg.any():
            return seed_fg
    elif rect is not None:
        x, y, w, h = rect
        inside = np.zeros(bgr.shape[:2], bool)
        inside[max(y, 0):y + h, max(x, 0):x + w] = True
        if inside.all() or not inside.any():
            return inside
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's GMMs start from k-means: keep the result reproducible
    if rect is not None:
        gc = np.zeros(bgr.shape[:2], np.uint8)
        cv2.grabCut(bgr, gc, rect, bgd, fgd, iters, cv2.GC_INIT_WITH_RECT)
    else:
        gc = mask.copy()
        cv2.grabCut(bgr, gc, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    return (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)


def lab_bins(lab: np.ndarray) -> np.ndarray:
    """Each pixel's colour as one of ``LAB_COLOURS`` bins (int32 H×W) from a uint8 CIELAB
    image: ``LAB_BINS`` bins per channel. The colour histograms of this module and of
    :func:`seglib.labels.confidence.backdrop` count these."""
    q = lab.astype(np.int32) // (256 // LAB_BINS)
    return (q[..., 0] * LAB_BINS + q[..., 1]) * LAB_BINS + q[..., 2]


def polish(rgb: np.ndarray, mask: np.ndarray, band: int | None = None,
           iters: int = 3, crop: bool = True) -> np.ndarray:
    """GrabCut in a band of ``band`` px around the outline of ``mask`` (same size as ``rgb``;
    by default :data:`POLISH_BAND` scaled to the photo's size, at least 2 px): the outline
    moves onto the photo's edges; the rest of the mask stays as it is.

    ``crop`` (default) runs GrabCut on the band's bounding box grown by :data:`POLISH_MARGIN`
    bands instead of the whole photo: only the definite background far from the outline is
    left out of the background colour model (issue 24: 1.6× faster, the same outline on the
    sample photos, see tests/test_opencv_candidates.py); ``crop=False`` is the whole photo."""
    m8 = np.asarray(mask, dtype=np.uint8)
    if band is None:
        band = max(2, round(POLISH_BAND * max(m8.shape) / 240))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    inner = cv2.erode(m8, k) > 0
    if np.count_nonzero(inner) < 20:
        return np.asarray(mask, dtype=bool).copy()
    gc = np.full(m8.shape, cv2.GC_BGD, np.uint8)
    outer = cv2.dilate(m8, k) > 0
    gc[outer] = cv2.GC_PR_BGD
    gc[m8 > 0] = cv2.GC_PR_FGD
    gc[inner] = cv2.GC_FGD
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    box = _box(outer, POLISH_MARGIN * band) if crop else None
    if box is None:
        return fill_holes(grabcut(bgr, mask=gc, iters=iters))
    (y0, y1), (x0, x1) = box
    out = np.zeros(m8.shape, bool)
    out[y0:y1, x0:x1] = grabcut(bgr[y0:y1, x0:x1], mask=gc[y0:y1, x0:x1], iters=iters)
    return fill_holes(out)


def _box(mask: np.ndarray, margin: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The bounding box of ``mask`` grown by ``margin`` px ((y0, y1), (x0, x1), ends
    exclusive), or None when it would be the whole frame."""
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    y0, y1 = max(int(ys[0]) - margin, 0), min(int(ys[-1]) + 1 + margin, h)
    x0, x1 = max(int(xs[0]) - margin, 0), min(int(xs[-1]) + 1 + margin, w)
    return None if (y0, y1, x0, x1) == (0, h, 0, w) else ((y0, y1), (x0, x1))
