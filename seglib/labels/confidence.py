"""How sure a label is: the confidence of the label actually written, and why it is doubtful.

Every label in ``labels.csv`` carries ``confidence`` (an estimate of the probability that the
label is good: object IoU >= 0.8 against a careful hand mask), ``flagged`` (it is among the
labels most likely to be wrong) and ``doubt`` (the weakest point of its evidence, in words).
This module is their one owner: whatever writes a label sets the three from one
:class:`Judgement`, made by the function of the label's source:

======================================  =============================  ===================
source                                  function                       confidence, flagged
======================================  =============================  ===================
``override``, ``imported``, ``edited``  :func:`of_person`              1, never flagged
``prompted``                            :func:`of_person`              1, never flagged
``pick``                                :func:`of_pick` (the pick)     the policy's
``refined``                             :func:`of_refined` (evidence)  the vote's evidence
``refined``, its evidence lost          :func:`unknown` (reason)       None, flagged
======================================  =============================  ===================

Which evidence depends on who made the label:

- ``override``, ``imported``, ``edited``, ``prompted``: a person chose or drew it (or clicked
  the prompts it was drawn from): confidence 1, never flagged.
- ``pick`` (the policy's choice): the policy's own confidence (:mod:`seglib.masks.policy`: how good
  the best mask is and its margin over a rival), flagged below ``policy.FLAG_BELOW`` or when the
  mask enters the frame from the top.
- ``refined`` (:mod:`seglib.refine`): the evidence of the five views that voted on it,
  :class:`Evidence`, turned into a probability by a logistic model::

      confidence = 1 / (1 + exp(-z))
      z = B0 + B_AGREE · agree + B_DISAGREE · disagree + B_UNSURE · unsure
             + B_MOVED · moved + B_PICK · pick_confidence + B_TOP · top
             + B_BACKDROP · backdrop + B_WEAK_EDGE · weak_edge

  with the features of :class:`Evidence` (all in [0, 1]): five from the views and the network,
  two from the photo itself (:func:`backdrop`: how much of the label is coloured like the rest
  of the photo; :func:`weak_edge`: how much of its outline runs where the photo has no edge).
  The photo's two catch what the views cannot: a mistake the network learned from the other
  labels (the floor between two shoes seen from above, a box under a shoe), on which all five
  views agree. The slopes of the views' features were set from what each means before any
  label was graded; the photo's two slopes were chosen on a grid on 72 hand-graded shoe
  photos (set A); ``moved`` and ``top`` are recorded but carry no weight (on the graded
  refined labels they did not separate good from wrong). The intercept ``B0`` makes the
  expected number of bad labels (the sum of ``1 - confidence``) equal the number found by hand
  on set A, and ``FLAG_BELOW`` flags the 20 % least confident of them.
  ``bench/label_confidence.py`` scores it (and fits all coefficients, ``--fit``, ``--cross``)
  against true masks or hand grades; docs/benchmarks.md ("Label confidence") has the numbers,
  on 168 other graded photos (sets B and C) too. A refined label is flagged when its confidence is
  below ``FLAG_BELOW``; its ``doubt`` names the feature that lowers ``z`` the most against a
  label that has nothing to doubt (:data:`SURE`), when it lowers it by more than
  ``DOUBT_ABOVE``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import cv2
import numpy as np

from seglib.core.images import as_rgb
from seglib.masks.metrics import mask_iou
from seglib.masks.policy import FLAG_BELOW as FLAG_PICK_BELOW
from seglib.masks.policy import FLAG_FROM_TOP, Pick, confidence_factors, from_top
from seglib.masks.shapes import LAB_COLOURS, lab_bins

# logistic model of P(good label) for refined labels (module docstring; bench/label_confidence.py)
B0 = 2.3  # calibrated: expected bad labels = the graded count on 72 shoe photos (set A)
B_AGREE = 4.0  # mean IoU of the five views with the label
B_DISAGREE = -4.0  # share of the label where the network and the pick disagree
B_UNSURE = -4.0  # share of the label's outline where the network is unsure
B_MOVED = 0.0  # 1 - IoU(label, pick) (recorded, no weight)
B_PICK = 1.0  # the policy's confidence in the pick the label was refined from
B_TOP = 0.0  # the label enters the frame from the top (recorded, no weight)
B_BACKDROP = -8.0  # share of the label coloured like the rest of the photo (backdrop())
B_WEAK_EDGE = -10.0  # share of the outline where the photo has no edge (weak_edge())
FLAG_BELOW = 0.72  # a refined label below this confidence is flagged (20 % of set A)
DOUBT_ABOVE = 0.5  # a feature is named when it lowers z by more (the odds by 40 % or more)
UNSURE_LOW, UNSURE_HIGH = 0.2, 0.8  # the network is unsure where p lies between these
OUTLINE_PX = 2  # the outline band: pixels within this many of the label's edge (at 240 px)
EDGE_SIGMA = 1.0  # Gaussian blur (px at 240 px) before weak_edge()'s gradient
WEAK_BELOW = 0.5  # an outline pixel is weak where the gradient is below this × the photo's p90
WEAK_FLOOR = 10.0  # ... or below this (a flat photo has no p90 to speak of)


@dataclass
class Evidence:
    """What the views of a refined label, and its photo, say about it (each in [0, 1])."""

    agree: float  # mean IoU of the five views (pick, network, closest, two GrabCuts) with it
    disagree: float  # pixels where the network (p > 0.5) and the pick differ / label's pixels
    # ("the pick" is the label the round started from: the policy's pick in round 1, the
    # round-1 label in round 2; pick_confidence is always the policy's)
    unsure: float  # share of the outline band where the network's p is between 0.2 and 0.8
    moved: float  # 1 - IoU(label, pick): how far refinement moved it
    pick_confidence: float  # the policy's confidence in the pick
    top: float  # 1 when the label enters the frame from the top, else 0
    # what the photo itself says (0 in evidence recorded by an older seglib)
    backdrop: float = 0.0  # share of the label coloured like the rest of the photo
    weak_edge: float = 0.0  # share of the label's outline where the photo has no edge

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


# a label with nothing to doubt: the reference each feature's share of z is measured from
SURE = Evidence(agree=1.0, disagree=0.0, unsure=0.0, moved=0.0, pick_confidence=1.0, top=0.0)
COEFFICIENTS = {"agree": B_AGREE, "disagree": B_DISAGREE, "unsure": B_UNSURE,
                "moved": B_MOVED, "pick_confidence": B_PICK, "top": B_TOP,
                "backdrop": B_BACKDROP, "weak_edge": B_WEAK_EDGE}


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels within ``OUTLINE_PX`` (scaled to the mask's size) of the mask's edge."""
    m8 = np.asarray(mask, dtype=np.uint8)
    r = max(1, round(OUTLINE_PX * max(m8.shape) / 240))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(m8, k) != cv2.erode(m8, k)


