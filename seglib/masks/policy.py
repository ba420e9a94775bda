"""Pick the photo's main object from a set of candidate masks, with no prompt from the user.

Two policies:

``seed``
    ``argmax(predicted_iou)``: exactly the original project's choice. On product photos it often
    returns the background (the biggest, cleanest region), so it is kept for comparison.

``foreground`` (default)
    Every candidate ``i`` (and the cleaned complement ``~i`` of every background-like one) gets

    .. code-block:: text

        score = quality · border · area · centre

        quality = 0.4 + 0.6 · (predicted_iou + stability) / 2   (SAM)
                = 0.4 + 0.6 · object_score                      (opencv, see quality_inputs)
        border  = clip(1 - touch / 0.5, 0, 1)       touch = share of the frame's edge covered
        area    = ramp(a; 0.005, 0.03) · ramp_down(a; 0.45, 0.92)    a = share of the frame
        centre  = 1 - 0.6 · d                       d = centroid distance to the frame centre
                                                        / half the diagonal

    where ``ramp(a; lo, hi)`` rises linearly from 0 at ``lo`` to 1 at ``hi`` and ``ramp_down``
    falls from 1 to 0. A mask covering more than half of the frame's edge or more than 60 % of
    the frame is *background-like*; its complement (largest components, holes filled) is scored
    as a candidate ``~i``. The best-scoring mask is then grown by merging the other candidates
    that look like further parts of the object (the second shoe of a pair, the sole of a shoe
    split in two): a candidate whose own score is at least 60 % of the best, that adds mostly
    new pixels without swallowing the pick, and whose union with the pick keeps at least 95 % of
    the pick's score (so a box or a floor strip, which would make the union hug the frame's
    edge, is not merged).

    ``confidence = clip(best / 0.45, 0, 1) · clip((best - rival) / (0.4 · best), 0, 1)`` where
    ``rival`` is the best score among masks that disagree with the pick (IoU < 0.5 and less
    than 80 % inside it). ``flagged`` when ``confidence < 0.35``, or when the mask enters the
    frame from the top (it covers more than 4 % of the row 6 % below the top edge): a leg, a
    trouser, a hand or a box behind the shoe is the commonest wrong pick, so those are worth a
    look even when the score is sure.

A pick of several candidates is written ``"2+5"``; a complement ``"~0"``. The same strings are
accepted as overrides (``overrides.csv``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from seglib.core.errors import SeglibError
from seglib.core.images import fit_size
from seglib.masks.candidates import Candidates
from seglib.masks.metrics import mask_iou
from seglib.masks.shapes import clean_complement, frame_edge
from seglib.masks.trimap import resize_mask

POLICIES = ("foreground", "seed")
FLAG_BELOW = 0.35
FLAG_FROM_TOP = 0.04
_FEATURE_SIDE = 128  # scores are computed on masks shrunk to this side (speed)


@dataclass
class Pick:
    """The chosen object mask and why it was chosen."""

    mask: np.ndarray  # bool H×W at the candidates' size
    chosen: str  # "4", "~0" (complement of 0), "2+5" (merge); "" when there was nothing
    score: float
    confidence: float
    flagged: bool
    scores: dict[str, float] = field(default_factory=dict)


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


def _small(mask: np.ndarray) -> np.ndarray:
    return resize_mask(mask, fit_size(mask.shape, _FEATURE_SIDE))


def geometry(mask: np.ndarray) -> dict[str, float]:
    """Area share, frame-edge touch share and centroid distance of a bool mask (0..1 each)."""
    m = np.asarray(mask, dtype=bool)
    h, w = m.shape
    area = float(m.mean()) if m.size else 0.0
    touch = float(frame_edge(m).mean()) if m.size else 0.0
    if area == 0.0:
        return {"area": 0.0, "touch": touch, "centre_dist": 1.0}
    ys, xs = np.nonzero(m)
    cy, cx = ys.mean() / max(h - 1, 1) - 0.5, xs.mean() / max(w - 1, 1) - 0.5
    dist = float(np.hypot(cy, cx) / np.hypot(0.5, 0.5))
    return {"area": area, "touch": touch, "centre_dist": dist}


def confidence_factors(top: float, rival: float) -> tuple[float, float]:
    """The two factors of the ``foreground`` pick's confidence (module docstring): how good
    the best score ``top`` is, ``clip(top / 0.45, 0, 1)``, and its margin over ``rival``,
    ``clip((top - rival) / (0.4 · top), 0, 1)``; both 0 when ``top`` is not positive."""
    if top <= 0:
        return 0.0, 0.0
    return (float(np.clip(top / 0.45, 0, 1)),
            float(np.clip((top - rival) / (0.4 * top), 0, 1)))


def from_top(mask: np.ndarray) -> float:
    """Share of the row 6 % below the top edge that ``mask`` covers (something entering)."""
    m = np.asarray(mask, dtype=bool)
    return float(m[round(0.06 * (m.shape[0] - 1))].mean()) if m.size else 0.0


def foreground_score(mask: np.ndarray, predicted_iou: float, stability: float
                     ) -> dict[str, float]:
    """The ``foreground`` score of one mask and its components (see the module docstring)."""
    g = geometry(mask)
    q = 0.4 + 0.6 * (float(predicted_iou) + float(stability)) / 2
    border = float(np.clip(1 - g["touch"] / 0.5, 0, 1))
    area = _ramp(g["area"], 0.005, 0.03) * (1 - _ramp(g["area"], 0.45, 0.92))
    centre = 1 - 0.6 * g["centre_dist"]
    return {**g, "quality": q, "border": border, "area_term": area, "centre": centre,
            "score": q * border * area * centre}


def quality_inputs(cands: Candidates, i: int) -> tuple[float, float]:
    """The two numbers the ``foreground`` quality of candidate ``i`` averages: SAM's
    ``predicted_iou`` and ``stability``, or twice the backend's ``object_score`` when it has one
    (the opencv backend: its ``predicted_iou`` rates segments, the background included)."""
    if cands.object_score is not None:
        return float(cands.object_score[i]), float(cands.object_score[i])
    return float(cands.predicted_iou[i]), float(cands.stability[i])


def is_background_like(mask: np.ndarray) -> bool:
    """A mask covering more than half of the frame's edge or more than 60 % of the frame."""
    g = geometry(mask)
    return g["touch"] > 0.5 or g["area"] > 0.6


