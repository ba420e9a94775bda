"""A hostile tester's probes: a PNG that claims a huge size, and outputs that replaced a
user's files (sample, predict, label's candidates, evaluate --csv), and a notice that did not
name the missing ``$SEGLIB_CHECKPOINT`` file."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SAMPLE

from seglib.core.errors import ImageReadError
from seglib.core.images import read_image


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def huge_png(side: int = 100_000) -> bytes:
    """A PNG whose header claims ``side``×``side`` pixels, with a 10-byte IDAT."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", b"\x78\x9c" + b"\0" * 8) + _chunk(b"IEND", b""))


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _photos(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for p in sorted((SAMPLE / "images").glob("*.jpg"))[:n]:
        shutil.copyfile(p, folder / p.name)
    return folder


# -- 1: a PNG claiming 100000×100000 pixels --------------------------------------------------
def test_read_image_refuses_a_png_claiming_a_huge_size(tmp_path: Path) -> None:
    path = tmp_path / "giant.png"
    path.write_bytes(huge_png())
    with pytest.raises(ImageReadError, match="giant.png") as info:
        read_image(path)
    assert "100000" in str(info.value) and "\n" not in str(info.value)


def test_a_decoder_error_is_an_image_read_error(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "odd.png"
    cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))

    def fail(*_a: object) -> None:
        raise cv2.error("OpenCV(5.0.0) loadsave.cpp:79: error: (-215:Assertion failed) x\n")

    monkeypatch.setattr(cv2, "imdecode", fail)
    with pytest.raises(ImageReadError, match="odd.png") as info:
        read_image(path)
    assert "\n" not in str(info.value)


def test_label_and_trimap_skip_the_huge_png(tmp_path: Path, cli) -> None:
    photos = _photos(tmp_path / "photos")
    (photos / "giant.png").write_bytes(huge_png())
    code, out, err = cli("label", photos, "--out", tmp_path / "labels", "--backend", "opencv")
    assert code == 0, err
    assert "giant.png" in out + err and "Traceback" not in err
    masks = tmp_path / "masks"
    masks.mkdir()
    cv2.imwrite(str(masks / "a.png"), np.pad(np.full((8, 8), 255, np.uint8), 4))
    (masks / "giant.png").write_bytes(huge_png())
    code, out, err = cli("trimap", masks, "--out", tmp_path / "trimaps")
    assert code == 0, err
    assert "skipped giant.png" in err and (tmp_path / "trimaps" / "a.png").is_file()


def test_an_unexpected_error_is_not_doubled(cli, monkeypatch) -> None:
    from seglib.cli import sample

    def boom(_args: object) -> int:
        raise cv2.error("OpenCV(5.0.0) x.cpp:1: error: (-215) bad\n")

    monkeypatch.setattr(sample, "run", boom)
    code, _, err = cli("sample", "--out", "unused")
    assert code == 1
    line = _one_line(err)
    assert "error: error:" not in line and "cv2.error" in line


# -- 2: sample never replaces files it did not write, nor edited ones -------------------------
def test_sample_refuses_a_folder_with_other_files(tmp_path: Path, cli) -> None:
    out = tmp_path / "D"
    (out / "images").mkdir(parents=True)
    photo = next((SAMPLE / "images").glob("*.jpg"))
    shutil.copyfile(photo, out / "images" / "sample_000.jpg")
    (out / "sample.csv").write_text("notes\n")
    code, _, err = cli("sample", "--out", out, "--n", "4", "--size", "64")
    assert code == 2 and str(out) in _one_line(err)
    assert (out / "images" / "sample_000.jpg").read_bytes() == photo.read_bytes()
    assert (out / "sample.csv").read_text() == "notes\n"


