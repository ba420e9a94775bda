"""``python -m seglib fix LABELS STEM --box x0 y0 x1 y1 --point x y --negative x y``: redraw
one wrong label from a box and clicks (GrabCut offline, SAM with a checkpoint)."""

from __future__ import annotations

import argparse
from pathlib import Path

from seglib.backends import BACKENDS

HELP = ("Redraw the label of one photo from prompts: --box around the object, --point on it, "
        "--negative off it (the photo's pixels); written as source 'prompted', its prompts "
        "recorded in LABELS/prompts.csv.")
PROMPTERS = ("opencv", *(n for n, b in BACKENDS.items() if b.prompter and b.get_one))
GET_ONE = ("get one with `python -m seglib weights NAME`: "
           + ", ".join(f"{b.get_one.split()[-1]} ({n})" for n, b in BACKENDS.items()
                       if n in PROMPTERS and b.get_one))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("labels", type=Path, help="label folder of `python -m seglib label`")
    p.add_argument("stem", help="the photo's name without its extension (labels.csv's stem)")
    p.add_argument("--box", type=float, nargs=4, metavar=("X0", "Y0", "X1", "Y1"),
                   help="a box around the object, in the photo's pixels")
    p.add_argument("--point", type=float, nargs=2, action="append", default=[],
                   metavar=("X", "Y"), help="a point on the object (repeatable)")
    p.add_argument("--negative", type=float, nargs=2, action="append", default=[],
                   metavar=("X", "Y"), help="a point off the object (repeatable)")
    p.add_argument("--backend", choices=PROMPTERS, default="opencv",
                   help="opencv (GrabCut, no checkpoint; default) or a SAM backend")
    p.add_argument("--checkpoint", type=Path,
                   help="the SAM checkpoint file or SAM 2.1 / EdgeTAM / SlimSAM folder "
                        f"(default: the one found, as `label` finds it); {GET_ONE}")
    p.add_argument("--images", type=Path,
                   help="the photos' folder (default: the one recorded in LABELS/seglib.json)")


def run(args: argparse.Namespace) -> int:
    from seglib.labels.fixing import fix_label

    result = fix_label(args.labels, args.stem, points=args.point, negative=args.negative,
                       box=args.box, images_dir=args.images, backend=args.backend,
                       checkpoint=args.checkpoint)
    print(result.describe())
    return 0
