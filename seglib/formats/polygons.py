"""Object masks as polygons, for the formats that store outlines (COCO polygons, YOLO)."""

from __future__ import annotations

import cv2
import numpy as np


def mask_polygons(mask: np.ndarray, epsilon: float = 0.5) -> list[np.ndarray]:
    """The outer contours of every connected part of ``mask`` as (N, 2) arrays of pixel
    (x, y), at least 3 points each, the largest part first (a tool that reads one polygon
    per object gets the main one); ``epsilon`` (pixels) drops the points that lie within
    that distance of the simplified outline (0.5: object IoU 0.9985 on the sample's
    labels). Holes are filled (polygon formats have none)."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contours = sorted(contours, key=lambda c: -cv2.contourArea(c))
    out = []
    for c in contours:
        if epsilon > 0:
            c = cv2.approxPolyDP(c, epsilon, True)
        pts = c.reshape(-1, 2)
        if len(pts) >= 3:
            out.append(pts)
        elif len(pts) > 0:  # a part 1 or 2 pixels thick along a line: its box as a polygon
            x0, y0 = pts.min(0)
            x1, y1 = pts.max(0)
            out.append(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    return out


def outline_polygons(mask: np.ndarray, epsilon: float = 0.5) -> list[np.ndarray]:
    """Polygons in continuous image coordinates (pixel ``i`` spans ``i`` to ``i + 1``), as
    COCO tools (pycocotools, CVAT, Label Studio) draw them: the contours of the mask drawn
    4× larger, so each polygon runs 1/8 pixel inside the outline of its pixels, and the
    pixels it encloses are the mask's (:func:`mask_polygons` runs through pixel centres,
    as ``cv2.fillPoly`` and Ultralytics draw polygons)."""
    h, w = mask.shape
    f = 4 if h * w <= 4_000_000 else 2 if h * w <= 16_000_000 else 1
    big = cv2.resize(np.ascontiguousarray(mask, dtype=np.uint8), (w * f, h * f),
                     interpolation=cv2.INTER_NEAREST)
    return [(p + 0.5) / f for p in mask_polygons(big, epsilon * f)]
