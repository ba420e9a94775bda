"""The export formats: one :class:`Format` entry per format, in :data:`FORMATS`.

The ``export`` command's ``--format`` choices and its help, and
:func:`seglib.formats.export.export_labels`, all read this one table. A new format is one
module with a writer (``write(items, out, summary, *, category, spread, **options) -> Path``,
its items run through :func:`seglib.formats.items.iter_items`) and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from seglib.formats.coco import COCO_JSON, write_coco
from seglib.formats.oxford_pet import PET_ROOT, write_oxford_pet
from seglib.formats.voc import VOC_ROOT, write_voc
from seglib.formats.yolo import YOLO_YAML, write_yolo


@dataclass(frozen=True)
class Format:
    """One export format: its writer and what it writes."""

    name: str  # the --format value
    write: Callable[..., Path]  # writes the export into OUT, returns ``target``'s path
    target: Path  # in OUT: the file or folder a tool opens
    writes: str  # one phrase for the --format help
    val_name: str = "val"  # what the format calls the val split
    read_with: str | None = None  # how to read the export, "{root}" standing for OUT
    options: tuple[str, ...] = ()  # keywords of export_labels the writer takes too


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("coco", write_coco, COCO_JSON, "one instances JSON with RLE masks",
           options=("polygons",)),
    Format("yolo", write_yolo, YOLO_YAML, "Ultralytics segmentation"),
    Format("oxford-pet", write_oxford_pet, PET_ROOT, "Oxford-IIIT Pet trimaps", val_name="test",
           read_with='torchvision OxfordIIITPet("{root}", target_types="segmentation")'),
    Format("voc", write_voc, VOC_ROOT, "Pascal VOC class PNGs",
           read_with='torchvision VOCSegmentation("{root}", year="2012", image_set="train")'),
)}


def format_help() -> str:
    """The ``--format`` help: each format with what it writes."""
    return "; ".join(f"{f.name}: {f.writes}" for f in FORMATS.values())
