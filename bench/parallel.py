"""opencv ``label`` with 1 worker, N workers and ``--engine ray``, side by side in one run.

    python bench/parallel.py [--images DIR] [--n 120] [--workers 2] [--no-ray]

Each way labels the first ``--n`` photos of ``--images`` into a fresh folder with
``python -m seglib label --backend opencv --limit N`` (a new process each, so every way pays
the same Python start-up), in turn; the wall times give the ratios 1 worker / N workers
(target >= 1.7x on a 2-core machine) and 1 worker / Ray. Ray's fixed start-up cost (start a
local instance, start N actors, shut down) is timed on its own. The outputs of every way are
compared file by file with the 1-worker run's (only ``labels.csv``'s ``seconds`` may differ).
Prints the machine's load average before and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "shoes" / "images"
TIMINGS = ("seconds",)  # labels.csv columns that hold timings


def label(images: Path, out: Path, n: int, *extra: str) -> float | None:
    """Wall seconds of one ``label`` run in a new process (None, and its error, if it failed)."""
    cmd = [sys.executable, "-m", "seglib", "label", str(images), "--out", str(out),
           "--backend", "opencv", "--limit", str(n), *extra]
    t = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        print(f"  {' '.join(extra) or '1 worker'} failed: {done.stderr.strip().splitlines()[-1]}")
        return None
    return time.perf_counter() - t


def contents(folder: Path) -> dict[str, object]:
    """Every file's bytes; ``labels.csv`` as rows without the timing columns."""
    out: dict[str, object] = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        name = str(p.relative_to(folder))
        if p.name == "labels.csv":
            rows = list(csv.DictReader(io.StringIO(p.read_text(encoding="utf-8"))))
            out[name] = [{k: v for k, v in r.items() if k not in TIMINGS} for r in rows]
        else:
            out[name] = p.read_bytes()
    return out


def driver_seconds(images: Path, labels: Path) -> float:
    """Seconds per photo of the writing process's own work for a labeled folder: hash the
    photo, write its candidates and its trimap (``labels.csv`` is rewritten at most every
    few seconds, left out)."""
    from seglib.core.files import file_sha256
    from seglib.core.images import list_images
    from seglib.masks.candidates import Candidates
    from seglib.masks.trimap import load_trimap, save_trimap

    photos = {p.stem: p for p in list_images(images)}
    done = sorted((labels / "candidates").glob("*.npz"))
    with tempfile.TemporaryDirectory(prefix="seglib-bench-") as tmp:
        spent = 0.0
        for npz in done:
            cands, trimap = Candidates.load(npz), load_trimap(labels / f"{npz.stem}.png")
            t = time.perf_counter()
            file_sha256(photos[npz.stem])
            cands.save(Path(tmp) / npz.name)
            save_trimap(Path(tmp) / f"{npz.stem}.png", trimap)
            spent += time.perf_counter() - t
    return spent / max(1, len(done))


def ray_startup(workers: int) -> float:
    """Seconds to start a local Ray instance, start ``workers`` actors and shut it down."""
    from seglib.core.parallel import map_photos

    t = time.perf_counter()
    list(map_photos(abs, range(workers), engine="ray", workers=workers))
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES,
                    help=f"folder of photos (default {DEFAULT_IMAGES})")
    ap.add_argument("--n", type=int, default=120, help="photos to label (default 120)")
    ap.add_argument("--workers", type=int, default=2, help="workers to compare (default 2)")
    ap.add_argument("--no-ray", action="store_true", help="leave Ray out")
    args = ap.parse_args()
    if not args.images.is_dir():
        print(f"{args.images}: no such folder; pass --images DIR", file=sys.stderr)
        return 2
    try:
        import ray  # noqa: F401
    except ImportError:
        args.no_ray = True
        print("Ray is not installed (pip install 'seglib[ray]'): Ray left out")
    print(f"load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="seglib-bench-") as tmp:
        root = Path(tmp)
        ways = {"1 worker": (), f"{args.workers} workers": ("--workers", str(args.workers))}
        if not args.no_ray:
            ways["ray"] = ("--engine", "ray", "--workers", str(args.workers))
        for name, extra in ways.items():
            took = label(args.images, root / name, args.n, *extra)
            if took is None:
                continue
            times[name] = took
            print(f"{name:>10}: {took:7.1f} s  ({took / args.n:.3f} s per photo)")
        base = contents(root / "1 worker")
        for name in [w for w in list(ways)[1:] if w in times]:
            same = contents(root / name) == base
            print(f"{name:>10}: outputs {'identical to' if same else 'DIFFER from'} 1 worker's")
        driver = driver_seconds(args.images, root / "1 worker")
        startup = None
        if "ray" in times:
            from seglib.core.errors import SeglibError

            try:
                startup = ray_startup(args.workers)
            except SeglibError as exc:
                print(f"Ray start-up not measured: {exc}")
    one = times["1 worker"]
    print(f"ratio 1 worker / {args.workers} workers: {one / times[f'{args.workers} workers']:.2f}x"
          " (target >= 1.7x)")
    if startup is not None:
        print(f"ratio 1 worker / ray ({args.workers} actors): {one / times['ray']:.2f}x; "
              f"Ray start-up (local instance + {args.workers} actors + shutdown): "
              f"{startup:.1f} s")
    print(f"the writing process's own work: {driver * 1000:.1f} ms per photo (hash, candidates, "
          "trimap)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
