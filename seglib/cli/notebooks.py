"""``python -m seglib notebooks DIR [--no-sample]``: the course notebooks, to open in JupyterLab."""

from __future__ import annotations

import argparse
from pathlib import Path

from seglib.core.errors import SeglibError

HELP = ("Copy the four course notebooks into DIR/notebooks (and the embedded sample into "
        "DIR/data/sample) to open in JupyterLab; existing files are kept, never overwritten.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, metavar="DIR",
                   help="folder to copy into (made when missing); the notebooks go to "
                        "DIR/notebooks, their outputs to DIR/runs/notebooks")
    p.add_argument("--no-sample", action="store_true",
                   help="do not write the embedded sample into DIR/data/sample (set "
                        "images_dir in each notebook to your photos instead)")


def run(args: argparse.Namespace) -> int:
    from seglib.core.images import list_images
    from seglib.course.runner import copy_notebooks

    dest: Path = args.dir
    if dest.exists() and not dest.is_dir():
        raise SeglibError(f"{dest}: exists and is not a folder; choose another DIR")
    for path, written in copy_notebooks(dest):
        if written:
            print(f"wrote {path}")
        else:
            print(f"kept {path}: it exists (not overwritten; rename it to get a fresh copy)")
    sample = dest / "data" / "sample"
    if not args.no_sample:
        if (sample / "images").is_dir() and any((sample / "images").iterdir()):
            print(f"kept {sample}: it exists")
        else:
            from seglib.course.sample import write_sample

            n = len(write_sample(sample))
            print(f"wrote the embedded sample ({n} photos with true trimaps) to {sample}")
    has_sample = (sample / "images").is_dir() and bool(list_images(sample / "images"))
    print(f"open them with: jupyter lab {dest}  (then notebooks/01_sam_masks.ipynb)")
    where = ("they read the sample in ../data/sample/images" if has_sample
             else "there is no sample in ../data/sample/images")
    print(f"{where} and write to ../runs/notebooks (paths relative to notebooks/); for your "
          "own photos set images_dir = \"/path/to/photos\" and truth_dir = \"\" in the "
          "parameters cell of each notebook")
    return 0
