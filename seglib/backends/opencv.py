"""Classical candidate masks (no model, no checkpoint): the offline labeling backend.

The photo is shrunk to ``WORK_SIDE`` (160 px) and these candidates are proposed:

``colour:otsu`` / ``colour:low`` / ``colour:faint``
    A background colour model is learned from the frame's edge (k-means on the edge pixels in
    Lab; rare edge colours, e.g. where the object is cut by the frame, are dropped). Every pixel
    gets its Lab distance to the nearest background colour. Otsu's threshold on that distance,
    half of it, and a threshold just above the edge's own noise (for a white shoe on a white
    background) give object masks, cleaned and hole-filled.
``grabcut:colour`` / ``grabcut:faint``
    GrabCut seeded from those masks (probable object inside, sure object in their far-from-
    background core, the frame's edge strip as sure background).
``grabcut:bbox`` / ``grabcut:rect90``
    GrabCut from a rectangle: the colour mask's bounding box grown by 8 %, and 90 % of the frame
    (the classical baseline).
``edges``
    Canny edges, closed, filled and shrunk back.
``grabcut:refine``
    The policy's provisional pick among the candidates above, refined by GrabCut: the pick is
    probable object, its far-from-the-outline core in the lower half sure object, the frame's
    edge strip sure background. When the pick starts in the top 16 % of the frame (a leg, a
    trouser or a hand may be in it), its top 30 % starts as probable background (the shoe's own
    colours win it back, a leg's do not), and so do the colours that live in its top part only
    (k-means of the pick's colours: clusters centred in the top 40 % of its height that fill
    at least a quarter of its top 30 %); their pixels in its top quarter are sure background.
    On a clean white background (``grabcut:faint`` exists, the frame's edge has a median
    lightness of at least :data:`BRIGHT_L`) ``grabcut:faint`` is added to the result: a white
    sole or a pale toe, close to the background's colour, is often lost by the other masks but
    stands out of a clean background.
    This mask is then *polished* at the photo's own resolution (at most :data:`POLISH_SIDE`):
    GrabCut again, in a band of :data:`POLISH_BAND` px around its outline only (inside the band
    sure object, outside it sure background), so the outline follows the photo's real edges
    instead of the work size's coarse ones.

``region:background`` / ``region:edge-colour``
    The regions of the photo that are not the object, as SAM's everything mode proposes them
    too: the pixels of the frame edge's colours that reach the frame's edge (everything outside
    ``colour:low``), and each edge colour's own part of it (a floor, a wall, a box) when it
    covers at least 8 % of the frame and differs from the whole (IoU < 0.85).

Like SAM's everything mode, the backend scores each mask by how clean a *segment* it is, not by
whether it is the object: ``predicted_iou`` (and ``stability``, there being no threshold to
vary) is :func:`segment_quality` — colour uniformity inside, outline on strong image edges,
colour separation inside/outside. A plain background is a very clean segment, so the original
``seed`` policy (highest ``predicted_iou``) takes it on many photos, as it does with SAM.

Picking the object is the policy's job. The backend's own estimate of each mask's IoU with the
object is ``object_score``, which the ``foreground`` policy rates quality by
(:func:`seglib.masks.policy.quality_inputs`): a linear model (:data:`IOU_WEIGHTS`) of
:data:`FEATURES` — agreement with the other candidates and with the
90 % GrabCut, colour separation inside/outside, outline on strong image edges, size, position,
how close it comes to the top/bottom/sides. The refined pick's estimate is at least that of the
pick it refines plus :data:`REFINE_BONUS`, so the policy keeps the refinement; the background
regions' is 0 (they are made of the frame edge's colours). Masks come back at the photo's size.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from seglib.core.images import as_rgb, resize_max_side
from seglib.masks.candidates import Candidates
from seglib.masks.metrics import mask_iou
from seglib.masks.policy import geometry, pick
from seglib.masks.shapes import LAB_COLOURS, fill_holes, grabcut, lab_bins, large_components, polish
from seglib.masks.trimap import resize_mask

WORK_SIDE = 160
SOURCES = ("colour:otsu", "colour:low", "colour:faint", "grabcut:colour", "grabcut:faint",
           "grabcut:bbox", "grabcut:rect90", "edges", "grabcut:refine")
# Ridge fit (ridge 1e-2 × the number of candidates) of the candidates' true IoU, from their
# FEATURES, on 200 synthetic sample photos of seed 1 (the committed sample uses seed 0 and stays
# held out).
IOU_WEIGHTS: dict[str, float] = {
    "bias": 0.1225,
    "source=colour:otsu": -0.0348,
    "source=colour:low": -0.008,
    "source=colour:faint": 0.0036,
    "source=grabcut:colour": 0.0176,
    "source=grabcut:faint": 0.0117,
    "source=grabcut:bbox": 0.0022,
    "source=grabcut:rect90": -0.0042,
    "source=edges": 0.057,
    "source=grabcut:refine": 0.0773,
    "soft_iou": -0.0452,
    "separation": 0.0585,
    "edges_on_outline": 0.1205,
    "agreement": 0.1862,
    "iou_rect90": 0.3505,
    "iou_vote": 0.1629,
    "area": -0.2422,
    "touch": -0.0248,
    "centre_dist": -0.091,
    "near_top": -0.2756,
    "near_bottom": 0.0567,
    "near_sides": -0.0005,
}
REFINE_BONUS = 0.15  # the refined pick is preferred to the pick it refines
TOP_Y = 0.16  # a pick starting this high (share of the height) may have a leg / hand in it
TOP_UPPER = 0.3  # ... and then its top part (share of its height) must win itself back
EDGE = 3  # width of the frame-edge strip that seeds the background model, in work pixels
BRIGHT_L = 215  # a background this bright (median Lab L of the frame's edge, 0..255) is white
POLISH_SIDE = 480  # the refined pick is polished at the photo's size, up to this longer side


def _edge_strip(h: int, w: int, e: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[:e], m[-e:], m[:, :e], m[:, -e:] = True, True, True, True
    return m


def _clean(mask: np.ndarray, min_share: float = 0.15) -> np.ndarray:
    """Open/close a little, keep large components, fill holes."""
    m = mask.astype(np.uint8)
    k = np.ones((3, 3), np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, k)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, k, iterations=2)
    return large_components(m, min_share, connectivity=8)


def _edge_distances(lab: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel Lab distance to each common frame-edge colour (H×W×C), and the edge strip."""
    h, w = lab.shape[:2]
    strip = _edge_strip(h, w, EDGE)
    samples = lab[strip].astype(np.float32)
    k = min(k, len(samples))
    cv2.setRNGSeed(0)  # k-means++ seeding: the same photo always gives the same candidates
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    _, labels, centres = cv2.kmeans(samples, k, None, crit, 1, cv2.KMEANS_PP_CENTERS)
    share = np.bincount(labels.ravel(), minlength=k) / len(samples)
    centres = centres[share >= 0.08] if (share >= 0.08).any() else centres
    flat = lab.reshape(-1, 3).astype(np.float32)
    d = np.linalg.norm(flat[:, None, :] - centres[None, :, :], axis=2)
    return d.reshape(h, w, len(centres)), strip


