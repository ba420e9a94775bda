"""``python -m seglib sample --out data/sample [--n 48] [--seed 0] [--size 240]``."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from tqdm.auto import tqdm

from seglib.core.errors import SeglibError
from seglib.course.sample import sample_kinds, sample_records, write_sample

HELP = ("Write the embedded synthetic sample: sneaker photos with their true masks and "
        "trimaps (deterministic for a seed). --out must be new, empty or an earlier sample "
        "folder; a rerun keeps the files changed since it wrote them.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("data/sample"),
                   help="output folder (default data/sample)")
    p.add_argument("--n", type=int, default=48, help="number of photos (default 48)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=int, default=240, help="photo side in pixels (default 240)")


def run(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise SeglibError(f"--n must be at least 1, got {args.n}")
    if args.size < 32:
        raise SeglibError(f"--size must be at least 32 pixels, got {args.size}")
    if args.seed < 0:
        raise SeglibError(f"--seed must be 0 or more, got {args.seed}")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise SeglibError(f"{out}: exists and is not a folder; choose another --out")
    sample_records(out)  # refuses a folder that is not the sample's, before the progress bar
    kept: list[str] = []
    with tqdm(total=args.n, desc="sample", unit="photo") as bar:
        paths = write_sample(out, n=args.n, seed=args.seed, size=args.size,
                             progress=lambda i: bar.update(1), kept=kept)
    kinds = Counter(sample_kinds(args.n, args.seed))
    summary = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    print(f"wrote {len(paths)} photos, masks and trimaps to {out} ({summary})")
    if kept:
        names = ", ".join(kept[:5]) + (", ..." if len(kept) > 5 else "")
        print(f"kept {len(kept)} files changed since sample wrote them, not replaced or "
              f"removed ({names}); delete them for fresh ones", file=sys.stderr)
    return 0

