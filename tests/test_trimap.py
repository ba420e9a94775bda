"""The vectorized trimap must equal the original pixel loops, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from seglib.core.errors import SeglibError
from seglib.masks.trimap import (
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


def _blobs(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A few filled ellipses and a thin line: outlines at every angle and a 1-px structure."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    m = np.zeros(shape, bool)
    for _ in range(3):
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        ry, rx = rng.uniform(0.05, 0.3) * h, rng.uniform(0.05, 0.3) * w
        m |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    m[rng.integers(h), :] = True
    return m


def _mixed_footprint(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Output pixels whose source area (widened by one source pixel) holds both values."""
    h, w = m.shape
    oh, ow = size
    ii = np.pad(np.cumsum(np.cumsum(m, 0), 1), ((1, 0), (1, 0)))
    i, j = np.arange(oh), np.arange(ow)
    y0 = np.maximum(0, (i * h // oh) - 1)[:, None]
    y1 = np.minimum(h, -(-(i + 1) * h // oh) + 1)[:, None]
    x0 = np.maximum(0, (j * w // ow) - 1)[None, :]
    x1 = np.minimum(w, -(-(j + 1) * w // ow) + 1)[None, :]
    n = ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]
    return (n > 0) & (n < (y1 - y0) * (x1 - x0))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("shape", "side"), [((480, 640), 128), ((1200, 900), 160),
                                              ((301, 97), 128), ((130, 129), 128)])
def test_resize_mask_shrinks_as_the_policy_and_the_candidates_always_did(
        shape: tuple[int, int], side: int, seed: int) -> None:
    import cv2

    from seglib.core.images import fit_size
    from seglib.masks.trimap import resize_mask

    m = _blobs(shape, seed)
    h, w = shape
    s = side / max(h, w)  # the policy's and opencv_candidates' own shrinking, as it was
    old = cv2.resize(m.astype(np.uint8), (max(1, round(w * s)), max(1, round(h * s))),
                     interpolation=cv2.INTER_AREA) > 0
    assert np.array_equal(resize_mask(m, fit_size(m.shape, side)), old)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("shape", "size"), [((160, 120), (640, 480)), ((90, 160), (240, 427)),
                                             ((7, 5), (8, 5)), ((100, 100), (80, 130))])
def test_resize_mask_grows_as_it_always_did(shape: tuple[int, int], size: tuple[int, int],
                                            seed: int) -> None:
    import cv2

    from seglib.masks.trimap import resize_mask

    m = _blobs(shape, seed)
    old = cv2.resize(m.astype(np.uint8) * 255, size[::-1], interpolation=cv2.INTER_LINEAR) > 127
    assert np.array_equal(resize_mask(m, size), old)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("shape", "size"), [((640, 480), (160, 120)), ((600, 800), (128, 171)),
                                             ((1000, 750), (480, 360))])
def test_resize_mask_shrinking_differs_from_the_old_twins_only_at_the_outline(
        shape: tuple[int, int], size: tuple[int, int], seed: int) -> None:
    """Shrinking used to be bilinear (refining a large photo's label), nearest neighbour
    (``shrink_mask``, the reviewer's true masks) or area; now it is area everywhere. The others
    differ from it only at output pixels whose source area holds both object and background."""
    import cv2

    from seglib.masks.metrics import mask_iou
    from seglib.masks.trimap import resize_mask

    m = _blobs(shape, seed)
    new = resize_mask(m, size)
    mixed = _mixed_footprint(m, size)
    for flags in (cv2.INTER_LINEAR, cv2.INTER_NEAREST):
        old = cv2.resize(m.astype(np.uint8) * 255, size[::-1], interpolation=flags) > 127
        assert not (old != new)[~mixed].any()
        assert mask_iou(old, new) > 0.9
    assert mixed.mean() < 0.25  # the outline is a thin band, not the whole picture


def test_resize_mask_reaches_the_size_and_keeps_a_same_size_mask() -> None:
    from seglib.masks.trimap import resize_mask

    m = np.zeros((40, 60), bool)
    m[10:30, 20:40] = True
    big = resize_mask(m, (80, 120))
    assert big.shape == (80, 120) and big.dtype == bool
    assert abs(big.mean() - m.mean()) < 0.01
    assert resize_mask(m, (40, 60)) is m
    small = resize_mask(np.kron(m, np.ones((100, 100), bool)), (320, 480))  # 4000 x 6000
    assert small.shape == (320, 480) and abs(small.mean() - m.mean()) < 0.01