def background_distance(lab: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel Lab distance to the nearest frame-edge colour, and the edge-strip mask."""
    d, strip = _edge_distances(lab, k)
    return np.min(d, axis=2), strip


def _colour_threshold(dist: np.ndarray) -> float:
    """Otsu's threshold on a (blurred) background distance, at least 6."""
    scale = 255.0 / max(float(dist.max()), 1e-6)
    return max(_otsu(dist * scale) / scale, 6.0)


def _otsu(values: np.ndarray) -> float:
    v = np.clip(values, 0, 255).astype(np.uint8)
    t, _ = cv2.threshold(v, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(t)


def _separation(lab_q: np.ndarray, mask: np.ndarray) -> float:
    """1 - histogram intersection of the colours inside and outside ``mask`` (0..1)."""
    n_in, n_out = np.count_nonzero(mask), np.count_nonzero(~mask)
    if n_in == 0 or n_out == 0:
        return 0.0
    hin = np.bincount(lab_q[mask], minlength=LAB_COLOURS) / n_in
    hout = np.bincount(lab_q[~mask], minlength=LAB_COLOURS) / n_out
    return float(1 - np.minimum(hin, hout).sum())


def _edge_alignment(grad: np.ndarray, mask: np.ndarray) -> float:
    """Share of the mask's outline (inside the frame) lying on a strong image gradient."""
    m = mask.astype(np.uint8)
    ring = (cv2.dilate(m, np.ones((3, 3), np.uint8)) - m) > 0
    ring[[0, -1], :] = False
    ring[:, [0, -1]] = False
    n = np.count_nonzero(ring)
    if n == 0:
        return 0.0
    return float(np.count_nonzero(ring & grad) / n)


def _soft_iou(soft: np.ndarray, mask: np.ndarray) -> float:
    """IoU of a mask with a soft (0..1) object map."""
    inter = float(np.minimum(soft, mask).sum())
    union = float(np.maximum(soft, mask).sum())
    return inter / union if union else 0.0


def _top_clusters(lab: np.ndarray, base: np.ndarray, k: int = 5) -> np.ndarray:
    """Pixels of ``base`` whose colour cluster lives in its top part (a leg entering, ...)."""
    ys, xs = np.nonzero(base)
    out = np.zeros(base.shape, bool)
    y0, y1 = int(ys.min()), int(ys.max())
    px = lab[ys, xs].astype(np.float32)
    k = min(k, len(px))
    cv2.setRNGSeed(0)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    _, lbl, _ = cv2.kmeans(px, k, None, crit, 1, cv2.KMEANS_PP_CENTERS)
    lbl = lbl.ravel()
    rel = (ys - y0) / max(y1 - y0, 1)
    top = rel < 0.3
    for c in range(k):
        sel = lbl == c
        if sel.sum() >= 20 and rel[sel].mean() < 0.4 and (sel & top).sum() > 0.25 * top.sum():
            out[ys[sel], xs[sel]] = True
    return out


def refine(bgr: np.ndarray, lab: np.ndarray, base: np.ndarray, iters: int = 4) -> np.ndarray:
    """GrabCut seeded from one mask (see ``grabcut:refine`` in the module docstring)."""
    h, w = base.shape
    ys = np.flatnonzero(base.any(axis=1))
    if np.count_nonzero(base) < 50:
        return base.copy()
    y0, y1 = int(ys[0]), int(ys[-1])
    gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    gc[base] = cv2.GC_PR_FGD
    core = cv2.erode(base.astype(np.uint8), np.ones((5, 5), np.uint8), iterations=2) > 0
    core[: (y0 + y1) // 2] = False
    if y0 < TOP_Y * h and (y1 - y0) > 0.3 * h:
        gc[base & (np.arange(h)[:, None] < y0 + TOP_UPPER * (y1 - y0))] = cv2.GC_PR_BGD
        leg = _top_clusters(lab, base)
        if leg.any():
            gc[leg] = cv2.GC_PR_BGD
            upper = leg.copy()
            upper[round(y0 + 0.25 * (y1 - y0)):] = False
            gc[upper] = cv2.GC_BGD
            core &= ~(cv2.dilate(leg.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    gc[core] = cv2.GC_FGD
    gc[_edge_strip(h, w, EDGE)] = cv2.GC_BGD
    if not np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
        return base.copy()
    return _clean(grabcut(bgr, mask=gc, iters=iters))


def propose_small(rgb: np.ndarray
                  ) -> tuple[list[np.ndarray], list[str], np.ndarray, np.ndarray]:
    """The candidate masks at the work size, their source names, a soft object map and a floor
    under each candidate's estimated IoU (the refined pick keeps its base's estimate, plus
    :data:`REFINE_BONUS`)."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    blur = cv2.GaussianBlur(bgr, (5, 5), 0)
    lab = cv2.cvtColor(blur, cv2.COLOR_BGR2LAB)
    dist, strip = background_distance(lab)
    dist = cv2.GaussianBlur(dist, (5, 5), 0)
    t = _colour_threshold(dist)
    masks, sources, t_noise = _colour_candidates(bgr, dist, strip, t)
    masks.append(_rect90(bgr))
    sources.append("grabcut:rect90")
    masks.append(_edges_filled(blur))
    sources.append("edges")
    soft = np.clip((dist - t_noise) / max(t - t_noise, 1e-6), 0, 1)
    piou = predict_iou(candidate_features(rgb, masks, sources, soft))
    first = pick(Candidates(np.stack(masks), piou, piou, sources, backend="opencv"))
    refined = refine(bgr, lab, first.mask)
    if "grabcut:faint" in sources and float(np.median(lab[strip][:, 0])) >= BRIGHT_L:
        # a clean, bright background: keep what stands out of it at all
        refined = fill_holes(refined | masks[sources.index("grabcut:faint")])
    masks.append(refined)
    sources.append("grabcut:refine")
    floor = np.zeros(len(masks), np.float32)
    floor[-1] = (first.scores.get("quality", 0.4) - 0.4) / 0.6 + REFINE_BONUS
    return masks, sources, soft, floor


def _colour_candidates(bgr: np.ndarray, dist: np.ndarray, strip: np.ndarray, t: float,
                       ) -> tuple[list[np.ndarray], list[str], float]:
    """The ``colour:*`` masks thresholded from the background distance ``dist`` (Otsu's
    threshold ``t``), the GrabCuts seeded from them and from their bounding box, their source
    names, and the edge-noise threshold behind ``colour:faint``."""
    h, w = dist.shape[:2]
    masks: list[np.ndarray] = []
    sources: list[str] = []
    colour = _clean(dist > t)
    loose = _clean(dist > 0.5 * t)
    for name, m in (("colour:otsu", colour), ("colour:low", loose)):
        masks.append(m)
        sources.append(name)
    noise = float(np.percentile(dist[strip], 95))
    t_noise = float(np.clip(3 * noise + 4, 5, 0.5 * t))
    faint = _clean(dist > t_noise) if t_noise < 0.45 * t else None
    if faint is not None:
        masks.append(faint)
        sources.append("colour:faint")
    if colour.any():
        for name, seed in (("grabcut:colour", loose), ("grabcut:faint", faint)):
            if seed is None:
                continue
            gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
            gc[seed] = cv2.GC_PR_FGD
            core = cv2.erode(colour.astype(np.uint8), np.ones((5, 5), np.uint8),
                             iterations=2) > 0
            gc[core & (dist > 2 * t)] = cv2.GC_FGD
            gc[strip] = cv2.GC_BGD
            masks.append(_clean(grabcut(bgr, mask=gc)))
            sources.append(name)
        bbox = _bbox_grabcut(bgr, colour)
        if bbox is not None:
            masks.append(bbox)
            sources.append("grabcut:bbox")
    return masks, sources, t_noise


def _bbox_grabcut(bgr: np.ndarray, colour: np.ndarray) -> np.ndarray | None:
    """GrabCut from ``colour``'s bounding box grown by 8 % (None when it is too thin)."""
    h, w = colour.shape
    ys, xs = np.nonzero(colour)
    my, mx = int(0.08 * h), int(0.08 * w)
    y0, y1 = max(ys.min() - my, 1), min(ys.max() + my, h - 2)
    x0, x1 = max(xs.min() - mx, 1), min(xs.max() + mx, w - 2)
    if (y1 - y0) > 4 and (x1 - x0) > 4:
        return _clean(grabcut(bgr, rect=(x0, y0, x1 - x0, y1 - y0)))
    return None


def _rect90(bgr: np.ndarray) -> np.ndarray:
    """GrabCut from 90 % of the frame (the classical baseline)."""
    h, w = bgr.shape[:2]
    my, mx = int(0.05 * h), int(0.05 * w)
    return _clean(grabcut(bgr, rect=(mx, my, w - 2 * mx, h - 2 * my)))


def _edges_filled(blur: np.ndarray) -> np.ndarray:
    """Canny edges of the blurred photo, closed, filled and shrunk back."""
    gray = cv2.cvtColor(blur, cv2.COLOR_BGR2GRAY)
    edges = cv2.Canny(gray, 20, 60)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8), iterations=2) > 0
    filled = _clean(edges).astype(np.uint8)  # closed outlines, filled ...
    return cv2.erode(filled, np.ones((3, 3), np.uint8), iterations=2) > 0  # ... no halo


FEATURES = ("bias", *(f"source={n}" for n in SOURCES), "soft_iou", "separation", "edges_on_outline",
            "agreement", "iou_rect90", "iou_vote", "area", "touch", "centre_dist", "near_top",
            "near_bottom", "near_sides")


def candidate_features(small: np.ndarray, masks: list[np.ndarray], sources: list[str],
                       soft: np.ndarray) -> np.ndarray:
    """One row of :data:`FEATURES` per candidate (work size), for :func:`predict_iou`."""
    lab = cv2.cvtColor(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2LAB)
    lab_q = lab_bins(lab)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mag = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    mag = cv2.dilate(mag, np.ones((3, 3), np.uint8))
    strong = mag > max(float(np.percentile(mag, 70)), 20.0)
    rect = masks[sources.index("grabcut:rect90")] if "grabcut:rect90" in sources else None
    vote = np.mean(masks, axis=0) >= 0.5
    h, w = soft.shape
    i_top, i_side = round(0.06 * h), round(0.06 * w)  # inside the 5 % rectangle's margin
    rows = []
    for i, m in enumerate(masks):
        others = [mask_iou(m, o) for j, o in enumerate(masks) if j != i]
        g = geometry(m)
        rows.append([
            1.0, *(float(sources[i] == n) for n in SOURCES),
            _soft_iou(soft, m), _separation(lab_q, m), _edge_alignment(strong, m),
            float(np.mean(sorted(others)[-3:])) if others else 0.0,
            mask_iou(m, rect) if rect is not None else 0.0, mask_iou(m, vote),
            g["area"], g["touch"], g["centre_dist"],
            float(m[i_top].mean()), float(m[-1 - i_top].mean()),
            float((m[:, i_side].mean() + m[:, -1 - i_side].mean()) / 2),
        ])
    return np.array(rows, dtype=np.float64).reshape(len(masks), len(FEATURES))


def predict_iou(features: np.ndarray, floor: np.ndarray | None = None) -> np.ndarray:
    """Estimated IoU of each candidate with the object (a linear model, at least ``floor``,
    clipped to 0..1)."""
    w = np.array([IOU_WEIGHTS.get(n, 0.0) for n in FEATURES])
    est = features @ w
    if floor is not None:
        est = np.maximum(est, floor)
    return np.clip(est, 0.0, 1.0).astype(np.float32)


def propose(image: np.ndarray, work_side: int = WORK_SIDE, *, polish_crop: bool = True
            ) -> Candidates:
    """Classical candidates for one RGB uint8 photo, at the photo's own size. ``polish_crop``:
    the refined pick's polish on its band's bounding box (issue 24's default) or, False, on
    the whole photo (:func:`seglib.masks.shapes.polish`)."""
    rgb = as_rgb(image)
    H, W = rgb.shape[:2]
    if min(H, W) < 8:
        return Candidates(np.zeros((0, H, W), bool), [], [], backend="opencv")
    small = resize_max_side(rgb, work_side)
    masks, sources, soft, floor = propose_small(small)
    feats = candidate_features(small, masks, sources, soft)
    obj = predict_iou(feats, floor)
    regions = background_regions(small)
    masks += [m for _, m in regions]
    sources += [name for name, _ in regions]
    obj = np.append(obj, np.zeros(len(regions), np.float32))
    piou = segment_quality(small, masks)
    stab = piou.copy()  # no threshold to vary here: the same rating serves as stability
    full = [resize_mask(m, (H, W)) for m in masks]
    i = sources.index("grabcut:refine")
    mid = resize_max_side(rgb, POLISH_SIDE)
    full[i] = resize_mask(polish(mid, resize_mask(masks[i], mid.shape[:2]), crop=polish_crop),
                          (H, W))
    return Candidates(np.stack(full), piou, stab, sources, backend="opencv", object_score=obj)


def background_regions(small: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The background regions of a work-size photo, named by source (see the module
    docstring): the frame edge's colours reaching the edge, and each colour's part of them."""
    lab = cv2.cvtColor(cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), (5, 5), 0),
                       cv2.COLOR_BGR2LAB)
    d, _ = _edge_distances(lab)
    dist = cv2.GaussianBlur(np.min(d, axis=2), (5, 5), 0)
    background = _reaching_edge(~_clean(dist > 0.5 * _colour_threshold(dist)))
    out: list[tuple[str, np.ndarray]] = []
    if background.mean() < 0.02:
        return out
    out.append(("region:background", background))
    if d.shape[2] > 1:
        nearest = np.argmin(d, axis=2)
        for c in range(d.shape[2]):
            part = _reaching_edge(background & (nearest == c))
            if part.mean() >= 0.08 and mask_iou(part, background) < 0.85:
                out.append(("region:edge-colour", part))
    return out


def _reaching_edge(mask: np.ndarray) -> np.ndarray:
    """``mask`` opened a little, keeping the components that reach the frame's edge."""
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, lab = cv2.connectedComponents(m, connectivity=4)
    if n <= 1:
        return m.astype(bool)
    edge = np.zeros(m.shape, bool)
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    keep = np.setdiff1d(np.unique(lab[edge]), [0])
    return np.isin(lab, keep)


def segment_quality(small: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """How clean a segment each (work-size) mask is, 0..1, the role of SAM's predicted IoU:
    ``0.2 · uniform + 0.4 · on_edges + 0.4 · separation``, where ``uniform = exp(-s / 40)``
    with ``s`` the mean Lab distance of the mask's pixels to their mean colour, ``on_edges`` the
    share of its outline on strong image edges and ``separation`` 1 - the histogram
    intersection of its colours inside and outside. Whether the mask is the object plays no
    part: a plain background scores high."""
    lab = cv2.cvtColor(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2LAB)
    lab_q = lab_bins(lab)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mag = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    strong = cv2.dilate(mag, np.ones((3, 3), np.uint8)) > max(float(np.percentile(mag, 70)),
                                                              20.0)
    labf = lab.astype(np.float32)
    out = np.zeros(len(masks), np.float32)
    for i, m in enumerate(masks):
        if np.count_nonzero(m) < 20:
            continue
        px = labf[m]
        spread = float(np.linalg.norm(px - px.mean(axis=0), axis=1).mean())
        out[i] = (0.2 * np.exp(-spread / 40) + 0.4 * _edge_alignment(strong, m)
                  + 0.4 * _separation(lab_q, m))
    return np.clip(out, 0.0, 1.0)


def build_proposer(checkpoint: None = None, **_settings: object) -> Callable[
        [np.ndarray], Candidates]:
    """The registry's builder: :func:`propose` (no checkpoint, no model, no settings)."""
    return propose
