"""``label --refine 2`` end to end with 1 worker and with N workers, side by side in one run.

    python bench/refine_parallel.py [--images DIR] [--n 825] [--workers 2] [--keep DIR]

Each way runs ``python -m seglib label IMAGES --out FRESH --backend opencv --refine 2`` (a new
process each) on the first ``--n`` photos, in turn, and prints its wall time, the refinement's
own time and training time (from the command's summary line), the ratio N workers / 1 worker
(target <= 0.5 on a 2-core machine) and how far the two runs' labels are apart (share of
byte-identical trimaps, mean object IoU between them): the labeling and the votes are the same
whatever the workers, the training is the one thing that may differ between two runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "shoes" / "images"
REFINE_LINE = re.compile(r"refined (\d+)/(\d+) labels .* in ([\d.]+) s \(training ([\d.]+) s\)")


def run(images: Path, out: Path, n: int, workers: int) -> tuple[float, str]:
    """Wall seconds and output of one ``label --refine 2`` run in a new process."""
    cmd = [sys.executable, "-m", "seglib", "label", str(images), "--out", str(out),
           "--backend", "opencv", "--limit", str(n), "--refine", "2",
           "--workers", str(workers)]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{workers} worker(s) failed: {done.stderr.strip().splitlines()[-1]}")
    return took, done.stdout + done.stderr


def labels_apart(a: Path, b: Path) -> tuple[float, float, int]:
    """Share of byte-identical trimaps, mean object IoU between the two folders, photos."""
    from seglib.masks.trimap import OBJECT, load_trimap

    same, ious = 0, []
    names = sorted(p.name for p in a.glob("*.png"))
    for name in names:
        same += (a / name).read_bytes() == (b / name).read_bytes()
        x, y = load_trimap(a / name) == OBJECT, load_trimap(b / name) == OBJECT
        union = np.count_nonzero(x | y)
        ious.append(np.count_nonzero(x & y) / union if union else 1.0)
    return same / max(1, len(names)), float(np.mean(ious)) if ious else float("nan"), len(names)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES,
                    help=f"folder of photos (default {DEFAULT_IMAGES})")
    ap.add_argument("--n", type=int, default=825, help="photos (default 825)")
    ap.add_argument("--workers", type=int, default=2, help="workers to compare (default 2)")
    ap.add_argument("--keep", type=Path, default=None,
                    help="copy the N-worker run's label folder here (default: deleted)")
    args = ap.parse_args()
    if not args.images.is_dir():
        print(f"{args.images}: no such folder; pass --images DIR", file=sys.stderr)
        return 2
    print(f"load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores", flush=True)
    times: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="seglib-bench-") as tmp:
        for w in (1, args.workers):
            took, text = run(args.images, Path(tmp) / f"w{w}", args.n, w)
            times[w] = took
            m = REFINE_LINE.search(text)
            refine = (f"refine {float(m[3]):.0f} s (training {float(m[4]):.0f} s), "
                      f"{m[1]}/{m[2]} refined") if m else "refine: no summary line"
            print(f"{w} worker(s): {took:7.1f} s wall; {refine}", flush=True)
        same, iou, n = labels_apart(Path(tmp) / "w1", Path(tmp) / f"w{args.workers}")
        if args.keep is not None:
            shutil.copytree(Path(tmp) / f"w{args.workers}", args.keep)
    print(f"ratio {args.workers} workers / 1 worker: {times[args.workers] / times[1]:.2f} "
          "(target <= 0.5)")
    print(f"labels: {same:.1%} of {n} trimaps byte-identical, mean object IoU between the runs "
          f"{iou:.4f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
