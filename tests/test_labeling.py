"""The resumable labeling loop and the ``label`` / ``pick`` commands."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from seglib.backends.opencv import propose
from seglib.cli import main
from seglib.core.errors import SeglibError
from seglib.core.folders import LOCK_NAME
from seglib.labels.labeling import label_folder, repick_folder
from seglib.labels.store import LabelStore
from seglib.masks.candidates import Candidates
from seglib.masks.trimap import load_trimap, mask_to_trimap

ROOT = Path(__file__).resolve().parents[1]


def photo(seed: int, h: int = 72, w: int = 96) -> np.ndarray:
    """A small BGR photo: a coloured blob with a white sole on a light background."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), rng.uniform(180, 240, 3), np.float32)
    yy, xx = np.mgrid[:h, :w]
    cy, cx = h * rng.uniform(0.45, 0.55), w * rng.uniform(0.4, 0.6)
    body = ((yy - cy) / (0.22 * h)) ** 2 + ((xx - cx) / (0.3 * w)) ** 2 <= 1
    img[body] = rng.uniform(0, 120, 3)
    img += rng.normal(0, 3, img.shape)
    return img.clip(0, 255).astype(np.uint8)


def make_folder(folder: Path, n: int, **kw: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    stems = []
    for i in range(n):
        stem = f"shoe_{i:03d}"
        cv2.imwrite(str(folder / f"{stem}.jpg"), photo(i, **kw))
        stems.append(stem)
    return stems


def csv_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


class CountingProposer:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, image: np.ndarray) -> Candidates:
        self.calls += 1
        return propose(image)


def label(images: Path, out: Path, proposer=propose, **kw):  # noqa: ANN001, ANN201
    return label_folder(images, out, proposer, backend="opencv", mode="classical", **kw)


def test_label_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    import seglib.backends.sam_weights
    monkeypatch.setattr(seglib.backends.sam_weights, "find_checkpoint", lambda *a, **k: None)
    stems = make_folder(tmp_path / "img", 3)
    cv2.imwrite(str(tmp_path / "img" / "tall.png"), photo(9, h=90, w=50))
    out = tmp_path / "out"
    assert main(["label", str(tmp_path / "img"), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    notices = [ln for ln in err.splitlines() if ln.startswith("notice:")]
    from seglib.backends import AUTO_ORDER, BACKENDS

    first = BACKENDS[AUTO_ORDER[0]].get_one  # how to get the checkpoint auto tries first
    assert len(notices) == 1 and first in notices[0] and "opencv backend" in notices[0]
    rows = csv_rows(out)
    assert [r["stem"] for r in rows] == sorted(stems + ["tall"])
    assert all(r["status"] == "ok" and r["backend"] == "opencv" for r in rows)
    assert all(r["policy"] == "foreground" and r["chosen"] for r in rows)
    t = load_trimap(out / "tall.png")
    assert t.shape == (90, 50) and set(np.unique(t)) == {1, 2, 3}
    c = Candidates.load(out / "candidates" / "tall.npz")
    assert c.shape == (90, 50) and c.backend == "opencv"
    assert not (out / LOCK_NAME).exists()
    assert {p.name for p in out.iterdir()} == {f"{s}.png" for s in stems + ["tall"]} | {
        "labels.csv", "candidates", "seglib.json"}


def test_label_finds_the_blob(tmp_path: Path) -> None:
    make_folder(tmp_path / "img", 2)
    label(tmp_path / "img", tmp_path / "out")
    for i in range(2):
        img = photo(i)
        truth = np.abs(img.astype(int) - img[0, 0].astype(int)).sum(axis=2) > 60
        got = load_trimap(tmp_path / "out" / f"shoe_{i:03d}.png") == 1
        assert (got & truth).sum() / (got | truth).sum() > 0.8


def test_resume_redoes_only_missing_outputs(tmp_path: Path) -> None:
    make_folder(tmp_path / "img", 6)
    out = tmp_path / "out"
    first = CountingProposer()
    label(tmp_path / "img", out, first)
    assert first.calls == 6
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "candidates").iterdir()}
    (out / "shoe_001.png").unlink()  # trimap lost: redone from the cache, no model
    (out / "candidates" / "shoe_002.npz").unlink()  # candidates lost: model runs again
    (out / "shoe_002.png").unlink()
    again = CountingProposer()
    s = label(tmp_path / "img", out, again)
    assert again.calls == 1
    assert s.labeled == 2 and s.existing == 4
    assert (out / "shoe_001.png").is_file() and (out / "shoe_002.png").is_file()
    now = {p.name: p.stat().st_mtime_ns for p in (out / "candidates").iterdir()}
    assert {k for k in now if now[k] != mtimes.get(k)} == {"shoe_002.npz"}
    assert [r["stem"] for r in csv_rows(out)] == [f"shoe_{i:03d}" for i in range(6)]
    third = CountingProposer()
    label(tmp_path / "img", out, third, overwrite=True, limit=2)
    assert third.calls == 2