def enters_from_top(mask: np.ndarray) -> bool:
    """Whether ``mask`` enters the frame from the top, as the policy flags a pick
    (:func:`seglib.masks.policy.from_top` above ``FLAG_FROM_TOP``)."""
    return from_top(mask) > FLAG_FROM_TOP


def _same_size(image: np.ndarray, label: np.ndarray) -> np.ndarray:
    label = np.asarray(label, dtype=bool)
    if np.shape(image)[:2] != label.shape:
        raise ValueError(f"label {label.shape} and photo {np.shape(image)[:2]} differ in size")
    return label


def backdrop(image: np.ndarray, label: np.ndarray) -> float:
    """How much of ``label`` (bool H×W) is coloured like the rest of ``image`` (RGB uint8
    H×W×3, the same size).

    The mean over the label's pixels of P(outside | colour), from two colour histograms
    (:func:`seglib.masks.shapes.lab_bins`, +0.5 per bin) of the label and of the rest of the
    photo: near 0 when the label's colours are its own, high when it swallowed a piece of the
    floor or of the backdrop between two shoes. 0 for an empty or full-frame label.
    """
    label = _same_size(image, label)
    if not label.any() or label.all():
        return 0.0
    colour = lab_bins(cv2.cvtColor(as_rgb(image), cv2.COLOR_RGB2LAB))
    inside = np.bincount(colour[label], minlength=LAB_COLOURS) + 0.5
    outside = np.bincount(colour[~label], minlength=LAB_COLOURS) + 0.5
    p_in, p_out = (inside / inside.sum())[colour[label]], (outside / outside.sum())[colour[label]]
    return float(np.mean(p_out / (p_in + p_out)))