def test_sample_rerun_keeps_edited_files(tmp_path: Path, cli) -> None:
    out = tmp_path / "S"
    assert cli("sample", "--out", out, "--n", "4", "--size", "64")[0] == 0
    edited = out / "trimaps" / "sample_001.png"
    cv2.imwrite(str(edited), np.full((64, 64), 2, np.uint8))
    mine = edited.read_bytes()
    tall = out / "masks" / "sample_003.png"
    cv2.imwrite(str(tall), np.zeros((64, 64), np.uint8))
    code, out_text, err = cli("sample", "--out", out, "--n", "3", "--seed", "5", "--size", "64")
    assert code == 0, err
    assert edited.read_bytes() == mine and tall.is_file()  # edited: neither replaced nor removed
    assert "trimaps/sample_001.png" in out_text + err and "kept" in out_text + err
    assert not (out / "images" / "sample_003.jpg").exists()  # unedited stale file: removed
    assert cli("sample", "--out", out, "--n", "3", "--seed", "5", "--size", "64")[0] == 0
    assert edited.read_bytes() == mine


# -- 3: predict keeps a hand-corrected trimap, as trimap does ---------------------------------
def test_predict_rerun_keeps_a_corrected_trimap(tmp_path: Path, cli, trained_run: Path) -> None:
    photos = _photos(tmp_path / "P", 3)
    pred = tmp_path / "PR"
    assert cli("predict", trained_run / "best.pt", photos, "--out", pred)[0] == 0
    fixed = sorted(pred.glob("*.png"))[1]
    cv2.imwrite(str(fixed), np.full(cv2.imread(str(fixed), 0).shape, 2, np.uint8))
    mine = fixed.read_bytes()
    code, out, err = cli("predict", trained_run / "best.pt", photos, "--out", pred)
    assert code == 0, err
    assert fixed.read_bytes() == mine
    assert "kept 3" in out and "--overwrite" in out
    code, out, err = cli("predict", trained_run / "best.pt", photos, "--out", pred,
                         "--overwrite")
    assert code == 0 and "wrote 3" in out and fixed.read_bytes() != mine


# -- 4: label does not take a folder holding someone else's candidates/ files -----------------
def test_label_refuses_a_folder_with_foreign_candidates(tmp_path: Path, cli) -> None:
    photos = _photos(tmp_path / "P")
    out = tmp_path / "U"
    (out / "candidates").mkdir(parents=True)
    stem = sorted(photos.glob("*.jpg"))[0].stem
    (out / "candidates" / f"{stem}.npz").write_text("mine\n")
    code, _, err = cli("label", photos, "--out", out, "--backend", "opencv")
    assert code == 2 and "candidates" in _one_line(err)
    assert (out / "candidates" / f"{stem}.npz").read_text() == "mine\n"


# -- 5: evaluate --csv never loses a user's rows ---------------------------------------------
def test_evaluate_keeps_a_csv_with_the_users_rows(tmp_path: Path, cli) -> None:
    truth = SAMPLE / "trimaps"
    pred = tmp_path / "pred"
    pred.mkdir()
    for p in sorted(truth.glob("*.png"))[:3]:
        shutil.copyfile(p, pred / p.name)
    table = tmp_path / "F.csv"
    assert cli("evaluate", pred, truth, "--csv", table)[0] == 0
    assert cli("evaluate", pred, truth, "--csv", table)[0] == 0  # the same results: fine
    mine = table.read_text() + "my_photo,0.5\n"
    table.write_text(mine)
    code, _, err = cli("evaluate", pred, truth, "--csv", table)
    assert code == 2 and "--overwrite" in _one_line(err)
    assert table.read_text() == mine
    assert cli("evaluate", pred, truth, "--csv", table, "--overwrite")[0] == 0
    assert "my_photo" not in table.read_text()


# -- 6: the notice names a $SEGLIB_CHECKPOINT that does not exist -----------------------------
def test_missing_env_checkpoint_is_named(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("SEGLIB_CHECKPOINT", "/nonexistent.pth")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    photos = _photos(tmp_path / "P", 1)
    code, out, err = cli("label", photos, "--out", tmp_path / "L", "--backend", "auto")
    assert code == 0, err
    notice = [ln for ln in (out + err).splitlines() if ln.startswith("notice")]
    assert notice and "/nonexistent.pth" in notice[0] and "SEGLIB_CHECKPOINT" in notice[0]
    code, _, err = cli("label", photos, "--out", tmp_path / "L2", "--backend", "sam")
    assert code == 2 and "/nonexistent.pth" in _one_line(err)