def test_bad_photos_become_skipped_rows(tmp_path: Path) -> None:
    img = tmp_path / "img"
    make_folder(img, 2)
    (img / "zero.jpg").write_bytes(b"")
    (img / "text.jpg").write_text("not a photo")
    (img / ".DS_Store").write_text("x")
    out = tmp_path / "out"
    assert main(["label", str(img), "--out", str(out), "--backend", "opencv"]) == 0
    rows = {r["stem"]: r for r in csv_rows(out)}
    assert set(rows) == {"shoe_000", "shoe_001", "zero", "text"}
    assert rows["zero"]["status"] == "skipped" and "empty file" in rows["zero"]["reason"]
    assert rows["text"]["status"] == "skipped" and "text.jpg" in rows["text"]["reason"]
    bad_only = tmp_path / "bad"
    bad_only.mkdir()
    (bad_only / "zero.jpg").write_bytes(b"")
    assert main(["label", str(bad_only), "--out", str(tmp_path / "o2"),
                 "--backend", "opencv"]) == 1


def test_empty_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    (tmp_path / "img").mkdir()
    assert main(["label", str(tmp_path / "img"), "--out", str(tmp_path / "o"),
                 "--backend", "opencv"]) == 2
    assert "no .jpg/.jpeg/.png photos" in capsys.readouterr().err


def test_large_photo_keeps_its_size(tmp_path: Path) -> None:
    img = tmp_path / "img"
    img.mkdir()
    big = cv2.resize(photo(4), (2000, 1500), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(img / "big.jpg"), big)
    label(img, tmp_path / "out")
    assert load_trimap(tmp_path / "out" / "big.png").shape == (1500, 2000)
    assert max(Candidates.load(tmp_path / "out" / "candidates" / "big.npz").shape) == 1024


def test_lock_refuses_a_second_run_and_takes_over_stale_locks(tmp_path: Path) -> None:
    make_folder(tmp_path / "img", 1)
    out = tmp_path / "out"
    label(tmp_path / "img", out)
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (out / LOCK_NAME).write_text(str(helper.pid))
        with pytest.raises(SeglibError, match="another seglib run"):
            label(tmp_path / "img", out, overwrite=True)
        with pytest.raises(SeglibError, match="another seglib run"):
            repick_folder(out)
    finally:
        helper.kill()
        helper.wait()
    s = label(tmp_path / "img", out, overwrite=True)  # the holder is dead: a stale lock
    assert s.ok == 1 and s.labeled == 1 and not (out / LOCK_NAME).exists()