def parse_choice(text: str | int) -> list[tuple[int, bool]]:
    """The candidates named by a choice string as ``(index, inverted)`` pairs: ``"4"`` ->
    ``[(4, False)]``, ``"~0"`` (the outside of 0) -> ``[(0, True)]``, ``"2+5"`` (their union)
    -> ``[(2, False), (5, False)]``. Anything else raises a one-line :class:`SeglibError`."""
    text = str(text).strip()
    parts = [p.strip() for p in text.split("+")]
    out = []
    for part in parts:
        num = part[1:] if part.startswith("~") else part
        if not (num.isascii() and num.isdigit()):
            raise SeglibError(f"candidate {text!r}: expected a number like 3, ~0 or 2+5")
        out.append((int(num), part.startswith("~")))
    return out


def mask_for_choice(cands: Candidates, choice: str | int) -> np.ndarray:
    """The mask named by ``"4"``, ``"~0"`` or ``"2+5"`` (as written in ``labels.csv``)."""
    k = len(cands)
    out = np.zeros(cands.shape, dtype=bool)
    for i, inverted in parse_choice(choice):
        if i >= k:
            name = f"~{i}" if inverted else str(i)
            raise SeglibError(
                f"candidate {name!r}: expected a number 0..{k - 1} (optionally ~ or a+b)"
            )
        m = cands.masks[i]
        out |= clean_complement(m) if inverted else m
    return out


def pick(cands: Candidates, policy: str = "foreground", override: int | str | None = None
         ) -> Pick:
    """Choose the object mask of one photo; see the module docstring for the policies."""
    if policy not in POLICIES:
        raise SeglibError(f"unknown policy {policy!r}; use one of {', '.join(POLICIES)}")
    k = len(cands)
    if override is not None and str(override).strip() != "":
        mask = mask_for_choice(cands, override)
        return Pick(mask, str(override).strip(), 1.0, 1.0, False, {"override": 1.0})
    if k == 0:
        return Pick(np.zeros(cands.shape, bool), "", 0.0, 0.0, True, {})
    if policy == "seed":
        i = int(np.argmax(cands.predicted_iou))
        g = geometry(_small(cands.masks[i]))
        piou = float(cands.predicted_iou[i])
        flagged = bool(g["touch"] > 0.5 or g["area"] > 0.6)
        return Pick(cands.masks[i].copy(), str(i), piou, piou, flagged,
                    {"predicted_iou": piou, **g})
    return _pick_foreground(cands)


def _pick_foreground(cands: Candidates) -> Pick:
    small = [_small(m) for m in cands.masks]
    names: list[str] = []
    masks: list[np.ndarray] = []
    quals: list[tuple[float, float]] = []
    scores: list[dict[str, float]] = []
    for i, m in enumerate(small):
        piou, stab = quality_inputs(cands, i)
        options = [(str(i), m)]
        if is_background_like(m):
            options.append((f"~{i}", clean_complement(m)))
        for name, mm in options:
            names.append(name)
            masks.append(mm)
            quals.append((piou, stab))
            scores.append(foreground_score(mm, piou, stab))
    total = np.array([s["score"] for s in scores])
    best = int(np.argmax(total))
    union = masks[best].copy()
    members = [best]
    cur = scores[best]
    areas = [max(int(np.count_nonzero(m)), 1) for m in masks]
    for j in np.argsort(-total):
        j = int(j)
        if j in members or total[j] < 0.6 * total[best] or total[j] <= 0:
            continue
        new = np.count_nonzero(masks[j] & ~union)
        if new < 0.5 * areas[j] or areas[j] - new > 0.2 * np.count_nonzero(union):
            continue  # a duplicate, or a superset of the pick (object + box / floor)
        cand_union = union | masks[j]
        w = np.array([areas[m] for m in members + [j]], dtype=float)
        piou = float(np.average([quals[m][0] for m in members + [j]], weights=w))
        stab = float(np.average([quals[m][1] for m in members + [j]], weights=w))
        s = foreground_score(cand_union, piou, stab)
        if s["score"] >= 0.95 * cur["score"]:
            union, cur = cand_union, s
            members.append(j)
    rival = 0.0
    for j in range(len(masks)):
        if j in members:
            continue
        inside = np.count_nonzero(masks[j] & union) / areas[j]
        if inside < 0.8 and mask_iou(masks[j], union) < 0.5:
            rival = max(rival, float(total[j]))
    top = float(cur["score"])
    strength, margin = confidence_factors(top, rival)
    conf = strength * margin
    chosen = "+".join(names[m] for m in members)
    full = mask_for_choice(cands, chosen) if small[0].shape != cands.shape else union
    comp = {k: round(float(v), 4) for k, v in cur.items()}
    comp["rival"] = round(rival, 4)
    comp["from_top"] = round(from_top(union), 4)
    flagged = conf < FLAG_BELOW or comp["from_top"] > FLAG_FROM_TOP
    return Pick(full, chosen, top, conf, bool(flagged), comp)
