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
    p.add_argument("--replace-kept", action="store_true",
                   help="also replace labels a person made (override, hand-edited, imported) "
                        "that differ from the file's masks")


def run(args: argparse.Namespace) -> int:
    from seglib.core.errors import SeglibError
    from seglib.formats.coco import import_coco

    summary = import_coco(args.labels, args.coco, category=args.category,
                          replace_kept=args.replace_kept)
    for name, reason in sorted(summary.problems.items()):
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if summary.nothing_imported:  # exit code 2, one error line (README: When things go wrong)
        raise SeglibError(f"{args.coco}: nothing imported: all {len(summary.problems)} images "
                          "with masks were skipped (the lines above say why); fix them and "
                          "import again")
    print(summary.describe())
    return 0
