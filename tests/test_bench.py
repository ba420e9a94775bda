"""The benchmark scripts run and print what they promise (on the embedded sample)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


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
         "--images", str(SAMPLE / "images"), "--labels", str(labels)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "4 audited photos" in out.stdout
    means = dict(re.findall(r"(\w+) (\d\.\d{4})", out.stdout.splitlines()[1]))
    assert float(means["labels"]) == 1.0
    assert 0.5 < float(means["labeler"]) <= 1.0 and 0.5 < float(means["ceiling"]) <= 1.0
    assert "labeler - rect90 = " in out.stdout


def test_label_quality_without_matching_masks_says_so(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "label_quality.py"), "--truth", str(tmp_path),
         "--images", str(SAMPLE / "images")], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "no <stem>.png mask matches a photo" in out.stderr
    assert "Traceback" not in out.stderr
