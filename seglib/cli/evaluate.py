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
                   help="also write one row per photo plus an 'ALL' row to this CSV file; an "
                        "existing file is replaced only when it already holds exactly these "
                        "results, or with --overwrite (and never a file that does not start "
                        "with evaluate's header), so rows you added are never lost")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --csv file that evaluate wrote, even when its "
                        "rows differ (other results, or rows added by hand)")


def run(args: argparse.Namespace) -> int:
    from seglib.core.errors import SeglibError
    from seglib.core.files import write_bytes_atomic
    from seglib.core.folders import refuse_output_file
    from seglib.core.tables import csv_bytes
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
        data = csv_bytes([*res.rows, total], list(res.rows[0]))
        if args.csv.exists() and not args.overwrite and args.csv.read_bytes() != data:
            raise SeglibError(f"--csv {args.csv}: exists and holds other rows (other results, "
                              "or rows added by hand), which it would lose; choose another "
                              "--csv file, or add --overwrite to replace it")
        write_bytes_atomic(args.csv, data)
        print(f"wrote {args.csv}")
    return 0
