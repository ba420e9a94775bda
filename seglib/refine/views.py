"""One photo's refinement: five views of the object vote on its label.

The folder pass (:mod:`seglib.refine.rounds`) trains a small U-Net on the folder's confident
labels; its errors differ from the labeler's. For every photo five views of the object then
vote, pixel by pixel (a pixel is object when more than half of them say so):

1. the labeler's pick;
2. the network's object probability ``p`` (a soft vote);
3. the photo's candidate closest (IoU) to the network's mask ``p > 0.5``, leaving out
   candidates GrabCut drew inside a rectangle (their straight cut would show in the vote);
4. GrabCut seeded by the network alone: definite object where ``p > 0.9``, definite
   background where ``p < 0.1``, probable object where ``p > 0.5``, probable background
   elsewhere;
5. GrabCut seeded where the network and the pick agree: definite object where ``p > 0.9``
   and the pick agree, definite background where ``p < 0.1`` and the pick agree, probable
   as in 4.

When the network has too few definite pixels of either kind for 4, it is not sure of anything
and the photo keeps its pick; when 5 lacks seeds, it votes as the pick. The vote (holes
filled) is polished at the photo's resolution as the labeler's refined pick is
(:func:`seglib.masks.shapes.polish`).

:func:`refine_photo` does one photo (nothing written; the unit a parallel run calls): the
photo's cached candidates plus the refined mask as source ``"grabcut:cnn"``, its trimap and
the :class:`~seglib.labels.confidence.Evidence` of the views, or why the photo keeps its label
(:data:`KEPT_REASONS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seglib.core.errors import SeglibError
from seglib.core.images import read_image, resize_image, resize_max_side
from seglib.labels.confidence import Evidence, evidence
from seglib.masks.candidates import REFINED_SOURCE, Candidates
from seglib.masks.metrics import mask_iou
from seglib.masks.shapes import fill_holes, grabcut, polish
from seglib.masks.trimap import OBJECT, load_trimap, mask_to_trimap, resize_mask

SOURCE = REFINED_SOURCE
# candidates GrabCut drew inside a rectangle: where the rectangle cuts the object they end in a
# straight line, which the closest-candidate view would carry into the vote
RECT_SOURCES = ("grabcut:bbox", "grabcut:rect90")
SURE_OBJECT, SURE_BACKGROUND = 0.9, 0.1
MIN_SEEDS = 20  # pixels of each definite class GrabCut needs to be worth running
# the two GrabCut views run on the photo shrunk to this longer side (the labeler's work size);
# the vote is polished at the photo's size (issue 24: None, the photo's size, was the old way)
GRABCUT_SIDE = 160
# why a photo keeps its label (seglib.refine.rounds.RefineSummary.kept_why)
KEPT_OVERRIDE = "chosen or drawn by a person (override, imported, edited, prompted)"
KEPT_DONE = "redrawn by an earlier run"
KEPT_UNSURE = "where the CNN was sure of nothing"
KEPT_UNREADABLE = "without readable photo, trimap or candidates"
KEPT_WORKER = "whose worker died (refine again to redo them)"
KEPT_REASONS = (KEPT_OVERRIDE, KEPT_DONE, KEPT_UNSURE, KEPT_UNREADABLE, KEPT_WORKER)


def object_probability(logits: np.ndarray) -> np.ndarray:
    """P(object) from 3×H×W class logits (object, background, border); border counts half."""
    z = np.asarray(logits, dtype=np.float32)
    e = np.exp(z - z.max(0))
    e /= e.sum(0)
    return e[OBJECT - 1] + 0.5 * e[2]


def _grabcut_from(image: np.ndarray, prob: np.ndarray, fg: np.ndarray, bg: np.ndarray,
                  iterations: int, side: int | None = None) -> np.ndarray | None:
    """GrabCut with definite seeds ``fg``/``bg``, probable object where ``prob > 0.5``;
    ``None`` when either seed has fewer than ``MIN_SEEDS`` pixels. With ``side`` GrabCut runs
    on the photo and its seeds shrunk to that longer side (nearest seed label) and the mask
    comes back at the photo's size (the vote's polish redraws the outline there)."""
    if np.count_nonzero(fg) < MIN_SEEDS or np.count_nonzero(bg) < MIN_SEEDS:
        return None
    gc = np.where(prob > 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    gc[fg] = cv2.GC_FGD
    gc[bg] = cv2.GC_BGD
    h, w = gc.shape
    if side is None or max(h, w) <= side:
        return fill_holes(grabcut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), mask=gc,
                                  iters=iterations))
    small = resize_max_side(image, side)
    sh, sw = small.shape[:2]
    seeds = cv2.resize(gc, (sw, sh), interpolation=cv2.INTER_NEAREST)
    out = grabcut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), mask=seeds, iters=iterations)
    return fill_holes(resize_mask(out, (h, w)))


def grabcut_agree(image: np.ndarray, prob: np.ndarray, pick: np.ndarray,
                  iterations: int = 4, side: int | None = None) -> np.ndarray | None:
    """GrabCut seeded where the network and the pick agree (view 5); ``None`` when seeds are
    too few.

    ``image`` RGB uint8 H×W×3, ``prob`` float H×W object probability, ``pick`` bool H×W;
    ``side``: GrabCut on the photo shrunk to this longer side (None: the photo's size).
    """
    pick = np.asarray(pick, dtype=bool)
    return _grabcut_from(image, prob, (prob > SURE_OBJECT) & pick,
                         (prob < SURE_BACKGROUND) & ~pick, iterations, side)


def grabcut_seeded(image: np.ndarray, prob: np.ndarray, iterations: int = 4,
                   side: int | None = None) -> np.ndarray | None:
    """GrabCut seeded by the network alone (view 4); ``None`` when seeds are too few."""
    return _grabcut_from(image, prob, prob > SURE_OBJECT, prob < SURE_BACKGROUND, iterations,
                         side)


def refine_views(image: np.ndarray, prob: np.ndarray, pick: np.ndarray,
                 candidates: np.ndarray, grabcut_side: int | None = GRABCUT_SIDE,
                 ) -> list[np.ndarray] | None:
    """The five views of the module docstring (pick, network probability, closest candidate,
    the two GrabCuts); ``None`` when the network is not sure of anything.

    ``image`` RGB uint8 H×W×3, ``prob`` float H×W object probability, ``pick`` bool H×W,
    ``candidates`` bool K×H×W (the photo's cached candidates; may be empty);
    ``grabcut_side``: the GrabCut views run on the photo shrunk to this longer side
    (:data:`GRABCUT_SIDE`; None: at the photo's size, as before issue 24).
    """
    pick = np.asarray(pick, dtype=bool)
    alone = grabcut_seeded(image, prob, side=grabcut_side)
    if alone is None:
        return None
    net = prob > 0.5
    closest = net
    if len(candidates):
        closest = candidates[int(np.argmax([mask_iou(m, net) for m in candidates]))]
    agree = grabcut_agree(image, prob, pick, side=grabcut_side)
    return [pick, prob, closest, alone, pick if agree is None else agree]


def vote(image: np.ndarray, views: list[np.ndarray], polish_crop: bool = True) -> np.ndarray:
    """The pixel vote of ``views`` (object where more than half say so), holes filled and
    polished at the photo's resolution (``polish_crop``: see
    :func:`seglib.masks.shapes.polish`)."""
    mask = np.mean([np.asarray(v, dtype=np.float32) for v in views], axis=0) > 0.5
    mask = fill_holes(mask)
    return polish(image, mask, crop=polish_crop) if mask.any() else mask


def voting_candidates(cands: Candidates) -> np.ndarray:
    """The masks the closest-candidate view chooses from: the photo's candidates except an
    earlier refined mask, those drawn inside a rectangle (:data:`RECT_SOURCES`) and the
    background regions (``region:*``, never the object)."""
    keep = [i for i, src in enumerate(cands.sources)
            if src != SOURCE and src not in RECT_SOURCES and not src.startswith("region:")]
    return cands.masks[keep]


def _with_refined(cands: Candidates, mask: np.ndarray) -> tuple[Candidates, int]:
    """``cands`` plus ``mask`` as source ``SOURCE`` (replacing an earlier refined one)."""
    base = cands.without(SOURCE)
    masks = np.concatenate([base.masks, mask[None]], axis=0)
    piou = np.append(base.predicted_iou, 1.0)
    stab = np.append(base.stability, 1.0)
    obj = None if base.object_score is None else np.append(base.object_score, 1.0)
    return Candidates(masks, piou, stab, [*base.sources, SOURCE], cands.backend,
                      cands.photo_hash, object_score=obj), len(base)


@dataclass
class RefinedPhoto:
    """What :func:`refine_photo` made of one photo: the new candidates and trimap, or why the
    photo keeps its label."""

    stem: str
    candidates: Candidates | None = None  # the cached candidates plus the refined mask
    chosen: int = -1  # the refined mask's index in ``candidates``
    trimap: np.ndarray | None = None  # at the photo's size
    evidence: Evidence | None = None  # what the views say about the refined mask
    kept: str = ""  # one of KEPT_REASONS when the label stays
    message: str = ""


def refine_photo(stem: str, photo_path: Path, candidates_path: Path, trimap_path: Path,
                 model, pick_confidence: float | None = None, *,
                 grabcut_side: int | None = GRABCUT_SIDE,
                 polish_crop: bool = True) -> RefinedPhoto:
    """The five-view vote for one photo with a trained ``model``, and its evidence
    (:func:`seglib.labels.confidence.evidence`; ``pick_confidence`` is the policy's confidence in
    the photo's pick); writes nothing. ``grabcut_side`` (:func:`refine_views`) and
    ``polish_crop`` (:func:`vote`) choose the fast path (the defaults) or the old one."""
    from seglib.training.predict import predict_logits

    try:
        cands = Candidates.load(candidates_path)
        trimap = load_trimap(trimap_path)
        photo = read_image(photo_path)
    except SeglibError as exc:
        return RefinedPhoto(stem, kept=KEPT_UNREADABLE, message=f"kept {stem}: {exc}")
    h, w = cands.shape
    work = resize_image(photo, (h, w))
    pick = resize_mask(trimap == OBJECT, (h, w))
    prob = object_probability(predict_logits(model, work))
    views = refine_views(work, prob, pick, voting_candidates(cands), grabcut_side)
    mask = None if views is None else vote(work, views, polish_crop)
    if mask is None or not mask.any():
        return RefinedPhoto(stem, kept=KEPT_UNSURE)
    assert views is not None
    new, idx = _with_refined(cands, mask)
    return RefinedPhoto(stem, new, idx, mask_to_trimap(resize_mask(mask, trimap.shape[:2])),
                        evidence=evidence(work, mask, views, prob, pick, pick_confidence))
