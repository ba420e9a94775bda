"""The benchmark scripts run and print what they promise (on the embedded sample)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


def _label_quality():
    """bench/label_quality.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("label_quality",
                                                  ROOT / "bench" / "label_quality.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_label_quality_scores_the_labeler_against_audited_masks(tmp_path: Path) -> None:
    truth = tmp_path / "truth"
    truth.mkdir()
    for f in sorted((SAMPLE / "trimaps").glob("*.png"))[:4]:
        shutil.copyfile(f, truth / f.name)
    labels = tmp_path / "labels"
    labels.mkdir()
    for f in truth.glob("*.png"):  # a "labels" folder equal to the truth scores 1.0
        shutil.copyfile(f, labels / f.name)
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "label_quality.py"), "--truth", str(truth),
         "--images", str(SAMPLE / "images"), "--labels", str(labels), "--rect90-at", "0"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "4 audited photos" in out.stdout
    means = dict(re.findall(r"(\w+) (\d\.\d{4})", out.stdout.splitlines()[1]))
    assert float(means["labels"]) == 1.0
    assert 0.5 < float(means["labeler"]) <= 1.0 and 0.5 < float(means["ceiling"]) <= 1.0
    assert "labeler - rect90 = " in out.stdout
    subset = out.stdout.splitlines()[3]  # rect90 >= 0 keeps every photo: the same means
    assert subset.startswith("4 photos where rect90 does best")
    assert dict(re.findall(r"(\w+) (\d\.\d{4})", subset)) == means
    assert "line fit against rect90, read at 0.0" in out.stdout
    assert re.search(r"^  labels +1\.0000 \(1\.000 \.\. 1\.000\)$", out.stdout, re.M)


def test_easiest_subset_is_the_largest_prefix_meeting_the_mean() -> None:
    mod = _label_quality()
    scores = [0.5, 0.9, 1.0, 0.7, 0.2]
    # best first: 1.0, 0.9, 0.7, 0.5, 0.2 -> running means 1.0, 0.95, 0.867, 0.775, 0.66
    assert mod.easiest_subset(scores, 0.8) == [1, 2, 3]
    assert mod.easiest_subset(scores, 0.7) == [0, 1, 2, 3]
    assert mod.easiest_subset(scores, 0.0) == [0, 1, 2, 3, 4]
    assert mod.easiest_subset(scores, 1.1) == []


def test_fit_at_reads_the_line_and_brackets_it() -> None:
    mod = _label_quality()
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 0.9, 60)
    y = 0.3 + 0.6 * x + rng.normal(0, 0.02, 60)
    est, lo, hi = mod.fit_at(x.tolist(), y.tolist(), 0.82)
    assert abs(est - (0.3 + 0.6 * 0.82)) < 0.01 and lo < est < hi and hi - lo < 0.03
    est, lo, hi = mod.fit_at([0.7, 0.7], [0.6, 0.8], 0.9)  # no spread in x: the mean
    assert abs(est - 0.7) < 1e-9 and lo <= est <= hi


def test_label_quality_without_matching_masks_says_so(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "label_quality.py"), "--truth", str(tmp_path),
         "--images", str(SAMPLE / "images")], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "no <stem>.png mask matches a photo" in out.stderr
    assert "Traceback" not in out.stderr
