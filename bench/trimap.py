"""Speed of the vectorized trimap against the original pixel loops, side by side.

    python bench/trimap.py [--size 240] [--repeat 5]

Prints the time of each on a sneaker-shaped mask and their ratio (target: >= 2000x).
"""

from __future__ import annotations

import argparse
import timeit

import cv2
import numpy as np

from seglib.masks.trimap import contour_scan_loops, mask_to_trimap


def sneaker_mask(size: int = 240) -> np.ndarray:
    """A side-view sneaker silhouette: sole, upper, heel and toe, about 30% of the frame."""
    s = size / 240
    m = np.zeros((size, size), np.uint8)
    sole = np.array([[30, 168], [210, 168], [216, 156], [205, 150], [34, 150], [26, 160]])
    upper = np.array([[40, 152], [60, 92], [92, 78], [118, 96], [150, 110], [196, 128],
                      [212, 150]])
    cv2.fillPoly(m, [np.round(sole * s).astype(np.int32), np.round(upper * s).astype(np.int32)],
                 1)
    cv2.ellipse(m, (round(70 * s), round(86 * s)), (round(16 * s), round(10 * s)), -20, 0, 360,
                0, -1)  # the opening where the foot goes in
    return m.astype(bool)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=240)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    mask = sneaker_mask(args.size)
    assert np.array_equal(contour_scan_loops(mask), mask_to_trimap(mask)), "results differ"
    loops = min(timeit.repeat(lambda: contour_scan_loops(mask), number=1, repeat=args.repeat))
    n = 2000
    fast = min(timeit.repeat(lambda: mask_to_trimap(mask), number=n, repeat=args.repeat)) / n
    print(f"mask {args.size}x{args.size}, object {mask.mean():.0%} of the frame; identical output")
    print(f"contour_scan_loops : {loops * 1e3:9.2f} ms")
    print(f"mask_to_trimap     : {fast * 1e6:9.2f} us")
    print(f"ratio              : {loops / fast:9.0f}x  (target >= 2000x)")


if __name__ == "__main__":
    main()
