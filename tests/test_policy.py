"""The primary-object pick on synthetic candidate sets, one per known failure mode."""

from __future__ import annotations

import numpy as np
import pytest

from seglib.core.errors import SeglibError
from seglib.masks.candidates import Candidates
from seglib.masks.policy import foreground_score, mask_for_choice, parse_choice, pick
from seglib.masks.shapes import clean_complement

H = W = 120


def ellipse(cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def rect(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def cands(*items: tuple[np.ndarray, float, float]) -> Candidates:
    return Candidates(
        masks=np.stack([m for m, _, _ in items]),
        predicted_iou=[p for _, p, _ in items],
        stability=[s for _, _, s in items],
        backend="test",
    )


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


SHOE = ellipse(64, 60, 18, 34)


def test_background_with_highest_predicted_iou() -> None:
    bg = ~SHOE
    c = cands((bg, 0.99, 0.98), (SHOE, 0.90, 0.92), (ellipse(60, 60, 5, 8), 0.8, 0.9))
    assert pick(c, "seed").chosen == "0"  # the original behaviour picks the background
    assert pick(c, "seed").flagged
    p = pick(c)
    assert iou(p.mask, SHOE) > 0.95
    assert p.chosen in ("1", "~0", "1+~0", "~0+1")


def test_foreground_rates_quality_by_the_backends_object_score_when_it_has_one() -> None:
    bg = ~SHOE
    masks = np.stack([bg, SHOE, ellipse(60, 60, 30, 40)])
    segment = [0.99, 0.6, 0.95]  # how clean a segment: the background wins, as with SAM
    with_obj = Candidates(masks, segment, segment, backend="opencv",
                          object_score=[0.0, 0.9, 0.2])
    without = Candidates(masks, segment, segment, backend="opencv")
    assert pick(with_obj, "seed").chosen == "0"  # seed never looks at object_score
    assert pick(with_obj).chosen == "1"  # the object estimate decides the foreground quality
    assert pick(without).chosen == "2"  # without it, the cleaner segment of object size wins


def test_only_background_offered_uses_its_complement() -> None:
    c = cands((~SHOE, 0.99, 0.98), (np.ones((H, W), bool), 0.7, 0.7))
    p = pick(c)
    assert p.chosen == "~0"
    assert iou(p.mask, SHOE) > 0.95


def test_shoe_box_behind_the_shoe() -> None:
    box = rect(0, 70, 20, 110) & ~SHOE  # box reaches the top edge, shoe occludes it
    box_and_shoe = box | SHOE
    c = cands((box, 0.98, 0.97), (box_and_shoe, 0.97, 0.96), (SHOE, 0.90, 0.93))
    p = pick(c)
    assert iou(p.mask, SHOE) > 0.95, p
    assert "2" in p.chosen.split("+")


def test_shoe_split_into_parts_is_merged() -> None:
    upper = SHOE & (np.mgrid[:H, :W][0] < 70)
    sole = SHOE & ~upper
    c = cands((upper, 0.92, 0.95), (sole, 0.90, 0.94), (~SHOE, 0.95, 0.95))
    p = pick(c)
    assert iou(p.mask, SHOE) > 0.95, p


def test_floor_strip_is_not_the_shoe() -> None:
    floor = rect(85, 120, 0, 120) & ~SHOE
    c = cands((floor, 0.99, 0.99), (SHOE, 0.88, 0.9), (rect(0, 85, 0, 120) & ~SHOE, 0.9, 0.9))
    p = pick(c)
    assert iou(p.mask, SHOE) > 0.95, p


def test_two_shoes_are_picked_as_a_pair() -> None:
    left = ellipse(60, 32, 16, 24)
    right = ellipse(66, 90, 16, 24)
    bg = ~(left | right)
    c = cands((bg, 0.99, 0.99), (left, 0.92, 0.93), (right, 0.90, 0.92))
    p = pick(c)
    assert iou(p.mask, left | right) > 0.95, p
    assert not p.flagged


def test_ambiguous_pick_is_flagged() -> None:
    wide = ellipse(64, 60, 34, 50)  # shoe + floor around it, as good a mask as the shoe
    c = cands((SHOE, 0.9, 0.9), (wide, 0.9, 0.9))
    p = pick(c)
    assert p.flagged and p.confidence < 0.35


def test_clear_pick_is_confident() -> None:
    c = cands((SHOE, 0.95, 0.95), (~SHOE, 0.97, 0.97), (rect(0, 10, 0, 120), 0.5, 0.5))
    p = pick(c)
    assert p.confidence > 0.6 and not p.flagged


def test_score_prefers_centre_and_moderate_size() -> None:
    centre = foreground_score(SHOE, 0.9, 0.9)["score"]
    corner = foreground_score(ellipse(20, 20, 12, 12), 0.9, 0.9)["score"]
    tiny = foreground_score(ellipse(60, 60, 2, 2), 0.9, 0.9)["score"]
    huge = foreground_score(rect(2, 118, 2, 118), 0.9, 0.9)["score"]
    assert centre > corner and centre > tiny and centre > huge


def test_override_and_choice_strings() -> None:
    c = cands((~SHOE, 0.99, 0.99), (SHOE, 0.9, 0.9), (rect(0, 10, 0, 10), 0.5, 0.5))
    p = pick(c, override=2)
    assert p.chosen == "2" and p.mask.sum() == 100 and p.confidence == 1.0
    assert iou(mask_for_choice(c, "~0"), SHOE) > 0.95
    assert mask_for_choice(c, "1+2").sum() == SHOE.sum() + 100
    with pytest.raises(SeglibError):
        mask_for_choice(c, "7")
    with pytest.raises(SeglibError):
        pick(c, "biggest")


@pytest.mark.parametrize(("text", "parts"), [
    ("3", [(3, False)]), (4, [(4, False)]), (" ~0 ", [(0, True)]),
    ("2+5", [(2, False), (5, False)]), ("~1 + 12", [(1, True), (12, False)]),
])
def test_parse_choice_reads_the_three_forms(text: str | int, parts: list) -> None:
    assert parse_choice(text) == parts


@pytest.mark.parametrize("text", ["", "a", "2+", "+2", "~", "~~1", "-1", "1.5", "²", "~ 1"])
def test_parse_choice_refuses_anything_else_in_one_line(text: str) -> None:
    with pytest.raises(SeglibError, match="expected a number like 3, ~0 or 2[+]5") as err:
        parse_choice(text)
    assert "\n" not in str(err.value)


def test_mask_for_choice_names_an_out_of_range_candidate() -> None:
    c = cands((SHOE, 0.9, 0.9), (~SHOE, 0.9, 0.9))
    with pytest.raises(SeglibError, match=r"candidate '~2': expected a number 0..1"):
        mask_for_choice(c, "0+~2")


def test_clean_complement_drops_specks_and_fills_holes() -> None:
    bg = ~SHOE
    bg[60:63, 58:61] = True  # a hole inside the object
    bg &= ~rect(2, 4, 2, 4)  # a speck of non-background in a corner
    comp = clean_complement(bg)
    assert comp[61, 59] and not comp[3, 3]
    assert iou(comp, SHOE) > 0.99


def test_empty_candidate_set() -> None:
    c = Candidates(np.zeros((0, 8, 8), bool), [], [])
    p = pick(c)
    assert p.flagged and not p.mask.any() and p.mask.shape == (8, 8)


def test_a_pick_entering_from_the_top_is_flagged() -> None:
    leg = rect(0, 60, 50, 70)
    c = cands((SHOE | leg, 0.95, 0.95), (~(SHOE | leg), 0.97, 0.97))
    p = pick(c)
    assert p.mask[5, 60] and p.flagged and p.scores["from_top"] > 0.04
    assert not pick(cands((SHOE, 0.95, 0.95), (~SHOE, 0.97, 0.97))).flagged
