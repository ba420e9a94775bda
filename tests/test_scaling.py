"""--workers N and --engine ray give the files of the one-process run, byte for byte, on
photos of the embedded sample; the lock and resume rules stay those of one process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SAMPLE, sample_stems
from toys import toy_pairs

from seglib.cli import main
from seglib.training.loop import train_run

N_PHOTOS = 6


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos") / "images"
    folder.mkdir()
    for stem in sample_stems(N_PHOTOS):
        shutil.copy(SAMPLE / "images" / f"{stem}.jpg", folder)
    return folder


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("model")
    images, trimaps = toy_pairs(root, 12)
    return train_run(images, trimaps, root / "run", preset="smoke", size=24, epochs=2,
                     progress=False).best


def _predict(model: Path, photos: Path, out: Path, *extra: str) -> dict[str, bytes]:
    assert main(["predict", str(model), str(photos), "--out", str(out), "--overlays",
                 *extra]) == 0
    return files(out)


def test_predict_with_two_workers_writes_the_same_files(model, photos, tmp_path):
    one = _predict(model, photos, tmp_path / "one")
    assert len([n for n in one if n.endswith(".png") and "/" not in n]) == N_PHOTOS
    assert _predict(model, photos, tmp_path / "two", "--workers", "2") == one


def test_predict_on_ray_writes_the_same_files(ray_local, model, photos, tmp_path):
    one = _predict(model, photos, tmp_path / "one")
    assert _predict(model, photos, tmp_path / "ray", "--engine", "ray") == one


def test_address_without_ray_engine_is_one_line(model, photos, tmp_path, capsys):
    assert main(["predict", str(model), str(photos), "--out", str(tmp_path / "o"),
                 "--address", "auto"]) == 2
    err = capsys.readouterr().err
    assert "--address auto: only used with --engine ray" in err and "Traceback" not in err


def _standard(root: Path, images: Path, trimaps: Path, *extra: str) -> Path:
    out = root / "models"
    assert main(["train", str(images), str(trimaps), "--out", str(out), "--standard",
                 "--preset", "smoke", "--size", "24", "--epochs", "2", *extra]) == 0
    return out


def _same(a: object, b: object) -> bool:
    """Equal values, tensors compared element by element (weights, optimizer state)."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _untimed(ckpt: dict) -> dict:
    """A checkpoint without its wall-clock seconds (weights and optimizer state kept)."""
    out = {k: v for k, v in ckpt.items() if k != "seconds"}
    if "history" in out:
        out["history"] = [{k: v for k, v in r.items() if k != "seconds"}
                          for r in out["history"]]
    return out


def test_train_standard_on_ray_gives_the_same_models(ray_local, tmp_path):
    """Five Ray tasks write the five models of the one-process run (one torch thread in both:
    the test session's), and a rerun keeps them."""
    import torch

    images, trimaps = toy_pairs(tmp_path / "pairs", 24)
    one = _standard(tmp_path / "one", images, trimaps)
    ray = _standard(tmp_path / "ray", images, trimaps, "--engine", "ray")
    names = sorted(p.name for p in one.iterdir() if p.is_dir())
    assert names == ["model_10", "model_161", "model_207", "model_711", "model_711B"]
    assert sorted(p.name for p in ray.iterdir() if p.is_dir()) == names
    for name in names:
        # the same weights and records; not the same bytes: torch.save writes a fresh
        # serialization id into every file
        for fname in ("best.pt", "last.pt"):
            a, b = (torch.load(d / name / fname, weights_only=True) for d in (one, ray))
            assert _same(_untimed(a), _untimed(b)), (name, fname)
    summary = (ray / "summary.csv").read_text().splitlines()
    assert len(summary) == 6 and summary[1].startswith("10,")
    before = {n: (ray / n / "best.pt").stat().st_mtime_ns for n in names}
    _standard(tmp_path / "ray", images, trimaps, "--engine", "ray")  # finished: kept as is
    assert {n: (ray / n / "best.pt").stat().st_mtime_ns for n in names} == before


def test_train_standard_workers_2_gives_the_same_models_longest_first(tmp_path):
    """Two local worker processes write the five models of the one-process run (one torch
    thread in each), the longest runs are handed out first, and a rerun keeps them."""
    import torch

    from seglib.training.loop import _photos_seen
    from seglib.training.presets import get_preset

    images, trimaps = toy_pairs(tmp_path / "pairs", 24)
    one = _standard(tmp_path / "one", images, trimaps)
    two = _standard(tmp_path / "two", images, trimaps, "--workers", "2")
    names = sorted(p.name for p in one.iterdir() if p.is_dir())
    assert sorted(p.name for p in two.iterdir() if p.is_dir()) == names
    for name in names:
        for fname in ("best.pt", "last.pt"):
            a, b = (torch.load(d / name / fname, weights_only=True) for d in (one, two))
            assert _same(_untimed(a), _untimed(b)), (name, fname)
    assert (two / "summary.csv").read_text().splitlines()[1].startswith("10,")
    before = {n: (two / n / "best.pt").stat().st_mtime_ns for n in names}
    _standard(tmp_path / "two", images, trimaps, "--workers", "2")  # finished: kept as is
    assert {n: (two / n / "best.pt").stat().st_mtime_ns for n in names} == before
    quick = get_preset("quick")
    seen = [_photos_seen(quick, n, 611) for n in (10, 161, 207, 711)]
    assert seen == sorted(seen) and seen[0] < seen[-1]


