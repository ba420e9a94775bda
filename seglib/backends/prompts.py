"""Prompts a person gives to redraw one photo's mask: positive and negative points and a box.

A :class:`Prompter` answers :class:`Prompts` with a mask at the photo's size. It is told the
photo once (:meth:`Prompter.set_photo`: the per-photo work, SAM's image embedding, is done
there and cached by the photo's pixels, so a second ``set_photo`` of the same pixels costs
nothing) and then each click is one :meth:`Prompter.mask` call (SAM: the prompt decoder only).

:class:`OpencvPrompter` needs no checkpoint: OpenCV GrabCut seeded by the prompts (a box:
outside it sure background; a positive point: a small disc of sure object; a negative point:
a disc of sure background; points without a box: probable background everywhere and a
generous rectangle around the positive points as probable object), run on the photo shrunk
to at most ``work_side`` px, then the connected parts of the object that hold a positive point
(or, with a box only, the large ones) are kept, holes filled, and the mask is grown back to
the photo's size. The SAM prompters are in :mod:`seglib.backends.sam_prompter`;
:func:`seglib.backends.open_prompter` builds any of them by backend name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from seglib.core.errors import SeglibError
from seglib.core.images import as_rgb, fit_size, pixels_sha256, resize_image
from seglib.masks.shapes import fill_holes, grabcut, large_components
from seglib.masks.trimap import resize_mask

Point = tuple[float, float]
Box = tuple[float, float, float, float]


def _point(p: object) -> Point:
    x, y = p  # type: ignore[misc]
    return float(x), float(y)


@dataclass(frozen=True)
class Prompts:
    """Points and a box in the photo's pixels (x, y; the trimap's size): ``positive`` points
    on the object, ``negative`` points off it, ``box`` = (x0, y0, x1, y1) around it."""

    positive: tuple[Point, ...] = ()
    negative: tuple[Point, ...] = ()
    box: Box | None = None

    def __post_init__(self) -> None:  # floats, tuples: equal prompts compare and print equal
        object.__setattr__(self, "positive", tuple(_point(p) for p in self.positive))
        object.__setattr__(self, "negative", tuple(_point(p) for p in self.negative))
        if self.box is not None:
            b = tuple(float(v) for v in self.box)
            if len(b) != 4:
                raise SeglibError(f"a box is x0 y0 x1 y1 (4 numbers), got {len(b)}")
            object.__setattr__(self, "box", b)
        bad = [v for p in (*self.positive, *self.negative) for v in p] + list(self.box or ())
        if any(not math.isfinite(v) for v in bad):
            raise SeglibError("a prompt's coordinates must be finite numbers")

    def is_empty(self) -> bool:
        """No point and no box."""
        return not self.positive and not self.negative and self.box is None

    def to_json(self) -> str:
        """Compact and stable: the same prompts give the same text."""
        data = {"box": list(self.box) if self.box is not None else None,
                "negative": [list(p) for p in self.negative],
                "positive": [list(p) for p in self.positive]}
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Prompts:
        """The prompts :meth:`to_json` wrote; :class:`SeglibError` for other text."""
        try:
            data = json.loads(text)
            return cls(positive=tuple(data.get("positive") or ()),
                       negative=tuple(data.get("negative") or ()), box=data.get("box"))
        except (ValueError, TypeError, AttributeError) as exc:
            raise SeglibError(f"prompts {text[:60]!r} are not prompts seglib wrote ({exc})"
                              ) from None

    def checked(self, size: tuple[int, int]) -> Prompts:
        """These prompts for a photo of ``size`` (height, width), the box clipped to it; one
        :class:`SeglibError` line for empty prompts, a point outside the photo or a box that
        does not overlap it."""
        h, w = size
        if self.is_empty():
            raise SeglibError("no prompt: give a box, or a positive or negative point")
        if not self.positive and self.box is None:
            raise SeglibError("only negative points: add a positive point or a box on the object")
        for x, y in (*self.positive, *self.negative):
            if not (0 <= x < w and 0 <= y < h):
                raise SeglibError(f"point ({x:g}, {y:g}) is outside the {w}x{h} photo")
        if self.box is None:
            return self
        x0, y0, x1, y1 = self.box
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h))
        if cx1 - cx0 < 1 or cy1 - cy0 < 1:
            raise SeglibError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) does not overlap the "
                              f"{w}x{h} photo (x0 y0 x1 y1 in its pixels)")
        return Prompts(self.positive, self.negative, (cx0, cy0, cx1, cy1))

    def scaled(self, sx: float, sy: float) -> Prompts:
        """The prompts with x multiplied by ``sx`` and y by ``sy``."""
        box = None if self.box is None else (self.box[0] * sx, self.box[1] * sy,
                                             self.box[2] * sx, self.box[3] * sy)
        return Prompts(tuple((x * sx, y * sy) for x, y in self.positive),
                       tuple((x * sx, y * sy) for x, y in self.negative), box)


@runtime_checkable
class Prompter(Protocol):
    """Redraws a photo's mask from prompts; see the module's docstring."""

    description: str  # the model, in one line (recorded with the prompts)

    def set_photo(self, rgb: np.ndarray) -> None: ...

    def mask(self, prompts: Prompts) -> np.ndarray: ...


class PhotoCache:
    """The photo a prompter was last told, keyed by its pixels (``pixels_sha256``)."""

    def __init__(self) -> None:
        self.key = ""
        self.rgb: np.ndarray | None = None
        self.photos_set = 0  # how many times the per-photo work was done

    def changed(self, rgb: np.ndarray) -> bool:
        """Whether ``rgb`` is another photo than the last one (then it becomes the last)."""
        rgb = as_rgb(rgb)
        key = pixels_sha256(rgb)
        if key == self.key:
            return False
        self.key, self.rgb = key, np.ascontiguousarray(rgb)
        self.photos_set += 1
        return True

    def photo(self) -> np.ndarray:
        if self.rgb is None:
            raise SeglibError("no photo: call set_photo(rgb) before mask(prompts)")
        return self.rgb


class OpencvPrompter:
    """GrabCut seeded by the prompts (no checkpoint, no torch); see the module's docstring.

    ``work_side``: the longest side GrabCut runs at (the mask is grown back to the photo's
    size), ``iters``: GrabCut's iterations, ``disc``: a point's disc radius as a share of the
    working photo's longer side.
    """

    description = "opencv grabcut"
    backend = "opencv"

    def __init__(self, work_side: int = 320, iters: int = 5, disc: float = 0.02,
                 keep_components: bool = True) -> None:
        self.work_side, self.iters, self.disc = int(work_side), int(iters), float(disc)
        self.keep_components = keep_components
        self.cache = PhotoCache()
        self._bgr: np.ndarray | None = None

    def set_photo(self, rgb: np.ndarray) -> None:
        if self.cache.changed(rgb):
            small = resize_image(self.cache.photo(), fit_size(rgb.shape, self.work_side))
            self._bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)

    def mask(self, prompts: Prompts) -> np.ndarray:
        photo = self.cache.photo()
        h, w = photo.shape[:2]
        prompts = prompts.checked((h, w))
        bgr = self._bgr
        assert bgr is not None
        sh, sw = bgr.shape[:2]
        small = prompts.scaled(sw / w, sh / h)
        seed = grabcut_seed((sh, sw), small, self.disc)
        obj = grabcut(bgr, mask=seed, iters=self.iters)
        if self.keep_components:
            obj = keep_prompted(obj, small)
        return resize_mask(obj, (h, w))


def grabcut_seed(size: tuple[int, int], prompts: Prompts, disc: float = 0.02) -> np.ndarray:
    """GrabCut's GC_* seed mask (uint8 ``size``) for ``prompts`` (in that size's pixels)."""
    h, w = size
    r = max(2, round(disc * max(h, w)))
    if prompts.box is not None:
        seed = np.full((h, w), cv2.GC_BGD, np.uint8)
        x0, y0, x1, y1 = (round(v) for v in prompts.box)
        seed[max(y0, 0):max(y1, y0 + 1), max(x0, 0):max(x1, x0 + 1)] = cv2.GC_PR_FGD
    else:
        seed = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
        xs = [x for x, _ in prompts.positive]
        ys = [y for _, y in prompts.positive]
        mx, my = 0.25 * w, 0.25 * h  # generous: the object reaches beyond the clicks
        x0, x1 = max(0, round(min(xs) - mx)), min(w, round(max(xs) + mx) + 1)
        y0, y1 = max(0, round(min(ys) - my)), min(h, round(max(ys) + my) + 1)
        seed[y0:y1, x0:x1] = cv2.GC_PR_FGD
    for points, value in ((prompts.negative, cv2.GC_BGD), (prompts.positive, cv2.GC_FGD)):
        for x, y in points:
            cv2.circle(seed, (int(x), int(y)), r, int(value), -1)
    return seed


def keep_prompted(mask: np.ndarray, prompts: Prompts) -> np.ndarray:
    """The parts of ``mask`` the prompts ask for, holes filled (but never a hole holding a
    negative point: the person said it is not the object): the connected components holding a
    positive point; with none hit (or no positive point), the large ones
    (:func:`~seglib.masks.shapes.large_components`) inside the box."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return m
    n, lab = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
    hit = {int(lab[int(y), int(x)]) for x, y in prompts.positive} - {0}
    kept = (np.isin(lab, sorted(hit)) if hit
            else large_components(m, min_share=0.2, connectivity=8) & m)
    return kept | (fill_holes(kept) & ~negative_holes(kept, prompts.negative))


def negative_holes(mask: np.ndarray, negative: tuple[Point, ...]) -> np.ndarray:
    """The holes of ``mask`` (regions of ``~mask`` not reaching the frame) that hold one of
    the ``negative`` points (bool, ``mask``'s size)."""
    holes = fill_holes(mask) & ~mask
    if not negative or not holes.any():
        return np.zeros_like(holes)
    _, lab = cv2.connectedComponents(holes.astype(np.uint8), connectivity=4)
    said = {int(lab[int(y), int(x)]) for x, y in negative} - {0}
    return np.isin(lab, sorted(said))