def weak_edge(image: np.ndarray, label: np.ndarray) -> float:
    """The share of ``label``'s outline (its edge pixels away from the frame's edge) where
    ``image`` (RGB uint8, the same size) has no edge: the CIELAB gradient (after a Gaussian
    blur of ``EDGE_SIGMA``), its maximum within one pixel, is below ``WEAK_BELOW`` × the
    photo's 90th percentile, or below ``WEAK_FLOOR``. A label that cuts across a leg or
    across the floor has a weak outline there. 0 when the label has no outline inside the
    frame."""
    m8 = _same_size(image, label).astype(np.uint8)
    edge = m8 != cv2.erode(m8, np.ones((3, 3), np.uint8))
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = False
    if not edge.any():
        return 0.0
    sigma = EDGE_SIGMA * max(1.0, max(m8.shape) / 240)
    lab = cv2.GaussianBlur(cv2.cvtColor(as_rgb(image), cv2.COLOR_RGB2LAB).astype(np.float32),
                           (0, 0), sigma)
    gx, gy = cv2.Sobel(lab, cv2.CV_32F, 1, 0), cv2.Sobel(lab, cv2.CV_32F, 0, 1)
    grad = np.sqrt((gx ** 2 + gy ** 2).sum(axis=-1))
    near = cv2.dilate(grad, np.ones((3, 3), np.uint8))
    weak = max(WEAK_BELOW * float(np.percentile(grad, 90)), WEAK_FLOOR)
    return float(np.mean(near[edge] < weak))


