"""Outputs never land on inputs: what a folder is, and the one refusal rule every command uses."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from toys import toy_pairs

from seglib.cli import main
from seglib.core.errors import SeglibError
from seglib.core.files import write_png_atomic
from seglib.core.folders import describe_changes, folder_kind, mark_folder, refuse_output
from seglib.masks.trimap import load_trimap
from seglib.training.loop import train_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("folders")
    images, trimaps = toy_pairs(root, 8)
    r = train_run(images, trimaps, root / "run", preset="smoke", size=16, epochs=1,
                  progress=False, log=lambda m: None)
    return r.best, images, trimaps


def _label_folder(trimaps: Path, where: Path) -> dict[str, bytes]:
    shutil.copytree(trimaps, where)
    (where / "labels.csv").write_text("stem,status\np000,ok\n")
    return {p.name: p.read_bytes() for p in where.iterdir()}


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    return err


def test_predict_into_a_label_folder_is_refused(trained, tmp_path, capsys):
    best, images, trimaps = trained
    labels = tmp_path / "labels"
    before = _label_folder(trimaps, labels)
    code = main(["predict", str(best), str(images), "--out", str(labels), "--device", "cpu"])
    err = _one_error_line(capsys)
    assert code == 2 and "label folder" in err and "--out" in err
    assert {p.name: p.read_bytes() for p in labels.iterdir()} == before


def test_predict_refuses_a_run_and_photos_but_reruns_into_its_own_folder(trained, tmp_path,
                                                                       capsys):
    best, images, trimaps = trained
    assert main(["predict", str(best), str(images), "--out", str(best.parent)]) == 2
    assert "training run" in _one_error_line(capsys)
    truth = tmp_path / "truth"  # hand-made trimaps with the photos' names, not marked
    shutil.copytree(trimaps, truth)
    before = {p.name: p.read_bytes() for p in truth.iterdir()}
    assert main(["predict", str(best), str(images), "--out", str(truth)]) == 2
    err = _one_error_line(capsys)
    assert "would overwrite (p000.png, p001.png, p002.png, ...)" in err
    assert {p.name: p.read_bytes() for p in truth.iterdir()} == before
    pred = tmp_path / "pred"
    for _ in range(2):  # a rerun writes into its own predictions again
        assert main(["predict", str(best), str(images), "--out", str(pred)]) == 0
    assert folder_kind(pred) == "predictions" and len(list(pred.glob("*.png"))) == 8


def test_trimap_into_its_input_folder_or_a_label_folder_is_refused(trained, tmp_path, capsys):
    _, _, trimaps = trained
    masks = tmp_path / "masks"
    for t in trimaps.glob("*.png"):  # binary masks: object 255
        write_png_atomic(masks / t.name, (load_trimap(t) == 1).astype(np.uint8) * 255)
    before = {p.name: p.read_bytes() for p in masks.iterdir()}
    assert main(["trimap", str(masks), "--out", str(masks / "."), "--overwrite"]) == 2
    assert "input folder" in _one_error_line(capsys)
    labels = tmp_path / "labels"
    labels_before = _label_folder(trimaps, labels)
    assert main(["trimap", str(masks), "--out", str(labels), "--overwrite"]) == 2
    assert "label folder" in _one_error_line(capsys)
    assert {p.name: p.read_bytes() for p in labels.iterdir()} == labels_before
    assert {p.name: p.read_bytes() for p in masks.iterdir()} == before
    out = tmp_path / "tri"
    assert main(["trimap", str(masks), "--out", str(out)]) == 0
    assert main(["trimap", str(masks), "--out", str(out), "--overwrite"]) == 0  # its own


def test_folder_kinds_and_the_refusal_rule(tmp_path):
    assert folder_kind(tmp_path / "none") is None and folder_kind(tmp_path) is None
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "history.csv").write_text("epoch\n")
    assert folder_kind(tmp_path / "run") == "run"
    (tmp_path / "models" / "model_10").mkdir(parents=True)
    (tmp_path / "models" / "model_10" / "best.pt").write_bytes(b"x")
    assert folder_kind(tmp_path / "models") == "runs"
    mark_folder(tmp_path / "export", "coco")
    assert folder_kind(tmp_path / "export") == "coco"
    refuse_output(tmp_path / "export", allow="coco", writes=["x.json"])
    with pytest.raises(SeglibError, match="export: holds coco written by seglib"):
        refuse_output(tmp_path / "export", allow="yolo")
    with pytest.raises(SeglibError, match="training run"):
        refuse_output(tmp_path / "run", allow="predictions")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(b"x")
    with pytest.raises(SeglibError, match=r"photos: holds photos or other files .* \(a.png\)"):
        refuse_output(tmp_path / "photos", allow="predictions", writes=["a.png", "b.png"])
    with pytest.raises(SeglibError, match=r"photos: holds photos \(a.png\)"):  # no clash,
        refuse_output(tmp_path / "photos", allow="predictions", writes=["b.png"])  # still
    with pytest.raises(SeglibError, match="is an input folder"):
        refuse_output(tmp_path / "photos" / ".", inputs=[tmp_path / "photos"], allow="x")
    (tmp_path / "f").write_text("x")
    with pytest.raises(SeglibError, match="is a file"):
        refuse_output(tmp_path / "f", allow="x")


def test_describe_changes_names_a_few():
    old = {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}
    new = {"a": "9", "b": "9", "c": "9", "d": "9", "e": "5", "f": "6"}
    assert describe_changes(old, new) == ["4 photos changed (a, b, c, ...)",
                                          "1 photo is new (f)"]
    assert describe_changes(new, old, "label", added=False) == [
        "4 labels changed (a, b, c, ...)", "1 label is gone (f)"]
    assert describe_changes(old, old) == []
