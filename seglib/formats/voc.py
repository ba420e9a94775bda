"""Export as Pascal VOC 2012 segmentation (torchvision's ``VOCSegmentation(OUT, year="2012")``,
CVAT's "Segmentation mask 1.1").

``OUT/VOCdevkit/VOC2012/JPEGImages/*.jpg``, ``SegmentationClass/*.png`` (palette PNG: 0
background, 1 object, 255 "void" for the border ring), ``ImageSets/Segmentation/{train,val,
trainval}.txt`` and ``labelmap.txt``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from seglib.core.files import write_bytes_atomic
from seglib.formats.items import ExportItem, ExportSummary, copy_photo, iter_items, unique_names
from seglib.masks.trimap import BORDER, OBJECT

VOC_ROOT = Path("VOCdevkit") / "VOC2012"
VOID = 255  # VOC's "void" label, for the border ring
VOC_PALETTE = [0, 0, 0, 128, 0, 0] + [0, 0, 0] * 253 + [224, 224, 192]


def voc_label(trimap: np.ndarray) -> np.ndarray:
    """Trimap -> VOC class map: 0 background, 1 object, 255 border ("void")."""
    out = np.zeros(trimap.shape, np.uint8)
    out[trimap == OBJECT] = 1
    out[trimap == BORDER] = VOID
    return out


def _palette_png(label: np.ndarray) -> bytes:
    from PIL import Image

    label = np.ascontiguousarray(label, dtype=np.uint8)
    im = Image.frombytes("P", (label.shape[1], label.shape[0]), label.tobytes())
    im.putpalette(VOC_PALETTE)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def write_voc(items: list[ExportItem], out: Path, summary: ExportSummary, *,
              category: str = "object",
              spread: dict | None = None) -> Path:
    """``OUT/VOCdevkit/VOC2012``: JPEG photos, palette PNG class maps, split lists."""
    root = out / VOC_ROOT
    lists: dict[str, list[str]] = {"train": [], "val": []}
    named = dict((it.stem, name) for it, name in unique_names(items, summary))
    for it, trimap, image in iter_items([i for i in items if i.stem in named], summary, "voc",
                                        **(spread or {})):
        name = named[it.stem]
        copy_photo(it, image, root / "JPEGImages" / name, jpeg=True)
        write_bytes_atomic(root / "SegmentationClass" / f"{name}.png",
                           _palette_png(voc_label(trimap)))
        lists[it.split].append(name)
    sets = root / "ImageSets" / "Segmentation"
    for fname, names in (("train.txt", lists["train"]), ("val.txt", lists["val"]),
                         ("trainval.txt", sorted(lists["train"] + lists["val"]))):
        write_bytes_atomic(sets / fname, "".join(f"{n}\n" for n in names).encode("utf-8"))
    # CVAT's "Segmentation mask 1.1" reads the class colours from this file
    labelmap = ("# label:color_rgb:parts:actions\nbackground:0,0,0::\n"
                f"{category}:128,0,0::\n")
    write_bytes_atomic(root / "labelmap.txt", labelmap.encode("utf-8"))
    return root
