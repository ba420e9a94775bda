"""The vectorized trimap must equal the original pixel loops, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from seglib.errors import SeglibError
from seglib.trimap import (
    BACKGROUND,
    BORDER,
    OBJECT,
    contour_scan_loops,
    load_trimap,
    mask_to_trimap,
    save_trimap,
    trimap_preview,
    trimap_to_mask,
)


def shapes() -> st.SearchStrategy[tuple[int, int]]:
    return st.tuples(st.integers(1, 24), st.integers(1, 24))


@settings(max_examples=300, deadline=None)
@given(arrays(np.bool_, shapes()))
def test_vectorized_equals_loops_on_random_masks(mask: np.ndarray) -> None:
    assert np.array_equal(mask_to_trimap(mask), contour_scan_loops(mask))


@settings(max_examples=100, deadline=None)
@given(arrays(np.uint8, shapes(), elements=st.integers(0, 1)))
def test_vectorized_equals_loops_on_01_integer_masks(mask: np.ndarray) -> None:
    assert np.array_equal(mask_to_trimap(mask), contour_scan_loops(mask))


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 40), st.integers(2, 40), st.data())
def test_vectorized_equals_loops_on_blobs(h: int, w: int, data: st.DataObject) -> None:
    """Solid rectangles (like a shoe) anywhere, including touching the image edges."""
    mask = np.zeros((h, w), bool)
    for _ in range(data.draw(st.integers(1, 3))):
        r0, r1 = sorted(data.draw(st.tuples(st.integers(0, h), st.integers(0, h))))
        c0, c1 = sorted(data.draw(st.tuples(st.integers(0, w), st.integers(0, w))))
        mask[r0:r1, c0:c1] = True
    assert np.array_equal(mask_to_trimap(mask), contour_scan_loops(mask))


EDGE_CASES = {
    "empty": np.zeros((7, 9), bool),
    "full": np.ones((7, 9), bool),
    "one pixel": np.pad(np.ones((1, 1), bool), ((3, 3), (4, 4))),
    "one pixel corner": np.pad(np.ones((1, 1), bool), ((0, 5), (0, 5))),
    "touching every edge": np.pad(np.zeros((3, 3), bool), 2, constant_values=True),
    "cross touching edges": np.add.outer(np.arange(9) == 4, np.arange(11) == 5) > 0,
    "non-square": np.tri(5, 13, 2, dtype=bool),
    "1xN": np.array([[0, 1, 1, 0, 0, 1, 0, 1]], bool),
    "Nx1": np.array([[0], [1], [1], [0], [1]], bool),
    "1x1 object": np.ones((1, 1), bool),
    "1x1 background": np.zeros((1, 1), bool),
    "checkerboard": (np.add.outer(np.arange(6), np.arange(8)) % 2).astype(bool),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases(name: str) -> None:
    mask = EDGE_CASES[name]
    out = mask_to_trimap(mask)
    assert out.dtype == np.uint8 and out.shape == mask.shape
    assert np.array_equal(out, contour_scan_loops(mask))


def test_known_small_example() -> None:
    mask = np.array(
        [
            [0, 0, 0, 0, 0],
            [0, 1, 1, 0, 0],
            [0, 1, 1, 0, 0],
            [0, 0, 0, 0, 0],
        ]
    )
    expected = np.array(
        [
            [2, 3, 3, 2, 2],
            [3, 1, 1, 3, 2],
            [3, 1, 1, 3, 2],
            [2, 3, 3, 2, 2],
        ]
    )
    assert np.array_equal(mask_to_trimap(mask), expected)
    assert np.array_equal(contour_scan_loops(mask), expected)


def test_labels_are_the_pet_dataset_ones() -> None:
    assert (OBJECT, BACKGROUND, BORDER) == (1, 2, 3)


def test_wider_border_grows_ring_and_keeps_object() -> None:
    mask = np.zeros((21, 21), bool)
    mask[8:13, 8:13] = True
    t1, t3 = mask_to_trimap(mask), mask_to_trimap(mask, width=3)
    assert np.array_equal(t1 == OBJECT, mask) and np.array_equal(t3 == OBJECT, mask)
    assert (t3 == BORDER).sum() > (t1 == BORDER).sum()
    assert t3[8 - 3, 10] == BORDER and t3[8 - 4, 10] == BACKGROUND


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((4, 4, 3), np.uint8), "2-D"),
        (np.full((4, 4), 255, np.uint8), "threshold"),
        (np.zeros((0, 5), bool), "empty"),
        (np.full((3, 3), 0.5), "threshold"),
        (np.array([[-1, 0], [1, 0]]), "0/1"),
    ],
)
def test_bad_masks_raise_clear_value_error(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        mask_to_trimap(bad)


def test_threshold_accepts_0_255_masks() -> None:
    mask = np.zeros((6, 6), np.uint8)
    mask[2:4, 2:4] = 255
    assert np.array_equal(mask_to_trimap(mask, threshold=127), mask_to_trimap(mask > 0))


def test_save_load_roundtrip_and_validation(tmp_path) -> None:
    mask = np.zeros((10, 12), bool)
    mask[3:7, 2:9] = True
    t = mask_to_trimap(mask)
    path = save_trimap(tmp_path / "a.png", t)
    assert np.array_equal(load_trimap(path), t)
    assert not list(tmp_path.glob(".*.tmp")), "temp file left behind"
    with pytest.raises(SeglibError, match="labels must be"):
        save_trimap(tmp_path / "b.png", trimap_preview(t))
    (tmp_path / "c.png").write_bytes(b"not a png")
    with pytest.raises(SeglibError, match="not a readable"):
        load_trimap(tmp_path / "c.png")


def test_preview_and_mask_roundtrip() -> None:
    t = np.array([[1, 2, 3]], np.uint8)
    assert trimap_preview(t).tolist() == [[0, 127, 254]]
    assert trimap_to_mask(t).tolist() == [[True, False, False]]


def test_input_mask_is_not_modified() -> None:
    mask = np.zeros((5, 5), bool)
    mask[2, 2] = True
    before = mask.copy()
    mask_to_trimap(mask)
    contour_scan_loops(mask)
    assert np.array_equal(mask, before)


def test_shrink_mask_caps_the_longer_side_and_keeps_small_masks() -> None:
    from seglib.trimap import shrink_mask

    big = np.zeros((4000, 6000), bool)
    big[1000:3000, 2000:4000] = True
    small = shrink_mask(big, 480)
    assert small.shape == (320, 480) and small.dtype == bool
    assert abs(small.mean() - big.mean()) < 0.01
    tiny = np.eye(5, dtype=bool)
    assert shrink_mask(tiny, 480) is not None and np.array_equal(shrink_mask(tiny, 480), tiny)


def test_resize_mask_reaches_the_size_and_keeps_a_same_size_mask() -> None:
    from seglib.trimap import resize_mask

    m = np.zeros((40, 60), bool)
    m[10:30, 20:40] = True
    big = resize_mask(m, (80, 120))
    assert big.shape == (80, 120) and big.dtype == bool
    assert abs(big.mean() - m.mean()) < 0.01
    assert resize_mask(m, (40, 60)) is m
