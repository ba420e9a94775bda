"""``python -m seglib evaluate PRED TRUTH [--csv FILE]``."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

HELP = "Compare predicted trimaps with true ones: per-class IoU, mean IoU, pixel accuracy."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pred", type=Path, help="folder of predicted trimap PNGs")
    p.add_argument("truth", type=Path, help="folder of true trimap PNGs (same file stems)")
    p.add_argument("--csv", type=Path, default=None,
                   help="also write one row per photo plus an 'ALL' row to this CSV file")


def run(args: argparse.Namespace) -> int:
    from seglib.io import write_bytes_atomic
    from seglib.metrics import evaluate_folders, format_table

    res = evaluate_folders(args.pred, args.truth)
    for stem, reason in res.skipped:
        print(f"skipped {stem}: {reason}")
    print(format_table(res.summary))
    if args.csv:
        fields = list(res.rows[0])
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        w.writerows(res.rows)
        s = res.summary
        w.writerow({"stem": "ALL", "pixel_accuracy": s["pixel_accuracy"],
                    "iou_object": s["iou_object"],
                    **{f"iou_{k}": v for k, v in s["iou"].items()}})
        write_bytes_atomic(args.csv, buf.getvalue().encode("utf-8", errors="surrogateescape"))
        print(f"wrote {args.csv}")
    return 0