def test_engine_ray_needs_standard(tmp_path, capsys):
    images, trimaps = toy_pairs(tmp_path / "pairs", 4)
    assert main(["train", str(images), str(trimaps), "--out", str(tmp_path / "m"),
                 "--engine", "ray"]) == 2
    assert "add --standard" in capsys.readouterr().err


# -- label --------------------------------------------------------------------------------------
def labels(folder: Path) -> dict[str, object]:
    """The label folder's files; labels.csv as rows without the timing column."""
    import csv

    out: dict[str, object] = {}
    for name, data in files(folder).items():
        if name == "labels.csv":
            rows = list(csv.DictReader(data.decode("utf-8").splitlines()))
            out[name] = [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
        elif not name.startswith("."):
            out[name] = data
    return out


def _label(photos: Path, out: Path, *extra: str) -> dict[str, object]:
    assert main(["label", str(photos), "--out", str(out), "--backend", "opencv",
                 "--limit", str(N_PHOTOS), *extra]) == 0
    return labels(out)


@pytest.fixture(scope="module")
def labeled_once(photos, tmp_path_factory) -> dict[str, object]:
    """The one-process run's label folder."""
    got = _label(photos, tmp_path_factory.mktemp("one") / "labels")
    assert len([n for n in got if n.startswith("candidates/")]) == N_PHOTOS
    assert len(got["labels.csv"]) == N_PHOTOS  # type: ignore[arg-type]
    return got


def test_label_with_two_workers_writes_the_same_files(photos, labeled_once, tmp_path):
    assert _label(photos, tmp_path / "two", "--workers", "2") == labeled_once


def test_label_on_ray_writes_the_same_files(ray_local, photos, labeled_once, tmp_path):
    assert _label(photos, tmp_path / "ray", "--engine", "ray") == labeled_once


def test_a_worker_killed_mid_run_takes_only_its_photo(photos, labeled_once, tmp_path,
                                                     monkeypatch):
    """One worker dies (os._exit) on its first photo: that photo gets a skipped row with the
    reason and no file; the rerun labels it, and only it; the folder then equals the
    one-process run's."""
    from parallel_toys import CRASH_ONCE, propose_or_exit

    from seglib.labels.labeling import label_folder

    marker = tmp_path / "crash-once"
    marker.touch()
    monkeypatch.setenv(CRASH_ONCE, str(marker))  # spawned workers get this environment
    out = tmp_path / "labels"
    first = label_folder(photos, out, propose_or_exit, backend="opencv", mode="classical",
                         limit=N_PHOTOS, workers=2)
    assert not marker.exists(), "no worker died: the test proves nothing"
    dead = [r for r in first.rows if r.status == "skipped"]
    assert len(dead) == 1 and "worker process died" in dead[0].reason
    assert first.labeled == N_PHOTOS - 1 and first.skipped == 1
    assert not (out / "candidates" / f"{dead[0].stem}.npz").exists()
    assert not (out / f"{dead[0].stem}.png").exists()
    again = label_folder(photos, out, propose_or_exit, backend="opencv", mode="classical",
                         limit=N_PHOTOS, workers=2)
    assert again.labeled == 1 and again.existing == N_PHOTOS - 1
    assert labels(out) == labeled_once


# -- refine -------------------------------------------------------------------------------------
def test_refine_votes_with_two_workers_give_the_same_labels(photos, tmp_path):
    """The per-photo votes in two workers: the same trimaps, candidates and rows."""
    from seglib.refine.rounds import refine_labels
    from seglib.refine.views import KEPT_UNSURE

    one = tmp_path / "one"
    _label(photos, one)
    two = tmp_path / "two"
    shutil.copytree(one, two)
    kw = dict(rounds=1, size=32, epochs=3, preset="smoke", min_photos=2, progress=False,
              log=lambda m: None)
    a = refine_labels(photos, one, **kw)
    b = refine_labels(photos, two, workers=2, **kw)
    assert not a.skipped and a.total == N_PHOTOS
    voters = a.refined + a.kept_why.get(KEPT_UNSURE, 0)
    assert voters > 0, "no photo went through the vote: the test proves nothing"
    assert (b.refined, b.kept_why) == (a.refined, a.kept_why)

    def voted(folder: Path) -> dict[str, object]:
        return {k: v for k, v in labels(folder).items() if not k.startswith("refine_model")}

    assert voted(two) == voted(one)


# -- export -------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["coco", "voc"])
def test_export_with_two_workers_writes_the_same_files(photos, tmp_path, fmt):
    labeled = tmp_path / "labels"
    _label(photos, labeled)
    got = {}
    for way, extra in (("one", ()), ("two", ("--workers", "2"))):
        assert main(["export", str(labeled), "--format", fmt, "--out", str(tmp_path / way),
                     "--photos", str(photos), "--val", "0.3", *extra]) == 0
        got[way] = files(tmp_path / way)
    assert len(got["one"]) > N_PHOTOS and got["two"] == got["one"]
