"""``python -m seglib pick OUT_DIR --policy ...``: re-pick from cached candidates, no model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seglib.masks.policy import POLICIES

HELP = ("Re-pick the object of every labeled photo from its cached candidates (no model), "
        "honouring OUT_DIR/overrides.csv; refined, imported and hand-edited labels are kept.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="output folder of `python -m seglib label`")
    p.add_argument("--policy", choices=POLICIES, default="foreground",
                   help="foreground (default) or seed (highest predicted_iou, the original)")
    p.add_argument("--replace-kept", action="store_true",
                   help="also re-pick refined, imported and hand-edited labels (they are kept "
                        "otherwise)")


def run(args: argparse.Namespace) -> int:
    from seglib.labels.labeling import repick_folder

    summary = repick_folder(args.out, args.policy, replace_kept=args.replace_kept)
    for line in summary.problems:  # "STEM: what happened", one line each
        print(line, file=sys.stderr)
    print(summary.describe())
    return summary.exit_code
