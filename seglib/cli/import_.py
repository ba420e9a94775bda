"""``python -m seglib import LABELS --coco FILE``: masks fixed in CVAT or Label Studio become
the photos' labels (``import`` is a Python keyword, hence the module name)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("Make the masks of a COCO file (exported by CVAT, Label Studio or pycocotools; RLE or "
        "polygons) the labels of their photos, matched by file name.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("labels", type=Path, help="output folder of `python -m seglib label`")
    p.add_argument("--coco", type=Path, required=True, help="COCO instances JSON file")
    p.add_argument("--category", help="import only the annotations of this category "
                   "(default: every annotation of an image, merged)")


def run(args: argparse.Namespace) -> int:
    from seglib.formats.coco import import_coco

    summary = import_coco(args.labels, args.coco, category=args.category)
    for name, reason in sorted(summary.problems.items()):
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(summary.describe())
    return 0 if summary.imported or summary.unchanged else 1
