"""Export as an Ultralytics (YOLO) segmentation data set.

``OUT/images/{train,val}/``, ``OUT/labels/{train,val}/*.txt`` (``0 x1 y1 x2 y2 ...``
normalised, one line per connected part of the object) and ``OUT/data.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from seglib.core.files import write_bytes_atomic
from seglib.formats.items import ExportItem, ExportSummary, copy_photo, iter_items
from seglib.formats.polygons import mask_polygons
from seglib.masks.trimap import OBJECT

YOLO_YAML = Path("data.yaml")


def write_yolo(items: list[ExportItem], out: Path, summary: ExportSummary, *,
               category: str = "object",
               spread: dict | None = None) -> Path:
    """Ultralytics segmentation layout: ``images/``, ``labels/``, ``data.yaml``."""
    for it, trimap, image in iter_items(items, summary, "yolo", **(spread or {})):
        mask = trimap == OBJECT
        h, w = mask.shape
        copy_photo(it, image, out / "images" / it.split / it.photo.name)
        lines = []
        for p in mask_polygons(mask):
            xy = p.astype(np.float64) / (w, h)
            lines.append("0 " + " ".join(f"{v:.6f}" for v in xy.reshape(-1)))
        write_bytes_atomic(out / "labels" / it.split / f"{it.photo.stem}.txt",
                           "".join(f"{line}\n" for line in lines).encode("utf-8"))
    # no "path": Ultralytics then reads the folders next to this file, wherever it is moved;
    # it needs a val set, so without val photos (--val 0) it validates on the training photos
    val = "images/val" if summary.split["val"] else "images/train"
    text = (f"# Ultralytics segmentation data set exported by seglib\n"
            f"train: images/train\nval: {val}\nnames:\n  0: {json.dumps(category)}\n")
    return write_bytes_atomic(out / YOLO_YAML, text.encode("utf-8"))
