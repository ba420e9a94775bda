"""How sure a label is: the confidence of the label actually written, and why it is doubtful.

Every label in ``labels.csv`` carries ``confidence`` (an estimate of the probability that the
label is good: object IoU >= 0.8 against a careful hand mask), ``flagged`` (it is among the
labels most likely to be wrong) and ``doubt`` (the weakest point of its evidence, in words).
Which evidence depends on who made the label:

- ``override``, ``imported``, ``edited``: a person chose or drew it: confidence 1, never
  flagged.
- ``pick`` (the policy's choice): the policy's own confidence (:mod:`seglib.policy`: how good
  the best mask is and its margin over a rival), flagged below ``policy.FLAG_BELOW`` or when the
  mask enters the frame from the top.
- ``refined`` (:mod:`seglib.refine`): the evidence of the five views that voted on it,
  :class:`Evidence`, turned into a probability by a logistic model::

      confidence = 1 / (1 + exp(-z))
      z = B0 + B_AGREE · agree + B_DISAGREE · disagree + B_UNSURE · unsure
             + B_MOVED · moved + B_PICK · pick_confidence + B_TOP · top

  with the features of :class:`Evidence` (all in [0, 1]). The slopes were set from what each
  feature means before any label was scored (agreement counts for the label, disagreement and
  an unsure outline against it); the intercept ``B0`` makes the expected number of bad labels
  (the sum of ``1 - confidence``) equal the number found by hand on 72 audited shoe photos,
  and ``FLAG_BELOW`` flags about the 20 % least confident of them. ``bench/label_confidence.py``
  scores it (and fits all coefficients, ``--fit``) against true masks or hand grades;
  docs/benchmarks.md ("Label confidence") has the numbers, on 72 other audited photos too. A
  refined label is flagged when its confidence is below ``FLAG_BELOW``; its ``doubt`` names
  the feature that lowers ``z`` the most against a label that has nothing to doubt
  (:data:`SURE`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from seglib.metrics import mask_iou
from seglib.policy import FLAG_BELOW as FLAG_PICK_BELOW
from seglib.policy import FLAG_FROM_TOP, Pick, confidence_factors, from_top

# logistic model of P(good label) for refined labels (module docstring; bench/label_confidence.py)
B0 = 0.5  # calibrated: expected bad labels = the audited count on 72 shoe photos
B_AGREE = 4.0  # mean IoU of the five views with the label
B_DISAGREE = -4.0  # share of the label where the network and the pick disagree
B_UNSURE = -4.0  # share of the label's outline where the network is unsure
B_MOVED = 0.0  # 1 - IoU(label, pick)
B_PICK = 1.0  # the policy's confidence in the pick the label was refined from
B_TOP = -2.0  # the label enters the frame from the top (a leg, a hand, a box behind it)
FLAG_BELOW = 0.75  # a refined label below this confidence is flagged (~20 % of the audited)
UNSURE_LOW, UNSURE_HIGH = 0.2, 0.8  # the network is unsure where p lies between these
OUTLINE_PX = 2  # the outline band: pixels within this many of the label's edge (at 240 px)


@dataclass
class Evidence:
    """What the views of a refined label say about it (each in [0, 1])."""

    agree: float  # mean IoU of the five views (pick, network, closest, two GrabCuts) with it
    disagree: float  # pixels where the network (p > 0.5) and the pick differ / label's pixels
    # ("the pick" is the label the round started from: the policy's pick in round 1, the
    # round-1 label in round 2; pick_confidence is always the policy's)
    unsure: float  # share of the outline band where the network's p is between 0.2 and 0.8
    moved: float  # 1 - IoU(label, pick): how far refinement moved it
    pick_confidence: float  # the policy's confidence in the pick
    top: float  # 1 when the label enters the frame from the top, else 0

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


# a label with nothing to doubt: the reference each feature's share of z is measured from
SURE = Evidence(agree=1.0, disagree=0.0, unsure=0.0, moved=0.0, pick_confidence=1.0, top=0.0)
COEFFICIENTS = {"agree": B_AGREE, "disagree": B_DISAGREE, "unsure": B_UNSURE,
                "moved": B_MOVED, "pick_confidence": B_PICK, "top": B_TOP}


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels within ``OUTLINE_PX`` (scaled to the mask's size) of the mask's edge."""
    m8 = np.asarray(mask, dtype=np.uint8)
    r = max(1, round(OUTLINE_PX * max(m8.shape) / 240))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(m8, k) != cv2.erode(m8, k)


def enters_from_top(mask: np.ndarray) -> bool:
    """Whether ``mask`` enters the frame from the top, as the policy flags a pick
    (:func:`seglib.policy.from_top` above ``FLAG_FROM_TOP``)."""
    return from_top(mask) > FLAG_FROM_TOP


def evidence(label: np.ndarray, views: list[np.ndarray], prob: np.ndarray, pick: np.ndarray,
             pick_confidence: float | None) -> Evidence:
    """The :class:`Evidence` of ``label`` (bool H×W) from the ``views`` that voted on it (bool
    or probability H×W; a probability counts as ``> 0.5``), the network's object probability
    ``prob`` and the ``pick`` it was refined from."""
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
    if losses[worst] <= 0.05:
        return ""
    return {
        "agree": f"the five views agree on only {e.agree:.0%} of the label (mean IoU)",
        "disagree": (f"the network and the label it was refined from disagree on "
                     f"{e.disagree:.0%} of the object"),
        "unsure": f"the network is unsure along {e.unsure:.0%} of the outline",
        "moved": f"refinement moved {e.moved:.0%} of the pick",
        "pick_confidence": f"the policy was unsure of the pick ({e.pick_confidence:.2f})",
        "top": "it enters from the top: a leg, a hand or a box behind the object?",
    }[worst]


def judge_refined(e: Evidence) -> tuple[float, bool, str]:
    """(confidence, flagged, doubt) of a refined label from its evidence."""
    conf = refined_confidence(e)
    return conf, conf < FLAG_BELOW, doubt_words(e)


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
