"""Second round of hostile inputs: long names, EXIF orientation, links and folders named like
photos, ``~`` in paths, symbolic link loops, options out of range, damaged run files.

Every case ends in a result, a skipped row with its reason, or one ``error:`` line (exit 2).
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import Cli
from PIL import Image

from seglib import backends
from seglib.cli import main
from seglib.core.errors import SeglibError
from seglib.core.files import write_bytes_atomic
from seglib.core.images import list_images, read_image, scan_images
from seglib.masks.trimap import load_trimap


def one_error_line(code: int, err: str, *names: str) -> str:
    """Exit code 2 and the last stderr line is the only ``error:`` line, naming ``names``."""
    assert "Traceback" not in err, err
    assert code == 2, err
    errors = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    for name in names:
        assert name in errors[0], f"{name!r} not in {errors[0]!r}"
    return errors[0]


def write_photo(path: Path, hw: tuple[int, int] = (48, 64), seed: int = 0) -> Path:
    """A small photo: a bright rectangle on a dark background."""
    h, w = hw
    img = np.full((h, w, 3), 30, np.uint8)
    img[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = (200, 180, 90 + seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, img)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def exif_jpeg(path: Path, stored_hw: tuple[int, int], orientation: int) -> np.ndarray:
    """A JPEG stored at ``stored_hw`` with an EXIF Orientation tag; returns the stored RGB."""
    h, w = stored_hw
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 6] = (255, 0, 0)  # a red band on the stored left edge
    rgb[: h // 6, :] = (0, 0, 255)  # a blue band on the stored top edge
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    path.write_bytes(buf.getvalue())
    return rgb


# -- 1. long file names ----------------------------------------------------------------------
def test_a_long_legal_name_is_written(tmp_path: Path) -> None:
    name = "a" * 251 + ".png"  # 255 bytes: the longest name most file systems allow
    target = write_bytes_atomic(tmp_path / name, b"data")
    assert target.read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temp file left behind


def test_a_name_too_long_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(SeglibError) as exc:
        write_bytes_atomic(tmp_path / ("b" * 300 + ".png"), b"data")
    msg = str(exc.value)
    assert "b" * 300 + ".png" in msg and "too long" in msg and ".tmp" not in msg
    assert list(tmp_path.iterdir()) == []


def test_other_write_errors_name_the_users_file_not_the_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "o.png"
    target.mkdir()  # a folder where the file should go: the rename fails
    with pytest.raises(OSError) as exc:
        write_bytes_atomic(target, b"x")
    assert exc.value.filename == str(target) and not exc.value.filename2
    assert list(target.iterdir()) == [] and [p.name for p in tmp_path.iterdir()] == ["o.png"]


def test_label_with_a_250_character_photo_name_labels_the_whole_folder(tmp_path: Path,
                                                                       cli: Cli) -> None:
    photos = tmp_path / "photos"
    long_stem = "x" * 250
    for i, stem in enumerate(["a_first", long_stem, "z_last"]):
        write_photo(photos / f"{stem}.jpg", seed=i)
    out = tmp_path / "labels"
    code, stdout, err = cli("label", photos, "--out", out, "--backend", "opencv")
    assert code == 0, err
    assert {p.stem for p in out.glob("*.png")} == {"a_first", long_stem, "z_last"}
    assert load_trimap(out / f"{long_stem}.png").shape == (48, 64)
    assert "3/3 photos" in stdout


# -- 5. EXIF orientation ---------------------------------------------------------------------
@pytest.mark.parametrize("orientation, turn", [
    (1, lambda a: a),
    (3, lambda a: np.rot90(a, 2)),
    (6, lambda a: np.rot90(a, -1)),  # stored landscape, shown portrait (rotate 90° clockwise)
    (8, lambda a: np.rot90(a, 1)),
])
def test_read_image_applies_exif_orientation(tmp_path: Path, orientation: int, turn) -> None:  # noqa: ANN001
    stored = exif_jpeg(tmp_path / "phone.jpg", (240, 360), orientation)
    got = read_image(tmp_path / "phone.jpg")
    want = np.ascontiguousarray(turn(stored))
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 6  # JPEG noise only


def test_an_exif_rotated_photo_gets_an_upright_trimap_and_prediction(
        tmp_path: Path, cli: Cli, trained_run: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    exif_jpeg(photos / "phone.jpg", (240, 360), 6)  # every viewer shows it 240 wide, 360 high
    out = tmp_path / "labels"
    code, _, err = cli("label", photos, "--out", out, "--backend", "opencv")
    assert code == 0, err
    assert load_trimap(out / "phone.png").shape == (360, 240)
    code, _, err = cli("predict", trained_run / "best.pt", photos, "--out", tmp_path / "pred",
                       "--device", "cpu")
    assert code == 0, err
    assert load_trimap(tmp_path / "pred" / "phone.png").shape == (360, 240)


def test_read_image_keeps_16_bit_gray_and_alpha(tmp_path: Path) -> None:
    gray16 = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    got = read_image(tmp_path / "g16.png")
    assert got.shape == (3, 4, 3) and got.dtype == np.uint8
    assert np.array_equal(got[..., 0], (gray16 >> 8).astype(np.uint8))
    bgra = np.zeros((5, 6, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 255, 0  # blue, fully transparent
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    got = read_image(tmp_path / "a.png")
    assert got.shape == (5, 6, 3) and (got[..., 2] == 255).all() and (got[..., 0] == 0).all()


# -- 8. entries named like photos that are not photo files -----------------------------------
def messy_links(photos: Path) -> dict[str, str]:
    """A dangling link, a folder named like a photo and a link loop; the reason each gets."""
    (photos / "gone.jpg").symlink_to(photos / "deleted.jpg")
    (photos / "album.jpg").mkdir()
    (photos / "self.png").symlink_to(photos / "self.png")
    return {"gone.jpg": "broken symbolic link", "album.jpg": "a folder, not a photo",
            "self.png": "symbolic link loop"}


def test_scan_images_says_why_photo_named_entries_are_left_out(tmp_path: Path) -> None:
    write_photo(tmp_path / "good.jpg")
    reasons = messy_links(tmp_path)
    scan = scan_images(tmp_path)
    assert [p.name for p in scan.photos] == ["good.jpg"] == [p.name for p in
                                                              list_images(tmp_path)]
    got = {p.name: why for p, why in scan.skipped}
    assert set(got) == set(reasons)
    for name, why in reasons.items():
        assert why in got[name]


@pytest.mark.parametrize("command", ["label", "predict", "train"])
def test_commands_that_list_photos_report_links_and_folders(tmp_path: Path, cli: Cli,
                                                            sample_pairs, trained_run: Path,
                                                            command: str) -> None:
    images, trimaps, _ = sample_pairs(4)
    reasons = messy_links(images)
    out = tmp_path / "out"
    argv = {
        "label": ["label", images, "--out", out, "--backend", "opencv"],
        "predict": ["predict", trained_run / "best.pt", images, "--out", out, "--device", "cpu"],
        "train": ["train", images, trimaps, "--out", out, "--preset", "smoke", "--epochs", "1",
                  "--size", "16", "--no-amp", "--device", "cpu"],
    }[command]
    code, _, err = cli(*argv)
    assert code == 0, err
    for name, why in reasons.items():
        line = next((ln for ln in err.splitlines() if ln.startswith(f"skipped {name}")), "")
        assert why in line, err


# -- 10. ~ in path arguments, and symbolic link loops ----------------------------------------
def test_tilde_is_expanded_in_every_path_argument(tmp_path: Path, cli: Cli,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  sample_pairs) -> None:
    images, trimaps, _ = sample_pairs(4)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copytree(images, home / "photos")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("label", "~/photos", "--out=~/labels", "--backend", "opencv")
    assert code == 0, err
    assert len(list((home / "labels").glob("*.png"))) == 4
    code, _, err = cli("train", "~/photos", "~/labels", "--out=~/run", "--preset", "smoke",
                       "--epochs", "1", "--size", "16", "--no-amp", "--device", "cpu")
    assert code == 0, err
    assert (home / "run" / "best.pt").is_file()
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("where", ["input", "output"])
def test_a_symbolic_link_loop_is_one_line(tmp_path: Path, cli: Cli, sample_pairs,
                                          where: str) -> None:
    images, trimaps, _ = sample_pairs(3)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    argv = (["label", loop, "--out", tmp_path / "o"] if where == "input"
            else ["label", images, "--out", loop / "o"])
    code, _, err = cli(*argv, "--backend", "opencv")
    one_error_line(code, err, str(loop), "symbolic link loop")
    code, _, err = cli("trimap", loop, "--out", tmp_path / "t")
    one_error_line(code, err, str(loop), "symbolic link loop")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# -- 2, 4, 7. settings checked in one place, before anything runs ----------------------------
BAD_OPTIONS = [  # (command, option, value, words the one-line error holds)
    ("train", "--size", "100000", "from 16 to 1024"),
    ("train", "--size", "1", "from 16 to 1024"),
    ("train", "--lr", "inf", "positive finite"),
    ("train", "--lr", "0", "positive finite"),
    ("train", "--batch", "0", "from 2"),
    ("train", "--batch", "1", "batch norm needs two"),
    ("train", "--device", "gpu", "auto, cpu, cuda, mps"),
    ("label", "--limit", "0", "at least 1"),
    ("label", "--limit", "-1", "at least 1"),
    ("label", "--points-per-side", "0", "from 1 to 256"),
    ("trimap", "--width", "0", "from 1 to 255"),
    ("predict", "--device", "gpu", "auto, cpu, cuda, mps"),
    ("refine", "--rounds", "0", "from 1 to 20"),
    ("refine", "--size", "8", "from 16 to 1024"),
]


@pytest.mark.parametrize("command, option, value, words", BAD_OPTIONS)
def test_options_out_of_range_are_one_line_before_anything_runs(
        tmp_path: Path, cli: Cli, sample_pairs, command: str, option: str, value: str,
        words: str) -> None:
    images, trimaps, _ = sample_pairs(3)
    out = tmp_path / "out"
    argv = {"train": ["train", images, trimaps, "--out", out, "--preset", "smoke"],
            "label": ["label", images, "--out", out, "--backend", "opencv"],
            "trimap": ["trimap", trimaps, "--out", out],
            "predict": ["predict", tmp_path / "best.pt", images, "--out", out],
            "refine": ["refine", images, "--out", out]}[command]
    code, _, err = cli(*argv, option, value)
    line = one_error_line(code, err, option, words, value)
    assert line.count("\n") == 0 and not out.exists()


def test_a_loss_that_becomes_nan_stops_training_without_best_pt(tmp_path: Path, cli: Cli,
                                                                sample_pairs) -> None:
    images, trimaps, _ = sample_pairs(6)
    out = tmp_path / "run"
    code, stdout, err = cli("train", images, trimaps, "--out", out, "--preset", "smoke",
                            "--epochs", "2", "--size", "16", "--no-amp", "--device", "cpu",
                            "--lr", "1e30")
    line = one_error_line(code, err, str(out), "diverged", "--lr")
    assert "nan" in line and "wrote" not in stdout
    assert not (out / "best.pt").exists()


def test_training_presets_check_their_overrides_in_the_same_place() -> None:
    from seglib.training.presets import get_preset

    with pytest.raises(SeglibError, match="size must be a whole number from 16 to 1024"):
        get_preset("smoke").with_overrides(size=100000)
    with pytest.raises(SeglibError, match="lr must be a positive finite number"):
        get_preset("smoke").with_overrides(lr=float("nan"))
    assert get_preset("smoke").with_overrides(size=24.0).size == 24


BAD_COURSE_PARAMETERS = [  # (-p NAME, VALUE, words the one-line error holds)
    ("epochs", "abc", "-p epochs must be a whole number"),
    ("image_size", "-5", "-p image_size must be a whole number from 16 to 1024"),
    ("image_size", "100000", "from 16 to 1024"),
    ("device", "gpu", "-p device must be one of auto, cpu, cuda, mps"),
    ("backend", "foo", "-p backend must be one of " + ", ".join(backends.CHOICES)),
    ("backend", "sam", "python -m seglib weights vit_b"),
    ("label_limit", "0", "-p label_limit must be a whole number of at least 1"),
    ("sam_mode", "fast", "prompt, everything"),
    ("policy", "biggest", "foreground, seed"),
    ("arch", "resnet", "unet, seed"),
    ("show_photos", '["no_such_photo"]', "no_such_photo not in the photo folder"),
    ("show_photos", "0", "at least 1"),
    ("subsets", '["12"]', "-p subsets must be a list of 10, 161, 207, 711, 711B"),
    ("refine", "maybe", "-p refine must be true or false"),
    ("workers", "0", "-p workers (a number or 'auto') must be a whole number from 1 to 4096"),
    ("repeats", "0", "-p repeats must be a whole number from 1 to 100"),
    ("workers", "all", "-p workers (a number or 'auto') must be a whole number"),
]


@pytest.mark.parametrize("name, value, words", BAD_COURSE_PARAMETERS)
def test_bad_course_parameters_stop_before_notebook_01(
        tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, name: str, value: str,
        words: str) -> None:
    import papermill

    ran: list[str] = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda src, *a, **k: ran.append(src))
    monkeypatch.chdir(tmp_path)  # no ./checkpoints here
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cache/seglib either
    monkeypatch.delenv("SEGLIB_CHECKPOINT", raising=False)
    out = tmp_path / "course"
    code, _, err = cli("course", "--preset", "smoke", "--out", out, "--no-html",
                       "-p", name, value)
    one_error_line(code, err, words)
    assert ran == [] and not list(out.glob("*.ipynb"))


def test_good_course_parameters_pass_and_are_typed(tmp_path: Path) -> None:
    from seglib.course.runner import build_parameters

    p = build_parameters("smoke", out=tmp_path / "c", overrides={
        "epochs": 3.0, "image_size": None, "show_photos": 2, "device": "cpu",
        "subsets": ["10", "711B"], "backend": "opencv", "workers": 2.0, "repeats": 1})
    assert p["epochs"] == 3 and isinstance(p["epochs"], int) and p["workers"] == 2
    assert p["repeats"] == 1
    from seglib.course.runner import get_preset

    assert get_preset("quick").params["workers"] == "auto"  # every core for the real folder
    assert p["image_size"] is None and p["subsets"] == ["10", "711B"]


# -- 6. trimap refuses images that are not binary masks --------------------------------------
def test_trimap_on_a_folder_of_photos_is_one_line(tmp_path: Path, cli: Cli, sample_pairs) -> None:
    images, _, _ = sample_pairs(4)
    out = tmp_path / "trimaps"
    code, _, err = cli("trimap", images, "--out", out)
    line = one_error_line(code, err, str(images), "none of the 4 images is a binary mask")
    assert "python -m seglib label" in line and "skipped" not in err
    assert not list(out.glob("*.png")) if out.exists() else True


def test_trimap_skips_photos_and_grey_images_among_masks(tmp_path: Path, cli: Cli,
                                                          sample_pairs) -> None:
    images, _, stems = sample_pairs(2)
    masks = tmp_path / "masks"
    masks.mkdir()
    m = np.zeros((40, 50), np.uint8)
    m[10:30, 15:35] = 255
    cv2.imwrite(str(masks / "m255.png"), m)
    cv2.imwrite(str(masks / "m01.png"), (m > 0).astype(np.uint8))
    cv2.imwrite(str(masks / "m_rgb.png"), cv2.cvtColor(m, cv2.COLOR_GRAY2BGR))
    shutil.copy(images / f"{stems[0]}.jpg", masks / "photo.jpg")
    cv2.imwrite(str(masks / "ramp.png"), np.tile(np.arange(50, dtype=np.uint8) * 5, (40, 1)))
    out = tmp_path / "trimaps"
    code, stdout, err = cli("trimap", masks, "--out", out)
    assert code == 0, err
    assert {p.stem for p in out.glob("*.png")} == {"m255", "m01", "m_rgb"}
    assert (load_trimap(out / "m01.png") == load_trimap(out / "m255.png")).all()
    assert "skipped photo.jpg" in err and "colour image, not a binary mask" in err
    assert "skipped ramp.png" in err and "grey levels, not a binary mask" in err
    assert "wrote 3 trimaps" in stdout and "2 skipped" in stdout


# -- 9. damaged checkpoints: say which, and what still works ---------------------------------
def test_a_damaged_checkpoint_found_by_auto_falls_back_to_opencv(
        tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, sample_pairs) -> None:
    from seglib.backends.sam_weights import CHECKPOINTS

    images, _, _ = sample_pairs(3)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SEGLIB_CHECKPOINT", raising=False)
    bad = tmp_path / "checkpoints" / CHECKPOINTS["vit_b"].filename
    bad.parent.mkdir()
    bad.write_bytes(b"PK\x03\x04 an interrupted copy")
    code, _, err = cli("label", images, "--out", tmp_path / "labels", "--backend", "auto")
    assert code == 0, err
    notice = next(ln for ln in err.splitlines() if ln.startswith("notice:"))
    assert str(bad) in notice and "damaged" in notice and "opencv backend" in notice
    assert len(list((tmp_path / "labels").glob("*.png"))) == 3
    code, _, err = cli("label", images, "--out", tmp_path / "sam", "--backend", "sam")
    one_error_line(code, err, str(bad), "damaged", "python -m seglib weights vit_b",
                   "--backend opencv")


@pytest.fixture
def two_epoch_run(tmp_path: Path, sample_pairs) -> tuple[list[str], Path]:
    """A run stopped after 2 of 3 epochs (argv to resume it, its folder)."""
    images, trimaps, _ = sample_pairs(6)
    out = tmp_path / "run"
    argv = ["train", str(images), str(trimaps), "--out", str(out), "--preset", "smoke",
            "--size", "16", "--no-amp", "--device", "cpu"]
    assert main([*argv, "--epochs", "2"]) == 0
    return [*argv, "--epochs", "3", "--resume"], out


def test_a_damaged_last_pt_says_to_delete_it_not_to_pass_best_pt(two_epoch_run, cli: Cli
                                                                  ) -> None:
    argv, out = two_epoch_run
    (out / "last.pt").write_bytes(b"PK\x03\x04 cut short")
    code, _, err = cli(*argv)
    line = one_error_line(code, err, str(out / "last.pt"), "damaged", "delete")
    assert "pass the best.pt" not in line


def test_a_damaged_best_pt_does_not_block_resume(two_epoch_run, cli: Cli) -> None:
    from seglib.training.checkpoints import load_checkpoint

    argv, out = two_epoch_run
    (out / "best.pt").write_bytes(b"\x00" * 64)
    code, _, err = cli(*argv)
    assert code == 0, err
    assert f"notice: {out / 'best.pt'} is damaged; resuming from last.pt" in err
    assert load_checkpoint(out / "best.pt")["epoch"] >= 1  # written again
    assert load_checkpoint(out / "last.pt")["epoch"] == 3
    (out / "best.pt").write_bytes(b"\x00" * 64)  # a finished run: nothing would rewrite it
    code, _, err = cli(*argv)
    one_error_line(code, err, str(out / "best.pt"), "delete best.pt and last.pt")


# -- 11. messages name the user's files, not temporary ones ----------------------------------
def test_refine_trains_on_the_label_folder_itself_and_names_it(
        tmp_path: Path, cli: Cli, sample_pairs, monkeypatch: pytest.MonkeyPatch) -> None:
    import seglib.training.loop
    from seglib.labels.store import LabelStore
    from seglib.refine.rounds import _confident, refine_labels

    images, _, _ = sample_pairs(8)
    labels = tmp_path / "labels"
    assert cli("label", images, "--out", labels, "--backend", "opencv")[0] == 0
    confident = _confident(list(LabelStore(labels).records().values()), labels)
    assert len(confident) >= 3
    cv2.imwrite(str(labels / f"{confident[0]}.png"), np.full((10, 10), 2, np.uint8))
    seen: list = []

    class Stop(Exception):
        pass

    def fake_train_run(images_dir, trimaps, out, **kw):  # noqa: ANN001, ANN202
        seen.append((Path(trimaps), kw["dataset"].train.stems + kw["dataset"].val.stems))
        raise Stop

    monkeypatch.setattr(seglib.training.loop, "train_run", fake_train_run)
    logged: list[str] = []
    with pytest.raises(Stop):
        refine_labels(images, labels, rounds=1, size=16, min_photos=2, device="cpu",
                      progress=False, log=logged.append)
    (trimaps, stems), = seen
    assert trimaps == labels and sorted(stems) == sorted(confident[1:])
    bad = [m for m in logged if confident[0] in m]
    assert bad and str(labels / f"{confident[0]}.png") in bad[0]
    assert not any("seglib-refine" in m or "/tmp/" in m.replace(str(tmp_path), "") for m in logged)


@pytest.mark.parametrize("content, reason", [
    (b"", "not an .npz file"),
    (b"this is text", "not an .npz file"),
    (b"PK\x03\x04 cut short", "damaged or cut short"),
])
def test_a_junk_candidates_file_is_named_without_pickle_advice(tmp_path: Path, content: bytes,
                                                                reason: str) -> None:
    from seglib.masks.candidates import Candidates

    path = tmp_path / "c.npz"
    path.write_bytes(content)
    with pytest.raises(SeglibError) as exc:
        Candidates.load(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: not a seglib candidates file ({reason}")
    assert "allow_pickle" not in msg and "delete it and label again" in msg


def test_a_candidates_file_with_python_objects_says_so(tmp_path: Path) -> None:
    from seglib.masks.candidates import Candidates

    path = tmp_path / "c.npz"
    np.savez(path, shape=np.array([1, 2, 2]), bits=np.array([object()], dtype=object))
    with pytest.raises(SeglibError, match="holds Python objects") as exc:
        Candidates.load(path)
    assert "allow_pickle" not in str(exc.value)