def photo_evidence(image: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """What the photo itself says of ``label``: the :class:`Evidence` fields ``backdrop`` and
    ``weak_edge``."""
    return {"backdrop": backdrop(image, label), "weak_edge": weak_edge(image, label)}


def evidence(image: np.ndarray, label: np.ndarray, views: list[np.ndarray], prob: np.ndarray,
             pick: np.ndarray, pick_confidence: float | None) -> Evidence:
    """The :class:`Evidence` of ``label`` (bool H×W) on ``image`` (RGB, the same size) from
    the ``views`` that voted on it (bool or probability H×W; a probability counts as
    ``> 0.5``), the network's object probability ``prob`` and the ``pick`` it was refined
    from."""
    label = np.asarray(label, dtype=bool)
    pick = np.asarray(pick, dtype=bool)
    net = np.asarray(prob) > 0.5
    masks = [np.asarray(v) > 0.5 if np.asarray(v).dtype != bool else np.asarray(v)
             for v in views]
    area = max(int(np.count_nonzero(label)), 1)
    band = _outline(label)
    p_band = np.asarray(prob)[band]
    unsure = float(np.mean((p_band > UNSURE_LOW) & (p_band < UNSURE_HIGH))) if p_band.size else 1.0
    return Evidence(
        agree=float(np.mean([mask_iou(m, label) for m in masks])) if masks else 0.0,
        disagree=float(min(1.0, np.count_nonzero(net ^ pick) / area)),
        unsure=unsure,
        moved=float(1.0 - mask_iou(label, pick)),
        pick_confidence=float(np.clip(pick_confidence if pick_confidence is not None else 0.0,
                                      0, 1)),
        top=float(enters_from_top(label)),
        **photo_evidence(image, label),
    )


def _z(e: Evidence) -> float:
    return B0 + sum(c * getattr(e, k) for k, c in COEFFICIENTS.items())


def refined_confidence(e: Evidence) -> float:
    """Estimated P(the refined label is good) (module docstring)."""
    return 1.0 / (1.0 + math.exp(-_z(e)))


def doubt_words(e: Evidence) -> str:
    """The feature of ``e`` that lowers the confidence the most, in words ("" when none)."""
    losses = {k: c * (getattr(SURE, k) - getattr(e, k)) for k, c in COEFFICIENTS.items()}
    worst = max(losses, key=lambda k: losses[k])
    if losses[worst] <= DOUBT_ABOVE:
        return ""
    return {
        "agree": f"the five views agree on only {e.agree:.0%} of the label (mean IoU)",
        "disagree": (f"the network and the label it was refined from disagree on "
                     f"{e.disagree:.0%} of the object"),
        "unsure": f"the network is unsure along {e.unsure:.0%} of the outline",
        "moved": f"refinement moved {e.moved:.0%} of the pick",
        "pick_confidence": f"the policy was unsure of the pick ({e.pick_confidence:.2f})",
        "top": "it enters from the top: a leg, a hand or a box behind the object?",
        "backdrop": (f"{e.backdrop:.0%} of the label has the colours of the background (a "
                     f"floor, or the backdrop between two objects?)"),
        "weak_edge": f"{e.weak_edge:.0%} of the outline runs where the photo shows no edge",
    }[worst]


def pick_doubt(p: Pick) -> str:
    """Why the policy flagged its pick ``p``, in words ("" when it did not)."""
    if not p.flagged:
        return ""
    if not p.mask.any():
        return "no object found (empty mask)"
    c = p.scores
    if "rival" not in c:  # the seed policy: it flags background-like masks
        return "the pick looks like the background (most of the frame or of its edge)"
    if p.confidence >= FLAG_PICK_BELOW and c.get("from_top", 0.0) > FLAG_FROM_TOP:
        return "it enters from the top: a leg, a hand or a box behind the object?"
    top, rival = c.get("score", 0.0), c.get("rival", 0.0)
    strength, margin = confidence_factors(top, rival)  # name the factor that is smaller
    if margin < strength:
        return f"a rival mask scores almost as high ({rival:.2f} against {top:.2f})"
    return f"the best mask is weak (score {c.get('score', 0.0):.2f})"


class Judgement(NamedTuple):
    """A label's ``confidence``, ``flagged`` and ``doubt`` (the fields of its record)."""

    confidence: float | None  # estimated P(the label is good); None: unknown
    flagged: bool  # among the labels most likely to be wrong
    doubt: str  # the weakest point of its evidence, in words ("" when none)


def of_person() -> Judgement:
    """A label a person chose or drew (``override``, ``imported``, ``edited``,
    ``prompted``): sure."""
    return Judgement(1.0, False, "")


def of_pick(p: Pick, reason: str = "") -> Judgement:
    """The policy's pick ``p``: the policy's confidence and flag; its doubt is ``reason`` (why
    the pick was flagged beyond the policy: an ignored override, an empty mask) when flagged
    and given, else :func:`pick_doubt`."""
    return Judgement(float(p.confidence), bool(p.flagged),
                     reason if p.flagged and reason else pick_doubt(p))


def of_refined(e: Evidence) -> Judgement:
    """A refined label, from the :class:`Evidence` of the views that voted on it."""
    conf = refined_confidence(e)
    return Judgement(conf, conf < FLAG_BELOW, doubt_words(e))


def unknown(reason: str) -> Judgement:
    """A label whose evidence is lost: confidence unknown, flagged, ``reason`` as its doubt."""
    return Judgement(None, True, reason)
