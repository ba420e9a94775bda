"""The embedded sample: synthetic product-style photos of a sneaker with their true masks.

Every photo is drawn from polygons: a sole, an upper with a curved collar, heel and tongue, a
toe cap, laces, panels and a logo (swoosh, stripes or an ankle patch) in varied colours and
patterns, placed at a random scale, position, facing and slight rotation on a plain, gradient or
textured background with a soft shadow. The true mask is rendered from the *same* polygons as
the shoe (4×4 supersampled, a pixel is object when at least half of it is covered), so it is
known exactly; the photo gets antialiased edges, a slight blur and sensor noise.

Some kinds add what fools a naive "pick the biggest thing" labeller:

- ``box``: a shoe box behind the shoe (a large coloured rectangle with a lid),
- ``floor``: a floor strip (boards, concrete, tiles) across the bottom edge,
- ``leg``: a trouser leg entering from the top edge down into the shoe opening,
- ``pair``: a second shoe of the same pair, half hidden behind the first.

The true mask is the shoe only: the box, the floor and the leg are background. For ``pair``
both shoes are the object (as in labelled product photos of a pair).
:class:`SamplePhoto` also carries the visible pixels of the distractor, for tests.

``make_photo(rng, size, kind)`` draws one photo; ``write_sample(out, n, seed)`` writes a folder
(``python -m seglib sample``); ``sample_photo(i, seed)`` redraws photo ``i`` of such a folder.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from seglib.core.errors import SeglibError
from seglib.core.files import encode_jpeg, encode_png, file_sha256, write_bytes_atomic
from seglib.core.folders import MARKER, folder_kind, read_json, refuse_output, write_json
from seglib.masks.trimap import mask_to_trimap

KINDS = ("plain", "gradient", "textured", "box", "floor", "leg", "pair")
CSV_FIELDS = ("name", "kind", "seed", "object_fraction")
JPEG_QUALITY = 92

_SS = 4  # supersampling factor for coverage (antialiasing and the exact mask)
_SEAM_KERNEL = np.ones((2, 2), np.uint8)
Color = tuple[float, float, float]
Field = np.ndarray  # H×W×3 float32 colour field


@dataclass
class SamplePhoto:
    """One synthetic photo: RGB uint8 image, its true mask (the shoe only) and its kind."""

    image: np.ndarray
    mask: np.ndarray
    kind: str
    distractor: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    """Visible pixels of the box / floor / leg (all False for other kinds)."""

    def __post_init__(self) -> None:
        if self.distractor.shape != self.mask.shape:
            self.distractor = np.zeros_like(self.mask, dtype=bool)

    @property
    def object_fraction(self) -> float:
        return float(self.mask.mean())


# ----------------------------------------------------------------------------- geometry


def _catmull_rom(points: Sequence[tuple[float, float]], n: int = 10) -> np.ndarray:
    """A smooth closed curve through ``points`` (n samples per segment)."""
    p1 = np.asarray(points, np.float64)
    p0, p2, p3 = np.roll(p1, 1, 0), np.roll(p1, -1, 0), np.roll(p1, -2, 0)
    t = np.linspace(0, 1, n, endpoint=False)[:, None, None]
    c = 0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
               + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
    return c.transpose(1, 0, 2).reshape(-1, 2)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 48) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], 1)


def _bar(p: np.ndarray, direction: np.ndarray, length: float, width: float) -> np.ndarray:
    """A rectangle centred at ``p`` along unit ``direction``."""
    d = direction / np.linalg.norm(direction)
    n = np.array([-d[1], d[0]])
    h, w = d * length / 2, n * width / 2
    return np.array([p - h - w, p + h - w, p + h + w, p - h + w])


def _ribbon(center: np.ndarray, width: np.ndarray) -> np.ndarray:
    """A closed polygon around an open centre line with per-point half width."""
    d = np.gradient(center, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-12
    n = np.stack([-d[:, 1], d[:, 0]], 1)
    return np.concatenate([center + n * width[:, None], (center - n * width[:, None])[::-1]])


def _star(cx: float, cy: float, r: float) -> np.ndarray:
    a = np.pi / 2 + np.arange(10) * np.pi / 5
    rad = np.where(np.arange(10) % 2 == 0, r, r * 0.42)
    return np.stack([cx + rad * np.cos(a), cy + rad * np.sin(a)], 1)


@dataclass
class _Part:
    poly: np.ndarray  # canonical (u, v): u heel 0 -> toe 1, v up from the sole bottom
    color: Color | str  # a colour, or "upper" for the upper's pattern
    clip: str | None = "upper"  # decorations are clipped to a named outline part
    shape: bool = False  # part of the shoe outline (counts in the mask)
    alpha: float = 1.0
    name: str = ""
    seam: bool = False  # a stitched seam along the edge


@dataclass
class _Design:
    upper: Color
    second: Color
    accent: Color
    sole: Color
    lace: Color
    lining: Color
    pattern: str
    parts: list[_Part]
    top: float  # highest v of the outline (for shading)
    collar: tuple[float, float, float]  # u of heel, u of tongue, v of the collar
    sole_top: float = 0.1  # v of the top of the sole
    tread: float = 0.0  # depth of the vertical ridges on the sole side (0: none)


# ------------------------------------------------------------------------------ colours

_UPPER_COLORS: list[Color] = [
    (245, 245, 243), (240, 238, 230), (30, 30, 34), (60, 62, 70), (150, 150, 155),
    (28, 40, 80), (200, 35, 45), (35, 80, 170), (150, 230, 60), (235, 170, 185),
    (225, 210, 180), (120, 80, 55), (250, 205, 40), (240, 120, 40), (110, 60, 140),
    (60, 150, 140), (175, 200, 225), (130, 35, 55), (80, 110, 70), (205, 110, 95),
]
_SOLE_COLORS: list[Color] = [(248, 248, 246)] * 6 + [
    (238, 230, 210), (35, 35, 38), (185, 140, 90), (215, 215, 215)]
_LINING_COLORS: list[Color] = [(40, 40, 44), (230, 225, 215), (200, 40, 50), (90, 90, 95)]


def _pick(rng: np.random.Generator, items: Sequence):
    return items[int(rng.integers(len(items)))]


def _jitter(rng: np.random.Generator, c: Color, amount: float = 12) -> Color:
    return tuple(float(np.clip(v + rng.normal(0, amount), 0, 255)) for v in c)  # type: ignore


def _contrast(rng: np.random.Generator, c: Color, options: Sequence[Color]) -> Color:
    """A colour from ``options`` that differs clearly from ``c``."""
    far = [o for o in options if sum(abs(a - b) for a, b in zip(o, c, strict=True)) > 150]
    return _jitter(rng, _pick(rng, far or options), 8)


def _shade(c: Color, k: float) -> Color:
    return tuple(float(np.clip(v * k, 0, 255)) for v in c)  # type: ignore


# ------------------------------------------------------------------------------- design


@dataclass
class _Body:
    """A design's style and the canonical measures its parts are drawn from."""

    style: str  # "low", "high" or "runner"
    t: float  # v of the top of the sole
    h: float  # v of the collar at the heel
    xt: float  # u of the tongue's top
    dip: float  # how far the collar dips between heel and tongue
    ht: float  # v of the tongue's top
    xl: float  # u of the toe end of the lace line
    yl: float  # v of the toe end of the lace line
    outline: np.ndarray  # the upper's outline
    sole: np.ndarray  # the sole's outline

    @property
    def lace_line(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The lace line's tongue end, its direction (to the toe end) and its unit normal
        (pointing down-forward)."""
        lace_a = np.array([self.xt + 0.035, self.ht - 0.03])
        along = np.array([self.xl, self.yl]) - lace_a
        normal = np.array([along[1], -along[0]]) / np.linalg.norm(along)
        return lace_a, along, normal


def _random_design(rng: np.random.Generator, leg: bool) -> _Design:
    body = _random_body(rng)
    d = _random_colours(rng, body)
    d.parts.append(_Part(body.outline, "upper", clip=None, shape=True, name="upper"))
    _add_panels(rng, body, d)
    _add_logo(rng, body, d)
    _add_sole(rng, body, d, leg)
    _add_laces(rng, body, d)
    d.top = max(float(p.poly[:, 1].max()) for p in d.parts if p.shape)
    for part in d.parts:
        part.seam = part.clip == "upper" and part.color != d.lining and len(part.poly) > 4
    d.tread = rng.uniform(0.06, 0.14) if rng.random() < 0.5 else 0.0
    return d


def _random_body(rng: np.random.Generator) -> _Body:
    """The style, the measures and the outlines of the upper and the sole."""
    style = _pick(rng, ("low", "low", "high", "runner"))
    u = rng.uniform
    if style == "low":
        t, h, xt, dt, dip = u(0.09, 0.13), u(0.36, 0.43), u(0.38, 0.44), u(0.03, 0.07), u(.03, .07)
    elif style == "high":
        t, h, xt, dt, dip = u(0.10, 0.13), u(0.62, 0.75), u(0.30, 0.35), u(0.0, 0.03), u(0, .03)
    else:
        t, h, xt, dt, dip = u(0.14, 0.20), u(0.40, 0.47), u(0.36, 0.42), u(0.0, 0.04), u(.02, .05)
    ht = h + dt
    xl, yl = u(0.72, 0.78), t + u(0.18, 0.23)
    outline = _catmull_rom([
        (0.06, t * 0.5), (0.0, t * 0.95), (-0.012, t + 0.35 * (h - t)),
        (-0.006, t + 0.78 * (h - t)), (0.025, h), (0.5 * (0.025 + xt), h - dip),
        (xt - 0.035, ht - 0.015), (xt, ht), (xt + 0.035, ht - 0.02),
        (0.5 * (xt + 0.035 + xl), 0.5 * (ht - 0.03 + yl) + 0.012), (xl, yl),
        (0.85, yl - 0.06), (0.95, t + 0.09), (0.998, t + 0.04), (0.99, t * 0.5),
        (0.5, t * 0.4)], 12)
    sole = _catmull_rom([
        (0.03, t + 0.012), (-0.02, t * 0.75), (-0.012, t * 0.2), (0.05, -0.004), (0.5, 0.0),
        (0.9, 0.004), (0.99, t * 0.3), (1.025, t * 0.85), (1.0, t + 0.022), (0.9, t + 0.006),
        (0.5, t)], 10)
    return _Body(style, t, h, xt, dip, ht, xl, yl, outline, sole)


def _random_colours(rng: np.random.Generator, body: _Body) -> _Design:
    """A design with its colours and pattern, and no parts yet."""
    upper = _jitter(rng, _pick(rng, _UPPER_COLORS))
    second = _contrast(rng, upper, _UPPER_COLORS) if rng.random() < 0.5 else _shade(upper, 0.8)
    accent = _contrast(rng, upper, _UPPER_COLORS)
    sole_c = _jitter(rng, _pick(rng, _SOLE_COLORS), 5)
    lace = _jitter(rng, _pick(rng, [(250, 250, 250), (250, 250, 250), upper, (30, 30, 30),
                                    accent]), 5)
    lining = _jitter(rng, _pick(rng, _LINING_COLORS), 5)
    pattern = _pick(rng, ("solid", "solid", "solid", "knit", "camo", "zebra", "grain",
                          "flecks"))
    return _Design(upper, second, accent, sole_c, lace, lining, pattern, [], 0.0,
                   (0.025, body.xt, body.h - body.dip), body.t)


def _add_panels(rng: np.random.Generator, body: _Body, d: _Design) -> None:
    """Panels on the upper: at the toe, at the heel, along the lace line."""
    u, t, h = rng.uniform, body.t, body.h
    if rng.random() < 0.55:
        d.parts.append(_Part(_ellipse(1.0, t, u(0.19, 0.26), u(0.11, 0.16)),
                             _pick(rng, (d.second, d.sole, d.accent))))
    if rng.random() < 0.55:
        d.parts.append(_Part(_ellipse(-0.02, t, u(0.15, 0.24), 0.6 * (h - t) + u(0, 0.08)),
                             _pick(rng, (d.second, d.accent))))
    lace_a, along, normal = body.lace_line
    lace_b = np.array([body.xl, body.yl])
    if rng.random() < 0.7:
        w = u(0.04, 0.07)
        panel = np.array([lace_a - normal * 0.03 - along * 0.1, lace_b - normal * 0.03
                          + along * 0.12, lace_b + normal * w + along * 0.12,
                          lace_a + normal * w - along * 0.1])
        d.parts.append(_Part(panel, _pick(rng, (d.second, _shade(d.upper, 0.75), d.accent))))


def _add_logo(rng: np.random.Generator, body: _Body, d: _Design) -> None:
    """A swoosh, stripes, an ankle patch, a wave or none."""
    u, t, h, style = rng.uniform, body.t, body.h, body.style
    logo = _pick(rng, ("swoosh", "stripes", "patch", "wave", "none")) if style != "high" \
        else _pick(rng, ("patch", "patch", "swoosh", "stripes"))
    logo_c = _pick(rng, (d.accent, (250, 250, 250), (25, 25, 25), d.second))
    if logo == "swoosh":
        s = np.linspace(0, 1, 40)
        x0, x1 = u(0.18, 0.28), u(0.70, 0.82)
        y0 = t + u(0.05, 0.09)
        cl = np.stack([x0 + (x1 - x0) * s,
                       y0 + u(0.12, 0.2) * s**2 - 0.045 * np.sin(np.pi * s) * (1 - s)], 1)
        width = u(0.02, 0.035) * np.sin(np.pi * np.clip(s * 1.1, 0.02, 0.98)) ** 0.8 * (1.3 - s)
        d.parts.append(_Part(_ribbon(cl, width + 0.002), logo_c))
    elif logo == "stripes":
        n_st, x0 = int(rng.integers(2, 4)), u(0.40, 0.52)
        sw, gap, slant = u(0.028, 0.04), u(0.025, 0.04), u(0.08, 0.14)
        for i in range(n_st):
            xa = x0 + i * (sw + gap)
            d.parts.append(_Part(np.array([(xa, t - 0.01), (xa + sw, t - 0.01),
                                           (xa + sw - slant, body.ht + 0.05),
                                           (xa - slant, body.ht + 0.05)]), logo_c))
    elif logo == "patch":
        r = u(0.06, 0.085) if style == "high" else u(0.045, 0.06)
        cx, cy = u(0.12, 0.18), t + 0.55 * (h - t)
        d.parts.append(_Part(_ellipse(cx, cy, r, r), (245, 245, 242)))
        d.parts.append(_Part(_star(cx, cy, r * 0.7), _pick(rng, ((25, 40, 90), (200, 30, 40),
                                                                  (30, 30, 30)))))
    elif logo == "wave":
        s = np.linspace(0, 1, 40)
        cl = np.stack([0.1 + 0.75 * s, t + 0.08 + 0.06 * np.sin(2 * np.pi * s * u(0.8, 1.3))
                       + 0.05 * s], 1)
        d.parts.append(_Part(_ribbon(cl, np.full(40, u(0.015, 0.03))), logo_c))


def _add_sole(rng: np.random.Generator, body: _Body, d: _Design, leg: bool) -> None:
    """The collar lining (hidden when a leg is in the shoe), the sole and its details."""
    u, t, h, dip = rng.uniform, body.t, body.h, body.dip
    heel_u, tongue_u = d.collar[0], d.collar[1]
    if not leg:
        d.parts.append(_Part(_ellipse(0.5 * (heel_u + tongue_u) + 0.01, h - dip + 0.005,
                                      0.5 * (tongue_u - heel_u) + 0.01, u(0.025, 0.045)),
                             d.lining))
    sole_c = d.sole
    d.parts.append(_Part(body.sole, sole_c, clip=None, shape=True, name="sole"))
    if body.style == "runner":
        d.parts.append(_Part(np.array([(-0.1, -0.1), (1.1, -0.1), (1.1, t * 0.28),
                                       (-0.1, t * 0.28)]), _pick(rng, (sole_c, (40, 40, 42),
                                                                       _shade(sole_c, 0.85))),
                             clip="sole", alpha=0.9))
        if rng.random() < 0.6:  # coloured plugs in the midsole
            for x in (u(0.12, 0.2), u(0.55, 0.65)):
                d.parts.append(_Part(np.array([(x, t * 0.35), (x + 0.09, t * 0.35),
                                               (x + 0.08, t * 0.8), (x - 0.01, t * 0.8)]),
                                     _pick(rng, ((210, 40, 40), (40, 90, 200), d.accent)),
                                     clip="sole"))
    elif rng.random() < 0.6:  # a thin coloured line round the midsole
        v = t * u(0.45, 0.65)
        d.parts.append(_Part(np.array([(-0.1, v), (1.1, v), (1.1, v + 0.014),
                                       (-0.1, v + 0.014)]),
                             _pick(rng, ((30, 40, 90), (200, 30, 40), (30, 30, 30), d.accent)),
                             clip="sole"))
    if rng.random() < 0.5:  # outsole edge
        d.parts.append(_Part(np.array([(-0.1, -0.1), (1.1, -0.1), (1.1, 0.018), (-0.1, 0.018)]),
                             _pick(rng, ((185, 140, 90), (40, 40, 42), (120, 120, 120))),
                             clip="sole"))


def _add_laces(rng: np.random.Generator, body: _Body, d: _Design) -> None:
    """Crossing bars along the lace line, on top of everything and part of the outline; a
    runner may get a heel pull tab."""
    u, h = rng.uniform, body.h
    lace_a, along, normal = body.lace_line
    n_laces = int(rng.integers(6, 9)) if body.style == "high" else int(rng.integers(4, 7))
    lw = u(0.014, 0.02)
    cross = rng.random() < 0.25
    slant = u(0.2, 0.6)
    for s in np.linspace(0.06, 0.92, n_laces):
        p = lace_a + along * s + normal * 0.01
        for sign in ((-0.6, 0.6) if cross else (slant,)):
            dr = normal + sign * along / np.linalg.norm(along)
            d.parts.append(_Part(_bar(p, dr, u(0.065, 0.085), lw), d.lace, clip=None,
                                 shape=True))
    if body.style == "runner" and rng.random() < 0.7:  # heel pull tab
        d.parts.append(_Part(np.array([(-0.015, h - 0.08), (0.035, h - 0.08), (0.04, h + 0.05),
                                       (-0.005, h + 0.055)]), d.accent, clip=None, shape=True))


# --------------------------------------------------------------------------------- pose


@dataclass
class _Pose:
    cx: float
    cy: float
    scale: float  # pixels per unit of shoe length
    angle: float  # radians, image rotation
    flip: int  # +1 toe to the right, -1 toe to the left
    vc: float = 0.2  # canonical v placed at (cx, cy)

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, np.float64)
        d = np.stack([self.flip * (uv[..., 0] - 0.5), -(uv[..., 1] - self.vc)], -1) * self.scale
        c, s = math.cos(self.angle), math.sin(self.angle)
        return np.stack([self.cx + c * d[..., 0] - s * d[..., 1],
                         self.cy + s * d[..., 0] + c * d[..., 1]], -1)

    def to_canonical(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(self.angle), math.sin(self.angle)
        dx, dy = (x - self.cx) / self.scale, (y - self.cy) / self.scale
        d0, d1 = c * dx + s * dy, -s * dx + c * dy
        return 0.5 + self.flip * d0, self.vc - d1


def _bbox(design: _Design, poses: Sequence[_Pose]) -> tuple[float, float, float, float]:
    pts = np.concatenate([p.to_image(part.poly) for p in poses for part in design.parts
                          if part.shape])
    return pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()


def _place(rng: np.random.Generator, design: _Design, size: int, kind: str
           ) -> list[_Pose]:
    """Front pose (and the hidden shoe's for ``pair``), fully inside the frame."""
    margin = max(3.0, 0.03 * size)
    flip = 1 if rng.random() < 0.5 else -1
    angle = math.radians(rng.normal(0, 5) if rng.random() < 0.8 else rng.uniform(-14, 14))
    big = kind not in ("leg", "box")
    length = size * (rng.uniform(0.6, 0.9) if big else rng.uniform(0.55, 0.75))
    vc = design.top / 2
    poses = [_Pose(0.0, 0.0, length, angle, flip, vc)]
    if kind == "pair":
        length *= rng.uniform(0.85, 0.92)
        poses[0].scale = length
        c, s = math.cos(angle), math.sin(angle)
        dx, dy = flip * rng.uniform(0.12, 0.28) * length, -rng.uniform(0.12, 0.2) * length
        back = _Pose(c * dx - s * dy, s * dx + c * dy, length * rng.uniform(0.93, 0.99),
                     angle + math.radians(rng.normal(0, 3)), flip, vc)
        poses = [back, poses[0]]
    x0, y0, x1, y1 = _bbox(design, poses)
    room = 0.99 * (size - 2 * margin)
    fit = min(1.0, room / (x1 - x0), room / (y1 - y0))
    if fit < 1.0:
        for p in poses:
            p.scale *= fit
            p.cx *= fit
            p.cy *= fit
        x0, y0, x1, y1 = _bbox(design, poses)
    lo_x, hi_x = margin - x0, size - margin - x1
    lo_y, hi_y = margin - y0, size - margin - y1
    if rng.random() < 0.75:  # near the centre
        mx = 0.5 * (lo_x + hi_x) + rng.normal(0, 0.04 * size)
        my = 0.5 * (lo_y + hi_y) + rng.normal(0, 0.04 * size)
    else:
        mx, my = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
    if kind in ("floor", "leg"):  # standing low in the frame
        my = rng.uniform(0.5 * (lo_y + hi_y), hi_y)
    mx, my = float(np.clip(mx, lo_x, hi_x)), float(np.clip(my, lo_y, hi_y))
    for p in poses:
        p.cx += mx
        p.cy += my
    return poses


# ------------------------------------------------------------------------------ drawing


class _Canvas:
    def __init__(self, size: int) -> None:
        self.size = size
        self.img = np.zeros((size, size, 3), np.float32)
        self.union = np.zeros((size * _SS, size * _SS), np.uint8)  # supersampled shoe mask
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        self.xs, self.ys = xs, ys

    def coverage(self, poly: np.ndarray, union: bool = False) -> np.ndarray:
        """Fraction (0..1) of each pixel inside ``poly`` (image coordinates)."""
        n = self.size
        out = np.zeros((n, n), np.float32)
        x0 = max(int(math.floor(poly[:, 0].min())) - 1, 0)
        y0 = max(int(math.floor(poly[:, 1].min())) - 1, 0)
        x1 = min(int(math.ceil(poly[:, 0].max())) + 2, n)
        y1 = min(int(math.ceil(poly[:, 1].max())) + 2, n)
        if x1 <= x0 or y1 <= y0:
            return out
        pts = np.round(((poly - (x0, y0)) * _SS - 0.5) * 16).astype(np.int32)
        sub = np.zeros(((y1 - y0) * _SS, (x1 - x0) * _SS), np.uint8)
        cv2.fillPoly(sub, [pts], 1, lineType=cv2.LINE_8, shift=4)
        out[y0:y1, x0:x1] = cv2.resize(sub.astype(np.float32), (x1 - x0, y1 - y0),
                                       interpolation=cv2.INTER_AREA)
        if union:
            region = self.union[y0 * _SS:y1 * _SS, x0 * _SS:x1 * _SS]
            np.maximum(region, sub, out=region)
        return out

    def paint(self, alpha: np.ndarray, color: Color | Field) -> None:
        a = alpha[..., None]
        self.img *= 1 - a
        self.img += a * np.asarray(color, np.float32)

    def mask(self) -> np.ndarray:
        cov = cv2.resize(self.union.astype(np.float32), (self.size, self.size),
                         interpolation=cv2.INTER_AREA)
        return cov >= 0.5


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise with about ``cells`` blobs across, mean 0, std 1."""
    g = rng.standard_normal((cells + 3, cells + 3)).astype(np.float32)
    big = cv2.resize(g, (size + size * 3 // cells, size + size * 3 // cells),
                     interpolation=cv2.INTER_CUBIC)
    o = size * 3 // cells // 2
    n = big[o:o + size, o:o + size]
    return (n - n.mean()) / (n.std() + 1e-6)


def _mix(a: Color | np.ndarray, b: Color | np.ndarray, t: np.ndarray) -> Field:
    t = t[..., None].astype(np.float32)
    return np.asarray(a, np.float32) * (1 - t) + np.asarray(b, np.float32) * t


def _pattern_field(rng: np.random.Generator, design: _Design, u: np.ndarray, v: np.ndarray,
                   size: int) -> Color | Field:
    base, second, accent = design.upper, design.second, design.accent
    p = design.pattern
    if p == "solid":
        return base
    if p == "knit":
        k = 0.5 + 0.5 * np.sin(2 * np.pi * (u * 55 + v * 8) + 2 * _noise(rng, size, 20))
        return _mix(base, _shade(base, 0.72) if np.mean(base) > 60 else _shade(second, 0.9),
                    k * 0.7)
    if p == "flecks":
        f = _noise(rng, size, max(size // 4, 8))
        out = _mix(base, accent, (f > 1.6).astype(np.float32))
        return _mix(out, second, (f < -1.7).astype(np.float32))
    if p == "camo":
        f = _noise(rng, size, 10) + 0.4 * _noise(rng, size, 24)
        out = _mix(base, second, (f > 0.3).astype(np.float32))
        return _mix(out, _shade(accent, 0.6), (f > 1.2).astype(np.float32))
    if p == "zebra":
        s = np.sin(2 * np.pi * (u * rng.uniform(6, 10) + v * 3 + 0.5 * _noise(rng, size, 6)))
        return _mix(base, second if rng.random() < 0.5 else (25, 25, 28),
                    np.clip((s - 0.1) * 4, 0, 1))
    # grain: suede / canvas texture
    g = rng.standard_normal((size, size)).astype(np.float32)
    g = cv2.GaussianBlur(g, (0, 0), 0.7)
    return _mix(base, _shade(base, 0.82), np.clip(0.5 + 0.6 * g, 0, 1))


def _draw_shoe(rng: np.random.Generator, cv: _Canvas, design: _Design, pose: _Pose) -> None:
    u, v = pose.to_canonical(cv.xs, cv.ys)
    named: dict[str, np.ndarray] = {}
    shoe_cov = np.zeros((cv.size, cv.size), np.float32)
    colors = {"upper": _pattern_field(rng, design, u, v, cv.size)}
    for part in design.parts:
        cov = cv.coverage(pose.to_image(part.poly), union=part.shape)
        if part.shape:
            np.maximum(shoe_cov, cov, out=shoe_cov)
        if part.name:
            named[part.name] = cov
        if part.clip:
            cov = cov * named[part.clip]
        color = colors[part.color] if isinstance(part.color, str) else part.color
        cv.paint(cov * part.alpha, color)
        if part.seam:
            band = np.clip(cv2.dilate(cov, _SEAM_KERNEL) - cov, 0, 1) * named["upper"]
            cv.img *= (1 - 0.3 * band)[..., None]
    if design.tread and "sole" in named:
        ridges = (np.sin(2 * np.pi * u * 45) > 0.3) & (v < design.sole_top * 0.55)
        cv.img *= (1 - design.tread * ridges * named["sole"])[..., None]
    # shading: light from above, rounded edges, a soft highlight along the top of the upper
    blur = cv2.GaussianBlur(shoe_cov, (0, 0), max(1.0, 0.025 * pose.scale))
    edge = np.clip((blur - 0.5) * 2.5, 0, 1)
    light = 0.86 + 0.16 * np.clip(v / design.top, 0, 1)
    factor = light * (0.86 + 0.14 * edge)
    highlight = np.exp(-((v - 0.7 * design.top) / (0.12 * design.top)) ** 2) * edge * 0.12
    k = shoe_cov[..., None]
    cv.img *= 1 - k * (1 - factor[..., None])
    cv.img += k * highlight[..., None] * 255 * 0.5


# -------------------------------------------------------------------------- backgrounds


def _light_color(rng: np.random.Generator) -> Color:
    r = rng.random()
    if r < 0.65:
        g = rng.uniform(232, 252)
        return (g + rng.normal(0, 2), g + rng.normal(0, 2), g + rng.normal(0, 3))
    if r < 0.9:
        g = rng.uniform(195, 232)
        return (g, g, g + rng.uniform(-3, 6))
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(50, 150), rng.integers(150, 245)]]])
    return tuple(float(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])  # type: ignore


def _background(rng: np.random.Generator, cv: _Canvas, style: str) -> None:
    n = cv.size
    ys = cv.ys / n
    if style == "plain":
        c = _light_color(rng)
        r2 = (cv.xs / n - 0.5) ** 2 + (ys - 0.5) ** 2
        cv.img[:] = _mix(c, _shade(c, 0.93), np.clip(r2 * rng.uniform(0, 1.5), 0, 1))
    elif style == "gradient":
        a = _light_color(rng)
        b = _shade(a, rng.uniform(1.02, 1.1))
        if rng.random() < 0.5:  # studio sweep: darker at the top, bright floor
            b = _shade(a, rng.uniform(0.7, 0.88))
            a, b = b, a
        t = np.clip((ys - rng.uniform(0.1, 0.5)) / rng.uniform(0.3, 0.8), 0, 1)
        if rng.random() < 0.3:
            t = np.clip(np.hypot(cv.xs / n - 0.5, ys - 0.55) * 1.6, 0, 1)
        cv.img[:] = _mix(a, b, t * t * (3 - 2 * t))
    else:
        cv.img[:] = _texture(rng, cv, _pick(rng, ("noise", "fabric", "wood", "concrete")))


def _texture(rng: np.random.Generator, cv: _Canvas, what: str) -> Field:
    n, xs, ys = cv.size, cv.xs, cv.ys
    if what == "wood":
        base = _jitter(rng, _pick(rng, [(190, 145, 100), (160, 110, 70), (215, 185, 145),
                                        (120, 85, 60)]), 10)
        warp = 6 * _noise(rng, n, 4)
        grain = np.sin(2 * np.pi * (ys + warp) / (rng.uniform(7, 12) * n / 240))
        boards = (((ys + 0.3 * warp) % (n / rng.uniform(4, 7))) < 1.2).astype(np.float32)
        t = 0.5 + 0.15 * grain + 0.2 * _noise(rng, n, 12)
        out = _mix(_shade(base, 1.1), _shade(base, 0.8), np.clip(t, 0, 1))
        return _mix(out, _shade(base, 0.5), boards)
    if what == "fabric":
        base = _jitter(rng, _pick(rng, [(200, 195, 185), (120, 135, 160), (170, 160, 150),
                                        (90, 95, 100), (215, 205, 190)]), 10)
        p = rng.uniform(2.5, 4) * n / 240
        w = np.sin(2 * np.pi * xs / p) * np.sin(2 * np.pi * ys / p)
        t = 0.5 + 0.25 * w + 0.1 * _noise(rng, n, 30) + 0.1 * _noise(rng, n, 5)
        return _mix(_shade(base, 1.08), _shade(base, 0.85), np.clip(t, 0, 1))
    if what == "concrete":
        base = _jitter(rng, _pick(rng, [(170, 170, 168), (140, 140, 145), (200, 198, 190)]), 8)
        t = 0.5 + 0.2 * _noise(rng, n, 6) + 0.1 * _noise(rng, n, 40)
        t += 0.08 * rng.standard_normal((n, n)).astype(np.float32)
        return _mix(_shade(base, 1.12), _shade(base, 0.85), np.clip(t, 0, 1))
    if what == "tiles":
        base = _jitter(rng, _pick(rng, [(225, 222, 215), (120, 120, 125), (190, 175, 150),
                                        (60, 60, 65)]), 8)
        step = rng.uniform(0.15, 0.3) * n
        tile = (np.floor(xs / step) * 7 + np.floor(ys / step) * 13) % 5 / 5
        t = 0.4 + 0.2 * tile + 0.1 * _noise(rng, n, 20)
        grout = ((xs % step) < 1.5) | ((ys % step) < 1.5)
        out = _mix(_shade(base, 1.08), _shade(base, 0.9), np.clip(t, 0, 1))
        return _mix(out, _shade(base, 0.6), grout.astype(np.float32))
    base = _light_color(rng)
    t = 0.5 + 0.15 * _noise(rng, n, 8) + 0.1 * rng.standard_normal((n, n)).astype(np.float32)
    return _mix(base, _shade(base, 0.85), np.clip(t, 0, 1))


# --------------------------------------------------------------------------- distractors


def _lowest(design: _Design, pose: _Pose) -> np.ndarray:
    """The lowest point of the shoe in the image (where it stands)."""
    pts = pose.to_image(design.parts[0].poly)
    sole = pose.to_image(next(p.poly for p in design.parts[1:] if p.shape))
    pts = np.concatenate([pts, sole])
    return pts[np.argmax(pts[:, 1])]


_BOX_COLORS: list[Color] = [(232, 110, 40), (180, 140, 95), (38, 38, 42), (185, 40, 42),
                            (60, 90, 150), (50, 130, 120), (200, 170, 60)]


def _box(rng: np.random.Generator, cv: _Canvas, design: _Design, pose: _Pose) -> np.ndarray:
    n = cv.size
    bg = cv.img.reshape(-1, 3).mean(0)
    boxes = [c for c in _BOX_COLORS if np.abs(np.subtract(c, bg)).sum() > 120]
    color = _jitter(rng, _pick(rng, boxes or _BOX_COLORS), 8)
    floor_y = _lowest(design, pose)[1]
    bw, bh = rng.uniform(0.6, 1.0) * n, rng.uniform(0.35, 0.6) * n
    bx = pose.cx + rng.normal(0, 0.12 * n) - bw / 2
    by = floor_y - rng.uniform(0.04, 0.15) * n  # bottom edge, behind the shoe
    shoe_top = min(pose.to_image(design.parts[0].poly)[:, 1])
    top = min(by - bh, shoe_top - rng.uniform(0.12, 0.25) * n)
    bh = by - top
    depth = rng.uniform(0.05, 0.1) * n * (1 if rng.random() < 0.5 else -1)
    front = np.array([(bx, top), (bx + bw, top), (bx + bw, by), (bx, by)])
    lid_top = np.array([(bx, top), (bx + bw, top), (bx + bw + depth, top - abs(depth) * 0.7),
                        (bx + depth, top - abs(depth) * 0.7)])
    a_front = cv.coverage(front)
    a_top = cv.coverage(lid_top)
    shade = _mix(color, _shade(color, 0.85), np.clip((cv.ys - top) / max(bh, 1), 0, 1))
    cv.paint(a_front, shade)
    cv.paint(a_top, _shade(color, 1.15))
    lid = rng.uniform(0.2, 0.32) * bh
    cv.paint(cv.coverage(np.array([(bx, top + lid), (bx + bw, top + lid),
                                   (bx + bw, top + lid + max(1.0, 0.008 * n)),
                                   (bx, top + lid + max(1.0, 0.008 * n))])),
             _shade(color, 0.55))
    # a logo label on the lid
    lw, lh = rng.uniform(0.15, 0.3) * bw, lid * 0.5
    lx = bx + rng.uniform(0.05, 0.9) * (bw - lw)
    label = np.array([(lx, top + lid * 0.25), (lx + lw, top + lid * 0.25),
                      (lx + lw, top + lid * 0.25 + lh), (lx, top + lid * 0.25 + lh)])
    cv.paint(cv.coverage(label), (245, 245, 240) if np.mean(color) < 170 else (30, 30, 30))
    return np.maximum(a_front, a_top) >= 0.5


def _floor(rng: np.random.Generator, cv: _Canvas, design: _Design, pose: _Pose) -> np.ndarray:
    n = cv.size
    floor_y = float(_lowest(design, pose)[1])
    y0 = float(np.clip(floor_y - rng.uniform(0.06, 0.3) * n, 0.35 * n, 0.82 * n))
    wall = cv.img[: int(y0)].reshape(-1, 3).mean(0)
    texs = [_texture(rng, cv, _pick(rng, ("wood", "wood", "concrete", "fabric", "tiles")))
            for _ in range(2)]
    far = [float(np.abs(t.reshape(-1, 3).mean(0) - wall).sum()) for t in texs]
    tex = texs[int(np.argmax(far))]
    if max(far) < 90:  # keep the floor visible
        tex *= 0.6 if wall.mean() > 110 else 1.6
        np.clip(tex, 0, 255, out=tex)
    a = np.clip(cv.ys - y0, 0, 1).astype(np.float32)
    # darken the far edge of the floor a little, as a horizon line
    tex = tex * (0.9 + 0.1 * np.clip((cv.ys - y0) / (0.2 * n), 0, 1))[..., None]
    cv.paint(a, tex)
    return a >= 0.5


def _leg(rng: np.random.Generator, cv: _Canvas, design: _Design, pose: _Pose) -> np.ndarray:
    heel_u, tongue_u, collar_v = design.collar
    mid = 0.5 * (heel_u + tongue_u) - 0.02
    half = 0.13 + 0.04 * rng.random()
    bottom = pose.to_image(np.array([(mid - half, collar_v * 0.4), (mid + half, collar_v * 0.4)]))
    ankle = pose.to_image(np.array([(mid - half, collar_v + 0.1), (mid + half, collar_v + 0.1)]))
    tilt = rng.normal(0, 0.08) * cv.size
    gap = rng.uniform(0.0, 0.25) * pose.scale  # visible sock/ankle above the shoe
    cx = 0.5 * (ankle[0, 0] + ankle[1, 0])
    hem_y = min(ankle[0, 1], ankle[1, 1]) - gap
    wj = abs(ankle[1, 0] - ankle[0, 0]) * rng.uniform(1.25, 1.6)
    top_w = wj * rng.uniform(1.0, 1.25)
    sock = np.array([bottom[0], bottom[1], (ankle[1, 0], hem_y + 2), (ankle[0, 0], hem_y + 2)])
    sock_c = _pick(rng, [(235, 235, 232), (30, 30, 32), (205, 160, 130), (170, 120, 95)])
    a_sock = cv.coverage(sock)
    cv.paint(a_sock, _jitter(rng, sock_c, 6))
    jeans = np.array([(cx - top_w / 2 + tilt, -5.0), (cx + top_w / 2 + tilt, -5.0),
                      (cx + wj / 2, hem_y), (cx - wj / 2, hem_y)])
    bg = cv.img[: max(1, int(hem_y))].reshape(-1, 3).mean(0)
    jeans_colors = [(70, 100, 150), (50, 70, 110), (110, 140, 180), (30, 30, 35),
                    (120, 110, 90), (90, 90, 95), (200, 195, 180)]
    far = [c for c in jeans_colors if np.abs(np.subtract(c, bg)).sum() > 150]
    base = _jitter(rng, _pick(rng, far or jeans_colors), 8)
    n = cv.size
    twill = np.sin(2 * np.pi * (cv.xs + cv.ys) / 2.5)
    t = 0.5 + 0.15 * twill + 0.2 * _noise(rng, n, 12) + 0.1 * _noise(rng, n, 40)
    tex = _mix(_shade(base, 1.15), _shade(base, 0.8), np.clip(t, 0, 1))
    folds = 0.9 + 0.1 * np.sin(2 * np.pi * cv.ys / (0.12 * n) + _noise(rng, n, 3))
    across = np.abs(cv.xs - (cx + tilt * np.clip(1 - cv.ys / max(hem_y, 1), 0, 1)))
    roundness = 1 - 0.35 * np.clip(across / (wj / 2), 0, 1) ** 2
    tex *= (folds * roundness)[..., None]
    a_jeans = cv.coverage(jeans)
    cv.paint(a_jeans, tex)
    hem = np.array([(cx - wj / 2, hem_y - 0.03 * n), (cx + wj / 2, hem_y - 0.03 * n),
                    (cx + wj / 2, hem_y), (cx - wj / 2, hem_y)])
    cv.paint(cv.coverage(hem) * 0.35, _shade(base, 0.5))
    return np.maximum(a_sock, a_jeans) >= 0.5


def _shadow(rng: np.random.Generator, cv: _Canvas, design: _Design, pose: _Pose) -> None:
    n = cv.size
    c = pose.to_image(np.array([0.5, 0.0]))
    sh = np.zeros((n, n), np.float32)
    ax = (int(0.55 * pose.scale), max(1, int(rng.uniform(0.04, 0.09) * pose.scale)))
    cv2.ellipse(sh, (int(c[0]), int(c[1] + 0.01 * n)), ax, math.degrees(pose.angle), 0, 360,
                1.0, -1, cv2.LINE_AA)
    soft = cv2.GaussianBlur(sh, (0, 0), rng.uniform(0.02, 0.05) * n)
    contact = np.zeros((n, n), np.float32)
    cv2.ellipse(contact, (int(c[0]), int(c[1])), (int(0.45 * pose.scale), max(1, n // 80)),
                math.degrees(pose.angle), 0, 360, 1.0, -1, cv2.LINE_AA)
    contact = cv2.GaussianBlur(contact, (0, 0), max(1.0, 0.008 * n))
    dark = np.clip(rng.uniform(0.2, 0.45) * soft + 0.35 * contact, 0, 0.7)
    cv.img *= (1 - dark)[..., None]


# ---------------------------------------------------------------------------- public API


def make_photo(rng: np.random.Generator, size: int = 240, kind: str | None = None
               ) -> SamplePhoto:
    """Draw one synthetic sneaker photo (size×size RGB) and its exact mask.

    ``kind`` is one of :data:`KINDS` (random when ``None``). The same generator state gives
    the same photo.
    """
    if kind is None:
        kind = str(_pick(rng, KINDS))
    if kind not in KINDS:
        raise ValueError(f"unknown sample kind {kind!r}; choose one of {', '.join(KINDS)}")
    if size < 32:
        raise ValueError(f"sample photos need size >= 32, got {size}")
    design = _random_design(rng, leg=kind == "leg")
    poses = _place(rng, design, size, kind)
    front = poses[-1]
    cv = _Canvas(size)
    bg = kind if kind in ("plain", "gradient", "textured") else \
        _pick(rng, ("plain", "plain", "gradient", "gradient", "textured"))
    _background(rng, cv, bg)
    distractor = np.zeros((size, size), bool)
    if kind == "box":
        distractor = _box(rng, cv, design, front)
    elif kind == "floor":
        distractor = _floor(rng, cv, design, front)
    for p in poses:
        _shadow(rng, cv, design, p)
    if kind == "leg":
        distractor = _leg(rng, cv, design, front)
    for p in poses:
        _draw_shoe(rng, cv, design, p)
    # camera: a slight blur and sensor noise
    img = cv2.GaussianBlur(cv.img, (0, 0), rng.uniform(0.35, 0.7))
    img += rng.normal(0, rng.uniform(1.0, 2.5), img.shape).astype(np.float32)
    image = np.clip(np.round(img), 0, 255).astype(np.uint8)
    mask = cv.mask()
    return SamplePhoto(image, mask, kind, distractor & ~mask)


def photo_seed(seed: int, index: int) -> int:
    """The integer seed of photo ``index`` in a sample made with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def sample_kinds(n: int, seed: int = 0) -> list[str]:
    """Kinds of the ``n`` photos: every kind once in each block of len(KINDS), shuffled."""
    rng = np.random.default_rng([seed, 7_000_001])
    out: list[str] = []
    while len(out) < n:
        out += [KINDS[i] for i in rng.permutation(len(KINDS))]
    return out[:n]


def sample_photo(index: int, seed: int = 0, size: int = 240) -> SamplePhoto:
    """Photo ``index`` of the sample made with ``seed`` (what :func:`write_sample` writes)."""
    kind = sample_kinds(index + 1, seed)[index]
    return make_photo(np.random.default_rng(photo_seed(seed, index)), size, kind)


def write_sample(out: Path, n: int = 48, seed: int = 0, size: int = 240,
                 progress: Callable[[int], None] | None = None,
                 kept: list[str] | None = None) -> list[Path]:
    """Write ``n`` photos to ``out/images``, masks (0/255) to ``out/masks``, trimaps to
    ``out/trimaps`` and ``out/sample.csv``. Returns the image paths.

    ``out`` must be new, empty, or a sample folder (``seglib.json`` of kind ``sample``, which
    records the sha256 of every file this wrote). A rerun replaces, or removes when ``n`` is
    smaller, only the files still as it wrote them: a file changed since (a trimap corrected
    by hand) is kept and its name (relative to ``out``) appended to ``kept``.
    """
    out = Path(out)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    records = sample_records(out)
    kept = [] if kept is None else kept
    write_json(out / MARKER, {"kind": "sample", "files": records})
    kinds = sample_kinds(n, seed)
    images: list[Path] = []
    rows: list[dict[str, object]] = []
    for i in range(n):
        name = f"sample_{i:03d}"
        ps = photo_seed(seed, i)
        photo = make_photo(np.random.default_rng(ps), size, kinds[i])
        _put(out, f"images/{name}.jpg", encode_jpeg(photo.image, JPEG_QUALITY), records, kept)
        _put(out, f"masks/{name}.png", encode_png(photo.mask.astype(np.uint8) * 255), records,
             kept)
        _put(out, f"trimaps/{name}.png", encode_png(mask_to_trimap(photo.mask)), records, kept)
        images.append(out / "images" / f"{name}.jpg")
        rows.append({"name": name, "kind": photo.kind, "seed": ps,
                     "object_fraction": f"{photo.object_fraction:.4f}"})
        if progress is not None:
            progress(i + 1)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _put(out, "sample.csv", buf.getvalue().encode(), records, kept)
    _remove_stale(out, n, records, kept)
    write_json(out / MARKER, {"kind": "sample", "files": records})
    return images


def sample_records(out: Path) -> dict[str, str]:
    """``{file: sha256}`` of what an earlier sample run wrote into ``out``; refuses (one line)
    a folder that is not a sample folder and holds anything (the output-safety rule)."""
    refuse_output(out, allow="sample")
    if folder_kind(out) == "sample":
        files = (read_json(out / MARKER) or {}).get("files")
        return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    if out.is_dir() and [p for p in out.iterdir() if not p.name.startswith(".")]:
        names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
        raise SeglibError(f"{out}: holds files the sample did not write ({', '.join(names[:3])}"
                          f"{', ...' if len(names) > 3 else ''}); choose a new or empty --out")
    return {}


def _put(out: Path, rel: str, data: bytes, records: dict[str, str], kept: list[str]) -> None:
    """Write ``out/rel`` unless it exists changed since this wrote it (then keep it)."""
    path = out / rel
    new = hashlib.sha256(data).hexdigest()
    have = file_sha256(path) if path.is_file() else None
    if path.is_symlink() or (have is not None and have not in (new, records.get(rel))):
        kept.append(rel)
        return
    if have != new:
        write_bytes_atomic(path, data)
    records[rel] = new


def _remove_stale(out: Path, n: int, records: dict[str, str], kept: list[str]) -> None:
    """Delete ``sample_NNN`` files left from an earlier, larger sample in the same folder,
    those still as it wrote them; a changed one is kept (appended to ``kept``)."""
    for sub, ext in (("images", ".jpg"), ("masks", ".png"), ("trimaps", ".png")):
        for path in sorted((out / sub).glob(f"sample_*{ext}")):
            index = path.stem.removeprefix("sample_")
            if not index.isdigit() or int(index) < n:
                continue
            rel = f"{sub}/{path.name}"
            if path.is_file() and not path.is_symlink() and \
                    file_sha256(path) == records.get(rel):
                path.unlink()
                records.pop(rel, None)
            else:
                kept.append(rel)
