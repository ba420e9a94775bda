"""Tiny photo/trimap folders for the training, prediction and data tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from seglib.core.files import write_png_atomic
from seglib.masks.trimap import mask_to_trimap


def toy_pairs(root: Path, n: int, h: int = 30, w: int = 40, seed: int = 0) -> tuple[Path, Path]:
    """``n`` photos of a dark ellipse on a light background, with their trimaps."""
    rng = np.random.default_rng(seed)
    images, trimaps = root / "images", root / "trimaps"
    for i in range(n):
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (int(rng.integers(12, w - 12)), int(rng.integers(10, h - 10))),
                    (int(rng.integers(5, 10)), int(rng.integers(4, 8))), 0, 0, 360, 1, -1)
        img = np.full((h, w, 3), 200, np.uint8)
        img[m > 0] = (30, 60, 90)
        write_png_atomic(images / f"p{i:03d}.png", img)
        write_png_atomic(trimaps / f"p{i:03d}.png", mask_to_trimap(m))
    return images, trimaps
