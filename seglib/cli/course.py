"""``python -m seglib course [--preset NAME] [--images DIR] [--checkpoint PATH] [--out DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("Run the four course notebooks headless with papermill: executed notebooks, HTML "
        "pages and reports/*.png in --out.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from seglib.course.runner import PRESETS

    names = ", ".join(f"{k} ({v.description})" for k, v in PRESETS.items())
    p.add_argument("--preset", default="demo", choices=list(PRESETS), metavar="NAME",
                   help=f"parameter set: {names}; default demo")
    p.add_argument("--images", type=Path, default=None,
                   help="folder of JPEG/PNG photos (default: the preset's; demo and smoke use "
                        "the embedded sample)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="SAM checkpoint .pth (default: look in the usual places; without one "
                        "the opencv backend labels the photos)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default runs/PRESET); rerunning resumes")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                   metavar=("NAME", "VALUE"),
                   help="set a notebook parameter, e.g. -p epochs 5 -p show_photos 4")
    p.add_argument("--fresh", action="store_true",
                   help="start over: delete --out's labels/, models/, reports/ and executed "
                        "notebooks first (needed when --out was made from other photos)")
    p.add_argument("--no-html", action="store_true", help="skip the HTML export")


def run(args: argparse.Namespace) -> int:
    from seglib.course.runner import parse_value, run_course

    overrides = {name: parse_value(value) for name, value in args.parameter}
    run_course(args.preset, images=args.images, checkpoint=args.checkpoint, out=args.out,
               overrides=overrides, html=not args.no_html, fresh=args.fresh)
    return 0
