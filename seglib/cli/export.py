"""``python -m seglib export LABELS --format coco|yolo|oxford-pet|voc --out DIR``: the formats
and their help come from :data:`seglib.formats.registry.FORMATS`."""

from __future__ import annotations

import argparse
from pathlib import Path

from seglib.cli import options
from seglib.formats.registry import FORMATS, format_help

HELP = ("Export a label folder for other tools: COCO (CVAT, Label Studio), YOLO (Ultralytics), "
        "Oxford-IIIT Pet or Pascal VOC (torchvision). The object is trimap label 1.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("labels", type=Path, help="output folder of `python -m seglib label`")
    p.add_argument("--format", choices=list(FORMATS), required=True, dest="fmt",
                   help=format_help())
    p.add_argument("--out", type=Path, required=True,
                   help="folder for the export (not the photo or label folder)")
    p.add_argument("--photos", type=Path,
                   help="the photo folder (default: the folder the labels were made from)")
    p.add_argument("--category", default="object", help="name of the object class "
                   "(default 'object', e.g. shoe)")
    p.add_argument("--val", type=float, default=0.1,
                   help="fraction of photos in the val (oxford-pet: test) split, chosen by a "
                        "seeded hash of the file name (default 0.1)")
    p.add_argument("--only-confident", action="store_true",
                   help="leave out labels flagged for review")
    p.add_argument("--polygons", action="store_true",
                   help="coco: polygons instead of RLE masks (Label Studio imports polygons)")
    options.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from seglib.formats.export import export_labels

    summary = export_labels(args.labels, args.out, args.fmt, photos=args.photos,
                            category=args.category, val=args.val,
                            only_confident=args.only_confident, polygons=args.polygons,
                            **options.options(args))
    print(summary.describe())
    return 0 if summary.exported else 1
