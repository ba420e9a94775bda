"""The tests' trained numbers over seeds, in fp32 and in bf16 autocast, against their bounds.

Each (precision, seed) pair runs pytest on the tests that train or compare precisions, in a
subprocess with ``SEGLIB_PRECISION``, ``SEGLIB_TEST_SEED`` and ``SEGLIB_TEST_RECORD`` set
(see tests/conftest.py): the tests' ``bounds`` then write each checked number to a JSON-lines
file instead of failing, while every other assertion still fails the run. The table gives,
per number and precision, min / mean / max over the seeds, the bound and how many seeds meet
it. bf16 is emulated on CPUs without native bf16 (slower; the same rounding as AMX or
AVX512-BF16). A test that sets its own precision (``test_training_learns_the_toy_task[bf16]``)
is counted under the precision it ran in.

    python bench/seed_sweep.py                        # 5 seeds x fp32, bf16: hours on 2 cores
    python bench/seed_sweep.py --seeds 2 --jobs 2 tests/test_train.py
    python bench/seed_sweep.py --table sweep.jsonl    # the table of an earlier sweep

Results: docs/benchmarks.md ("Trained numbers in the tests, over seeds and precisions").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_SEED = 1337  # seglib.training.data.SPLIT_SEED: the seed the suite itself trains with
TESTS = (
    "tests/test_refine.py::test_refine_small_sample_end_to_end",
    "tests/test_train.py::test_training_learns_the_toy_task",
    "tests/test_predict.py::test_prediction_has_the_photo_size_and_trimap_labels",
    "tests/test_predict.py::test_flip_averaging_is_the_mean_of_photo_and_mirror",
    "tests/test_sam_candidates.py::test_bf16_autocast_is_sane",
)


def run_once(precision: str, seed: int, tests: list[str], record: Path) -> tuple[int, float, str]:
    """pytest on ``tests`` with this precision and seed; (exit code, seconds, last lines)."""
    env = dict(os.environ, SEGLIB_PRECISION=precision, SEGLIB_TEST_SEED=str(seed),
               SEGLIB_TEST_RECORD=str(record), SEGLIB_DEVICE="cpu", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")])))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seglib-sweep-") as tmp:
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "--basetemp", str(Path(tmp) / "t"), *tests],
                             cwd=ROOT, env=env, capture_output=True, text=True)
    tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-3:])
    return out.returncode, time.perf_counter() - t0, tail


def table(rows: list[dict]) -> str:
    """A markdown table: one line per (test, number, precision)."""
    seen: dict[tuple, dict] = {}
    for r in rows:  # a test that pins its precision ran once per sweep precision: keep one
        seen[(r["test"], r["name"], r["precision"], r["seed"])] = r
    groups: dict[tuple, list[dict]] = {}
    for (test, name, prec, _), r in seen.items():
        groups.setdefault((test, name, prec), []).append(r)
    lines = ["| test | number | precision | seeds | min | mean | max | bound | met |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (test, name, prec), rs in sorted(groups.items()):
        vals = [r["value"] for r in rs]
        op, limit = rs[0]["op"], rs[0]["limit"]
        met = sum((v > limit) if op == ">" else (v < limit) for v in vals)
        short = test.split("::")[-1].removeprefix("test_")
        lines.append(f"| {short} | {name} | {prec} | {len(vals)} | {min(vals):.4g} | "
                     f"{statistics.fmean(vals):.4g} | {max(vals):.4g} | {op} {limit:g} | "
                     f"{met}/{len(vals)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tests", nargs="*", default=list(TESTS), help="pytest node ids")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 1337, 1338, ... (default 5)")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"],
                    choices=["fp32", "bf16", "auto"])
    ap.add_argument("--jobs", type=int, default=1, help="pytest runs at a time (default 1)")
    ap.add_argument("--record", type=Path, default=None,
                    help="JSON-lines file for the numbers (default: a temporary file)")
    ap.add_argument("--table", type=Path, default=None,
                    help="only print the table of an earlier sweep's --record file")
    args = ap.parse_args(argv)
    if args.table is not None:
        print(table([json.loads(x) for x in args.table.read_text().splitlines() if x]))
        return 0
    record = args.record or Path(tempfile.mkstemp(prefix="seed_sweep-", suffix=".jsonl")[1])
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("")
    runs = [(p, FIRST_SEED + i) for i in range(args.seeds) for p in args.precisions]
    print(f"{len(runs)} pytest runs ({args.seeds} seeds x {', '.join(args.precisions)}), "
          f"{args.jobs} at a time; numbers in {record}", flush=True)
    failed: list[str] = []

    def one(run: tuple[str, int]) -> None:
        prec, seed = run
        code, secs, tail = run_once(prec, seed, list(args.tests), record)
        print(f"{prec} seed {seed}: exit {code} in {secs:.0f} s  {tail.splitlines()[-1]}",
              flush=True)
        if code != 0:
            failed.append(f"{prec} seed {seed}:\n{tail}")

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(one, runs))
    rows = [json.loads(x) for x in record.read_text().splitlines() if x]
    print(table(rows))
    for f in failed:
        print(f"\nfailed (an assertion that is not a bound): {f}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
