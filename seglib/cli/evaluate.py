"""``python -m seglib evaluate PRED TRUTH [--csv FILE]``."""

from __future__ import annotations

import argparse
from pathlib import Path

CSV_HEADER = ("stem", "pixel_accuracy")  # the first columns of the --csv file
HELP = "Compare predicted trimaps with true ones: per-class IoU, mean IoU, pixel accuracy."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pred", type=Path, help="folder of predicted trimap PNGs")
    p.add_argument("truth", type=Path, help="folder of true trimap PNGs (same file stems)")
    p.add_argument("--csv", type=Path, default=None,
                   help="also write one row per photo plus an 'ALL' row to this CSV file")


def run(args: argparse.Namespace) -> int:
    from seglib.core.folders import refuse_output_file
    from seglib.core.tables import write_csv
    from seglib.masks.metrics import evaluate_folders, format_table

    if args.csv:  # checked before any work: metrics never replace a photo or a record
        refuse_output_file(args.csv, header=",".join(CSV_HEADER), option="--csv",
                           inputs=[args.pred, args.truth])
    res = evaluate_folders(args.pred, args.truth)
    for stem, reason in res.skipped:
        print(f"skipped {stem}: {reason}")
    print(format_table(res.summary))
    if args.csv:
        s = res.summary
        total = {"stem": "ALL", "pixel_accuracy": s["pixel_accuracy"],
                 "iou_object": s["iou_object"], **{f"iou_{k}": v for k, v in s["iou"].items()}}
        write_csv(args.csv, [*res.rows, total], list(res.rows[0]))
        print(f"wrote {args.csv}")
    return 0