def test_pick_repicks_and_honours_overrides(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    make_folder(tmp_path / "img", 3)
    out = tmp_path / "out"
    label(tmp_path / "img", out)
    assert main(["pick", str(out), "--policy", "seed"]) == 0
    assert "3/3 photos re-picked from cached candidates" in capsys.readouterr().out
    rows = LabelStore(out).records()
    assert all(r.policy == "seed" for r in rows.values())
    for stem, r in rows.items():
        c = Candidates.load(out / "candidates" / f"{stem}.npz")
        assert r.chosen == str(int(np.argmax(c.predicted_iou)))
        assert isinstance(r.flagged, bool) and isinstance(r.score, float)
    c = Candidates.load(out / "candidates" / "shoe_001.npz")
    (out / "overrides.csv").write_text("stem,candidate\nshoe_001,1\n")
    assert main(["pick", str(out)]) == 0
    assert "(1 manual overrides, 0 failed" in capsys.readouterr().out
    rows = LabelStore(out).records()
    assert rows["shoe_001"].chosen == "1" and rows["shoe_001"].policy == "foreground"
    assert rows["shoe_001"].source == "override"
    assert np.array_equal(load_trimap(out / "shoe_001.png"), mask_to_trimap(c.masks[1]))
    (out / "overrides.csv").write_text("stem,candidate\nshoe_001,99\n")
    assert main(["pick", str(out)]) == 0
    assert "(0 manual overrides" in capsys.readouterr().out  # the bad one was not applied
    row = LabelStore(out).records()["shoe_001"]
    assert row.flagged and "override ignored" in row.reason and row.source == "pick"


def test_pick_without_cache_is_a_clear_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pick", str(tmp_path)]) == 2
    assert "no cached candidates" in capsys.readouterr().err


def _run_cli(images: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "seglib", "label", str(images), "--out", str(out),
         "--backend", "opencv"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)


def _count(folder: Path) -> int:
    return len(list(folder.glob("*.npz"))) if folder.is_dir() else 0


def test_sigkill_at_random_moments_then_finish(tmp_path: Path) -> None:
    stems = make_folder(tmp_path / "img", 24, h=60, w=80)
    out = tmp_path / "out"
    cand = out / "candidates"
    rng = random.Random(0)
    done_before: dict[str, int] = {}
    kills_mid_run = 0
    for cycle in range(5):
        before = _count(cand)
        p = _run_cli(tmp_path / "img", out)
        deadline = time.monotonic() + 20
        while cycle and _count(cand) == before and time.monotonic() < deadline:
            time.sleep(0.005)  # wait until this run has labeled something, then kill it
        time.sleep(rng.uniform(0.0, 0.06))
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills_mid_run += 0 < _count(cand) < len(stems)
        for npz in cand.glob("*.npz") if cand.is_dir() else []:
            done_before.setdefault(npz.name, npz.stat().st_mtime_ns)
    assert kills_mid_run >= 2
    p = _run_cli(tmp_path / "img", out)
    assert p.wait(timeout=120) == 0
    rows = csv_rows(out)
    assert [r["stem"] for r in rows] == stems  # every photo exactly once
    assert all(r["status"] == "ok" for r in rows)
    for stem in stems:
        assert load_trimap(out / f"{stem}.png").shape == (60, 80)
        assert Candidates.load(out / "candidates" / f"{stem}.npz").shape == (60, 80)
    for name, mtime in done_before.items():  # no photo was sent to the model twice
        assert (out / "candidates" / name).stat().st_mtime_ns == mtime
    assert not list(out.rglob("*.tmp")) or all(p.name.startswith(".") for p in out.rglob("*.tmp"))
    assert not (out / LOCK_NAME).exists()


def test_sam_backend_without_checkpoint_is_a_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import seglib.backends.sam_weights
    monkeypatch.setattr(seglib.backends.sam_weights, "find_checkpoint", lambda *a, **k: None)
    make_folder(tmp_path / "img", 1)
    assert main(["label", str(tmp_path / "img"), "--out", str(tmp_path / "o"),
                 "--backend", "sam"]) == 2
    err = capsys.readouterr().err
    assert "no SAM checkpoint found" in err and "python -m seglib weights vit_b" in err
    assert main(["label", str(tmp_path / "img"), "--out", str(tmp_path / "o"),
                 "--checkpoint", str(tmp_path / "missing.pth")]) == 2
    assert "missing.pth" in capsys.readouterr().err


def test_label_folder_with_a_sam_proposer(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from toys import tiny_sam

    from seglib.backends.sam import SamProposer

    torch.set_num_threads(1)
    make_folder(tmp_path / "img", 2)
    proposer = SamProposer(tiny_sam(), mode="prompt", autocast=False, device="cpu")
    s = label_folder(tmp_path / "img", tmp_path / "out", proposer, backend="sam",
                     mode="prompt")
    assert s.ok == 2
    rows = csv_rows(tmp_path / "out")
    assert {r["backend"] for r in rows} == {"sam"} and {r["mode"] for r in rows} == {"prompt"}
    c = Candidates.load(tmp_path / "out" / "candidates" / "shoe_000.npz")
    assert c.shape == (72, 96) and len(c) > 0
    assert load_trimap(tmp_path / "out" / "shoe_000.png").shape == (72, 96)


def test_odd_but_valid_photos_are_labeled_at_their_size(tmp_path: Path) -> None:
    img = tmp_path / "img"
    img.mkdir()
    base = photo(5)
    cv2.imwrite(str(img / "gray.jpg"), cv2.cvtColor(base, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(img / "rgba.png"), cv2.cvtColor(base, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(img / "deep.png"), base.astype(np.uint16) * 257)
    cv2.imwrite(str(img / "tiny.png"), base[:1, :1])
    ok, buf = cv2.imencode(".jpg", base)
    (img / "chaussure été 1.JPG").write_bytes(buf.tobytes())
    (img / "nested").mkdir()
    cv2.imwrite(str(img / "nested" / "inner.jpg"), base)
    s = label(img, tmp_path / "out")
    rows = {r["stem"]: r for r in csv_rows(tmp_path / "out")}
    assert set(rows) == {"gray", "rgba", "deep", "tiny", "chaussure été 1"}
    assert all(r["status"] == "ok" for r in rows.values()) and s.ok == 5
    assert rows["tiny"]["flagged"] == "1" and "no object" in rows["tiny"]["reason"]
    for stem in rows:
        h, w = (1, 1) if stem == "tiny" else base.shape[:2]
        assert load_trimap(tmp_path / "out" / f"{stem}.png").shape == (h, w)


def test_label_refine_option_runs_the_refinement_after_labeling(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    img = tmp_path / "img"
    make_folder(img, 4)
    out = tmp_path / "out"
    # a real call: four photos are too few to train the refining CNN, and the run says so
    assert main(["label", str(img), "--out", str(out), "--backend", "opencv",
                 "--refine", "1"]) == 0
    assert "refinement skipped (only " in capsys.readouterr().out
    assert len(csv_rows(out)) == 4
    # the rounds, device and workers reach refine_labels, which sees the finished labels.csv
    import seglib.refine.rounds
    calls = []

    def fake_refine(images: Path, labels: Path, **kw: object) -> seglib.refine.rounds.RefineSummary:
        calls.append((Path(images), Path(labels), kw, len(csv_rows(Path(labels)))))
        return seglib.refine.rounds.RefineSummary(labels_dir=Path(labels), skipped="test")

    monkeypatch.setattr(seglib.refine.rounds, "refine_labels", fake_refine)
    assert main(["label", str(img), "--out", str(out), "--backend", "opencv",
                 "--refine", "3", "--device", "cpu", "--workers", "2"]) == 0
    assert calls == [(img, out, {"rounds": 3, "device": "cpu", "workers": 2, "engine": "local",
                                 "address": None}, 4)]
    assert main(["label", str(img), "--out", str(out), "--backend", "opencv"]) == 0
    assert len(calls) == 1  # no --refine, no refinement
    assert main(["label", str(img), "--out", str(out), "--refine", "-1"]) == 2
    assert "--refine must be a whole number from 0" in capsys.readouterr().err
