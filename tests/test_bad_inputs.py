"""The bad-input matrix, stage by stage (label, trimap, train, predict, evaluate, course).

Every bad input must give either a one-line error that names the file and the fix (exit code
2, no traceback) or a skipped row with its reason while the run goes on.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import HUGE_HW, ROOT, BadFolder, Cli

from seglib.backends.sam_weights import PATCH_EMBED_KEY
from seglib.core.errors import SeglibError
from seglib.masks.candidates import Candidates
from seglib.masks.trimap import load_trimap


def assert_one_line_error(code: int, err: str, *names: str) -> str:
    """Exit code 2 (a SeglibError), stderr is exactly one ``error:`` line naming ``names``."""
    assert "Traceback" not in err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: ")
    for name in names:
        assert name in line, f"{name!r} not in {line!r}"
    return line


def error_after_progress(code: int, err: str, *names: str) -> str:
    """Like :func:`assert_one_line_error` when progress or notices came before the error."""
    assert "Traceback" not in err
    assert code == 2, err
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0].split("error:", 1)[1]), err
    for name in names:
        assert name in errors[0]
    return errors[0]


def labels_rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "labels.csv", newline="", encoding="utf-8") as f:
        return {r["stem"]: r for r in csv.DictReader(f)}


def check_outputs(bf: BadFolder, out: Path, skipped_lines: str) -> None:
    """One trimap per readable photo at the photo's own size; a reason for each skip;
    nothing for ignored files."""
    for name, outcome in bf.expect.items():
        stem = Path(name).stem
        tri = out / f"{stem}.png"
        if outcome == "ok" or (outcome == "either" and tri.exists()):
            assert load_trimap(tri).shape == bf.sizes[name], name
        else:
            assert not tri.exists(), name
            assert name in skipped_lines, f"no reason given for {name}"
    made = {p.stem for p in out.glob("*.png")}
    assert made <= set(bf.stems), made - set(bf.stems)
    assert "inner_photo" not in made and not any(s.startswith(".") for s in made)


# -- label ---------------------------------------------------------------------------------
def test_label_messy_folder_skips_with_reasons_and_keeps_sizes(bad_folder, cli: Cli,
                                                                tmp_path: Path) -> None:
    bf = bad_folder(n_good=1)
    out = tmp_path / "labels"
    code, stdout, err = cli("label", bf.images, "--out", out, "--backend", "opencv")
    assert code == 0 and "Traceback" not in err
    rows = labels_rows(out)
    assert set(rows) == set(bf.stems)  # junk, ._* and nested files give no row
    reasons = "\n".join(r["reason"] for r in rows.values())
    check_outputs(bf, out, reasons)
    for stem, name in bf.stems.items():
        r = rows[stem]
        assert r["file"] == name
        want = bf.expect[name]
        if want == "either":
            want = "ok" if r["status"] == "ok" else "skipped"
        assert r["status"] == want, (name, r)
        if want == "skipped":
            assert name in r["reason"] and "replace" in r["reason"]
            assert f"skipped {name}" in err
    # the 6000×4000 photo went to the backend downscaled; its trimap has the photo's size
    c = Candidates.load(out / "candidates" / "huge.npz")
    assert max(c.shape) == 1024 and c.shape == (683, 1024)
    assert load_trimap(out / "huge.png").shape == HUGE_HW
    assert rows["tiny"]["flagged"] == "1" and rows["tiny"]["reason"]  # 1×1: no object, flagged
    assert f"{sum(r['status'] == 'ok' for r in rows.values())}/{len(rows)} photos" in stdout


def test_label_folder_with_only_junk_is_one_line(tmp_path: Path, cli: Cli) -> None:
    junk = tmp_path / "photos"
    (junk / "nested").mkdir(parents=True)
    (junk / ".DS_Store").write_bytes(b"Bud1")
    (junk / "._shoe.jpg").write_bytes(b"\x00\x05\x16\x07")
    (junk / "nested" / "shoe.jpg").write_bytes(b"x")
    code, _, err = cli("label", junk, "--out", tmp_path / "out", "--backend", "opencv")
    assert_one_line_error(code, err, str(junk), "no .jpg/.jpeg/.png photos")
    code, _, err = cli("label", tmp_path / "nope", "--out", tmp_path / "out",
                       "--backend", "opencv")
    assert_one_line_error(code, err, "nope")


def write_sam_like(path: Path, embed_dim: int) -> Path:
    """A state dict with the image encoder's patch embedding of a real SAM width (random)."""
    torch.save({PATCH_EMBED_KEY: torch.randn(embed_dim, 3, 16, 16),
                "image_encoder.pos_embed": torch.randn(1, 4, 4, embed_dim)}, path)
    return path


def test_label_wrong_checkpoints_are_one_line(bad_folder, cli: Cli, tmp_path: Path,
                                              trained_run: Path) -> None:
    bf = bad_folder(n_good=1, huge=False)
    out = tmp_path / "out"
    text = tmp_path / "notes.pth"
    text.write_text("this is not a checkpoint")
    code, _, err = cli("label", bf.images, "--out", out, "--checkpoint", text)
    assert_one_line_error(code, err, "notes.pth", "python -m seglib weights")
    vit_b = write_sam_like(tmp_path / "my_vit_b.pth", 768)
    code, _, err = cli("label", bf.images, "--out", out, "--checkpoint", vit_b,
                       "--model-type", "vit_h")
    assert_one_line_error(code, err, "my_vit_b.pth", "vit_b", "--model-type vit_b")
    code, _, err = cli("label", bf.images, "--out", out, "--checkpoint", trained_run / "best.pt")
    assert_one_line_error(code, err, "best.pt", "not a SAM checkpoint")
    code, _, err = cli("label", bf.images, "--out", out, "--checkpoint", tmp_path / "gone.pth")
    assert_one_line_error(code, err, "gone.pth", "python -m seglib weights")
    assert not (out / "labels.csv").exists()


def test_label_with_sam_on_the_messy_folder(bad_folder, tmp_path: Path) -> None:
    """The SAM path (a tiny random SAM) sees at most 1024 pixels; trimaps keep photo sizes."""
    from toys import tiny_sam

    from seglib.backends.sam import SamProposer
    from seglib.labels.labeling import label_folder

    bf = bad_folder(n_good=1)
    seen: dict[tuple[int, int], tuple[int, ...]] = {}
    proposer = SamProposer(tiny_sam(seed=0), mode="prompt", device="cpu")

    def spy(image: np.ndarray) -> Candidates:
        seen[image.shape[:2]] = image.shape
        return proposer(image)

    out = tmp_path / "out"
    s = label_folder(bf.images, out, spy, backend="sam", mode="prompt")
    assert max(max(shape[:2]) for shape in seen.values()) == 1024
    assert (683, 1024) in seen and (1, 1) in seen
    rows = {r.stem: r.row() for r in s.rows}
    assert set(rows) == set(bf.stems)
    check_outputs(bf, out, "\n".join(r["reason"] for r in rows.values()))
    assert s.failed == 0 and s.ok == sum(r["status"] == "ok" for r in rows.values())


# -- trimap ----------------------------------------------------------------------------------
def as_mask_file(path: Path) -> None:
    """Replace a photo by a binary mask of the same size, channels, depth and format."""
    img = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    gray = img if img.ndim == 2 else img[..., :3].mean(axis=2)
    mask = np.where(gray > gray.mean(), np.iinfo(img.dtype).max, 0).astype(img.dtype)
    if img.ndim == 3:
        mask = np.repeat(mask[..., None], img.shape[2], axis=2)
    ok, buf = cv2.imencode(path.suffix, mask)
    assert ok
    path.write_bytes(buf.tobytes())


def test_trimap_command_on_messy_masks(bad_folder, cli: Cli, tmp_path: Path) -> None:
    bf = bad_folder(n_good=1)
    for name, outcome in bf.expect.items():
        if outcome == "ok":  # the same names, sizes and formats, holding masks
            as_mask_file(bf.images / name)
    out = tmp_path / "trimaps"
    code, stdout, err = cli("trimap", bf.images, "--out", out)
    assert code == 0 and "Traceback" not in err
    check_outputs(bf, out, err)
    for name, outcome in bf.expect.items():
        if outcome == "skipped":
            assert f"skipped {name}" in err
    assert f"({sum(v == 'skipped' for v in bf.expect.values())} skipped)" in stdout or \
        "(3 skipped)" in stdout  # the truncated JPEG may decode


def test_trimap_command_empty_folder(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / ".DS_Store").write_bytes(b"Bud1")
    code, _, err = cli("trimap", tmp_path / "masks", "--out", tmp_path / "t")
    assert_one_line_error(code, err, "masks")


# -- train -------------------------------------------------------------------------------------
TRAIN_FAST = ("--preset", "smoke", "--epochs", "1", "--size", "32", "--no-amp",
              "--device", "cpu")


def test_train_messy_folder_skips_bad_pairs_and_goes_on(bad_folder, cli: Cli,
                                                        tmp_path: Path) -> None:
    bf = bad_folder(n_good=6)
    tri = bf.write_trimaps(tmp_path / "trimaps")
    # a trimap with labels outside 1..3 (a 0/255 mask saved as a trimap) ...
    cv2.imwrite(str(tri / "gray.png"), np.where(np.eye(240, dtype=bool), 255, 0).astype(np.uint8))
    # ... and one whose size differs from its photo
    cv2.imwrite(str(tri / "alpha.png"), np.full((100, 240), 2, np.uint8))
    # a trimap without a photo
    cv2.imwrite(str(tri / "lonely.png"), np.full((240, 240), 2, np.uint8))
    code, stdout, err = cli("train", bf.images, tri, "--out", tmp_path / "run", *TRAIN_FAST)
    assert code == 0 and "Traceback" not in err, err
    skipped = [ln for ln in err.splitlines() if ln.startswith("skipped")]
    assert any("gray.png" in ln and "labels must be 1" in ln for ln in skipped)
    assert any("alpha.png" in ln and "240×100" in ln and "relabel" in ln for ln in skipped)
    assert any("zero.jpg" in ln and "empty file" in ln for ln in skipped)
    assert any("notes.jpg" in ln for ln in skipped)
    assert "lonely.png" in err  # reported as unpaired
    metrics = json.loads(stdout.splitlines()[0])
    n_bad = len(skipped)
    assert metrics["n_train"] + metrics["n_val"] == len(bf.expect) - n_bad
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    used = set(ckpt["config"]["val_stems"])
    assert used and not used & {"gray", "alpha", "zero", "notes"}


def test_train_asked_for_711_when_50_exist(sample_pairs, cli: Cli, tmp_path: Path) -> None:
    images, trimaps, stems = sample_pairs(50)
    code, stdout, err = cli("train", images, trimaps, "--out", tmp_path / "run", "--n", "711",
                            *TRAIN_FAST)
    assert code == 0, err
    assert "asked for 711 training photos but only 40 remain" in err
    assert "training on 40" in err
    assert json.loads(stdout.splitlines()[0])["n_train"] == 40


def test_train_folder_errors_are_one_line(tmp_path: Path, cli: Cli, sample_pairs) -> None:
    images, trimaps, stems = sample_pairs(4)
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli("train", empty, trimaps, "--out", tmp_path / "r1", *TRAIN_FAST)
    assert_one_line_error(code, err, str(empty), "no .jpg/.jpeg/.png photos")
    code, _, err = cli("train", images, empty, "--out", tmp_path / "r1", *TRAIN_FAST)
    assert_one_line_error(code, err, str(empty), "python -m seglib label")
    # stems that do not pair
    other = tmp_path / "other_trimaps"
    other.mkdir()
    for i, t in enumerate(sorted(trimaps.iterdir())):
        t.rename(other / f"photo_{i}.png")
    code, _, err = cli("train", images, other, "--out", tmp_path / "r1", *TRAIN_FAST)
    line = assert_one_line_error(code, err, str(images), str(other), "same file name stem")
    assert "sample_000.jpg" in line and "photo_0.png" in line
    assert not (tmp_path / "r1").exists()
    # only one usable pair
    one_img, one_tri = tmp_path / "one" / "img", tmp_path / "one" / "tri"
    one_img.mkdir(parents=True)
    one_tri.mkdir(parents=True)
    for i, src in enumerate(sorted(images.iterdir())[:2]):
        (one_img / src.name).write_bytes(src.read_bytes())
        (one_tri / f"{src.stem}.png").write_bytes(
            cv2.imencode(".png", np.full((240, 240), 2 if i == 0 else 9, np.uint8))[1].tobytes())
    code, _, err = cli("train", one_img, one_tri, "--out", tmp_path / "r2", *TRAIN_FAST)
    error_after_progress(code, err, str(one_tri), "fewer than 2 usable")


def test_train_resume_with_a_bad_last_pt(sample_pairs, cli: Cli, tmp_path: Path) -> None:
    images, trimaps, _ = sample_pairs(4)
    run = tmp_path / "run"
    code, _, err = cli("train", images, trimaps, "--out", run, *TRAIN_FAST)
    assert code == 0, err
    (run / "last.pt").write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = cli("train", images, trimaps, "--out", run, "--resume", *TRAIN_FAST)
    error_after_progress(code, err, "last.pt", "resume state is damaged", "new --out",
                         f"delete {run}")
    code, _, err = cli("train", images, trimaps, "--out", run, *TRAIN_FAST)
    assert_one_line_error(code, err, str(run), "--resume")


# -- predict ---------------------------------------------------------------------------------
def test_predict_messy_folder_keeps_each_photo_size(bad_folder, cli: Cli, tmp_path: Path,
                                                    trained_run: Path) -> None:
    bf = bad_folder(n_good=1)
    out = tmp_path / "pred"
    code, stdout, err = cli("predict", trained_run / "best.pt", bf.images, "--out", out,
                            "--device", "cpu")
    assert code == 0 and "Traceback" not in err
    check_outputs(bf, out, err)
    assert load_trimap(out / "huge.png").shape == HUGE_HW
    assert load_trimap(out / "tiny.png").shape == (1, 1)
    assert (out / "schuh_grün é.png").is_file() and (out / "my shoe.png").is_file()
    assert "skipped" in stdout


def test_predict_wrong_checkpoints_are_one_line(tmp_path: Path, cli: Cli, bad_folder,
                                                trained_run: Path) -> None:
    bf = bad_folder(n_good=1, huge=False)
    out = tmp_path / "pred"
    text = tmp_path / "model.pt"
    text.write_text("hello")
    code, _, err = cli("predict", text, bf.images, "--out", out)
    assert_one_line_error(code, err, "model.pt", "best.pt")
    sam = write_sam_like(tmp_path / "sam_vit_b_01ec64.pth", 768)
    code, _, err = cli("predict", sam, bf.images, "--out", out)
    assert_one_line_error(code, err, "sam_vit_b_01ec64.pth", "not a seglib checkpoint")
    code, _, err = cli("predict", tmp_path, bf.images, "--out", out)  # a folder without best.pt
    assert_one_line_error(code, err, "best.pt", "checkpoint not found")
    # a run checkpoint whose weights do not fit the model it names
    ckpt = torch.load(trained_run / "best.pt", weights_only=True)
    ckpt["config"]["arch"] = "seed"
    bad = tmp_path / "mismatch" / "best.pt"
    bad.parent.mkdir()
    torch.save(ckpt, bad)
    code, _, err = cli("predict", bad, bf.images, "--out", out)
    assert_one_line_error(code, err, str(bad), "does not match")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli("predict", trained_run / "best.pt", empty, "--out", out)
    assert_one_line_error(code, err, str(empty), "no .jpg/.jpeg/.png photos")
    assert not out.exists()


# -- evaluate --------------------------------------------------------------------------------
def test_evaluate_unpaired_and_bad_trimaps(tmp_path: Path, cli: Cli) -> None:
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    t = np.full((30, 40), 2, np.uint8)
    t[10:20, 10:30] = 1
    for d in (pred, truth):
        cv2.imwrite(str(d / "a.png"), t)
    cv2.imwrite(str(pred / "b.png"), t)
    cv2.imwrite(str(truth / "b.png"), t[:20])  # other size
    cv2.imwrite(str(pred / "c.png"), t)
    cv2.imwrite(str(truth / "c.png"), t * 100)  # labels outside 1..3
    code, stdout, err = cli("evaluate", pred, truth)
    assert code == 0, err
    assert "skipped b:" in stdout and "40×20" in stdout
    assert "skipped c:" in stdout and "labels must be 1" in stdout
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    cv2.imwrite(str(lonely / "z.png"), t)
    code, _, err = cli("evaluate", pred, lonely)
    assert_one_line_error(code, err, str(pred), str(lonely), "same file stem")


# -- course ----------------------------------------------------------------------------------
def test_course_empty_photo_folder_fails_before_any_notebook(
        tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill

    from seglib.course import runner as course

    def no_notebooks(*a: object, **k: object) -> None:
        raise AssertionError("a notebook was started for an empty folder")

    monkeypatch.setattr(papermill, "execute_notebook", no_notebooks)
    empty = tmp_path / "photos"
    empty.mkdir()
    (empty / ".DS_Store").write_bytes(b"Bud1")
    with pytest.raises(SeglibError, match="no .jpg/.jpeg/.png photos"):
        course.build_parameters("quick", images=empty, out=tmp_path / "o")
    code, _, err = cli("course", "--images", empty, "--out", tmp_path / "o", "--no-html")
    assert_one_line_error(code, err, str(empty))


def test_course_accepts_the_messy_folder(bad_folder, tmp_path: Path) -> None:
    from seglib.core.images import list_images, pick_photos
    from seglib.course import runner as course

    bf = bad_folder(huge=False)
    p = course.build_parameters("quick", images=bf.images, out=tmp_path / "o")
    assert p["images_dir"] == str(bf.images.resolve())
    photos = list_images(bf.images)
    assert {x.name for x in photos} == set(bf.expect)
    assert pick_photos(photos, "my shoe.jpeg, schuh_grün é") == [
        bf.images / "my shoe.jpeg", bf.images / "schuh_grün é.jpg"]


def test_compare_scoring_skips_other_sizes_and_names_unreadable_photos(
        bad_folder, tmp_path: Path, trained_run: Path) -> None:
    from seglib.core.errors import ImageReadError
    from seglib.core.images import list_images
    from seglib.course import compare
    from seglib.training.predict import load_model

    bf = bad_folder(huge=False)
    truth = bf.write_trimaps(tmp_path / "truth")
    cv2.imwrite(str(truth / "alpha.png"), np.full((100, 240), 2, np.uint8))  # other size
    runs = {"m": load_model(trained_run / "best.pt", "cpu")}
    readable = [p for p in list_images(bf.images) if bf.expect[p.name] == "ok"]
    rows = compare.score_runs(runs, readable, truth, progress=False)
    assert rows[0]["scored on"] == len(readable) - 1  # alpha.png has another size: left out
    with pytest.raises(ImageReadError, match="notes.jpg: not a readable") as info:
        compare.score_runs(runs, readable + [bf.images / "notes.jpg"], truth, progress=False)
    assert "\n" not in str(info.value)


def test_compare_load_runs_names_the_bad_checkpoint(tmp_path: Path) -> None:
    from seglib.course import compare

    run = tmp_path / "models" / "model_10"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(b"")
    with pytest.raises(SeglibError, match="model_10.best.pt") as info:
        compare.load_runs(tmp_path / "models", ["10"], "cpu")
    assert "\n" not in str(info.value)
    with pytest.raises(SeglibError, match="no trained model 161"):
        compare.load_runs(tmp_path / "models", ["10", "161"], "cpu")


# -- the real command line ------------------------------------------------------------------
def test_errors_from_a_real_process_have_no_traceback(tmp_path: Path) -> None:
    """The same one-line contract seen from outside: a subprocess, its exit code and stderr."""
    bad = tmp_path / "broken.pt"
    bad.write_text("not a checkpoint")
    photos = tmp_path / "photos"
    photos.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "seglib", "predict", str(bad), str(photos), "--out",
         str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "broken.pt" in proc.stderr


# -- photos sharing a stem, and the memory a 6000×4000 photo needs ---------------------------
def _twins(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    src = ROOT / "data" / "sample" / "images"
    for i, name in enumerate(("twin.jpg", "twin.PNG")):
        img = cv2.imread(str(src / f"sample_00{i}.jpg"))
        cv2.imwrite(str(folder / name.lower()), img)
        (folder / name.lower()).rename(folder / name)
    (folder / "single.jpg").write_bytes((src / "sample_002.jpg").read_bytes())


def test_label_photos_sharing_a_stem(tmp_path: Path, cli: Cli) -> None:
    _twins(tmp_path / "photos")
    code, _, err = cli("label", tmp_path / "photos", "--out", tmp_path / "out",
                       "--backend", "opencv")
    assert code == 0
    assert "skipped twin.jpg: twin.PNG has the same stem 'twin', which is ambiguous" in err
    assert sorted(labels_rows(tmp_path / "out")) == ["single", "twin"]
    assert labels_rows(tmp_path / "out")["twin"]["file"] == "twin.PNG"


def test_predict_photos_sharing_a_stem(tmp_path: Path, cli: Cli, trained_run: Path) -> None:
    _twins(tmp_path / "photos")
    code, stdout, err = cli("predict", trained_run / "best.pt", tmp_path / "photos", "--out",
                            tmp_path / "pred", "--device", "cpu")
    assert code == 0
    assert "twin.jpg" in err and "another photo is also named 'twin'" in err
    assert "wrote 2 trimaps" in stdout and "(1 skipped)" in stdout


def test_train_photos_sharing_a_stem(tmp_path: Path, cli: Cli) -> None:
    from conftest import copy_pairs

    images, trimaps = tmp_path / "images", tmp_path / "trimaps"
    copy_pairs(images, trimaps, 6)
    (images / "sample_000.png").write_bytes(
        cv2.imencode(".png", cv2.imread(str(images / "sample_001.jpg")))[1].tobytes())
    code, _, err = cli("train", images, trimaps, "--out", tmp_path / "run", *TRAIN_FAST)
    assert code == 0, err
    assert "sample_000.png" in err and "also named 'sample_000'" in err


MEMORY_SCRIPT = """
import sys
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(1)
from seglib.labels.labeling import label_folder
from seglib.backends.opencv import propose
from seglib.training.predict import load_model, predict_image
from seglib.core.images import read_image

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return rss("VmRSS")

photos, out, ckpt = map(Path, sys.argv[1:4])
model = load_model(ckpt, "cpu")
predict_image(model, np.zeros((64, 64, 3), np.uint8))
base = reset_peak()
label_folder(photos, out, propose, backend="opencv", mode="classical")
label_mb = rss("VmHWM") - base
img = read_image(photos / "huge.jpg")
predict_mb = 0
for clean in (True, False):  # the default trimap, and the raw most likely class (--raw)
    base = reset_peak()
    tri = predict_image(model, img, clean)
    assert tri.shape == img.shape[:2], tri.shape
    predict_mb = max(predict_mb, rss("VmHWM") - base)
    del tri
print(f"{label_mb:.0f} {predict_mb:.0f}")
"""


def test_a_6000x4000_photo_needs_little_memory(bad_folder, tmp_path: Path,
                                               trained_run: Path) -> None:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("measuring peak memory needs Linux /proc/self/clear_refs")
    bf = bad_folder(n_good=0)
    for name in list(bf.expect):
        if name != "huge.jpg":
            (bf.images / name).unlink()
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(bf.images), str(tmp_path / "out"),
         str(trained_run / "best.pt")], capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    label_mb, predict_mb = map(float, proc.stdout.split())
    photo_mb = HUGE_HW[0] * HUGE_HW[1] * 3 / 2**20  # 69 MB of RGB pixels
    assert label_mb < 4 * photo_mb, label_mb  # SAM/opencv see a 1024-pixel copy
    # one class's float logits at the photo's size (4/3 × photo) at a time, the running maximum
    # (4/3) and the labels (2/3): 228 MB measured; all three classes at once would be 4 × photo
    # before the argmax, and the 3-channel resize on one thread made a second copy (550 MB)
    assert predict_mb < 5 * photo_mb, predict_mb


def test_output_path_that_is_a_file_is_one_line(bad_folder, cli: Cli, tmp_path: Path) -> None:
    bf = bad_folder(n_good=1, huge=False)
    taken = tmp_path / "results.txt"
    taken.write_text("my notes")
    for argv in (["label", bf.images, "--out", taken, "--backend", "opencv"],
                 ["trimap", bf.images, "--out", taken]):
        code, _, err = cli(*argv)
        line = error_after_progress(code, err, "results.txt")
        assert "SEGLIB_DEBUG" not in line
    assert taken.read_text() == "my notes"


def _latin1_name(folder: Path, src: Path, suffix: str) -> Path:
    """Copy ``src`` to a file whose name is Latin-1 bytes, not UTF-8 ("café" from an old disk)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = os.fsencode(folder) + b"/caf\xe9" + suffix.encode()
    try:
        with open(target, "wb") as f:
            f.write(src.read_bytes())
    except (OSError, ValueError):
        pytest.skip("this file system does not store non-UTF-8 file names")
    return Path(os.fsdecode(target))


def test_file_name_that_is_not_utf8(tmp_path: Path, cli: Cli) -> None:
    photos, out = tmp_path / "photos", tmp_path / "labels"
    sample = ROOT / "data" / "sample"
    odd = _latin1_name(photos, sample / "images" / "sample_000.jpg", ".jpg")
    (photos / "sample_001.jpg").write_bytes((sample / "images" / "sample_001.jpg").read_bytes())
    code, _, err = cli("label", photos, "--out", out, "--backend", "opencv")
    assert code == 0, err
    assert load_trimap(out / f"{odd.stem}.png").shape == (240, 240)
    code, stdout, err = cli("label", photos, "--out", out, "--backend", "opencv")
    assert code == 0 and "2 already done" in stdout, err  # labels.csv reads back
    truth = tmp_path / "truth"
    _latin1_name(truth, sample / "trimaps" / "sample_000.png", ".png")
    code, _, err = cli("evaluate", out, truth, "--csv", tmp_path / "scores.csv")
    assert code == 0, err
    assert (tmp_path / "scores.csv").read_bytes().count(b"\n") == 3  # header, photo, ALL


# -- damaged files in a label output folder ------------------------------------------------
@pytest.fixture
def labeled(sample_pairs, cli: Cli, tmp_path: Path) -> tuple[Path, Path, list[str]]:
    images, _, stems = sample_pairs(4)
    out = tmp_path / "labels"
    assert cli("label", images, "--out", out, "--backend", "opencv")[0] == 0
    return images, out, stems


def assert_all_labeled(out: Path, stems: list[str]) -> None:
    rows = labels_rows(out)
    assert sorted(rows) == stems and all(r["status"] == "ok" for r in rows.values())
    for stem in stems:
        assert load_trimap(out / f"{stem}.png").shape == (240, 240)
        assert Candidates.load(out / "candidates" / f"{stem}.npz").shape == (240, 240)


def test_label_bad_overrides_file_is_one_line(labeled, cli: Cli) -> None:
    images, out, _ = labeled
    (out / "overrides.csv").write_text("photo;choice\nsample_000;2\n")
    code, _, err = cli("label", images, "--out", out, "--backend", "opencv")
    assert_one_line_error(code, err, "overrides.csv", "stem,candidate")
    code, _, err = cli("pick", out)
    assert_one_line_error(code, err, "overrides.csv", "stem,candidate")


def test_label_rerun_redoes_a_cut_short_candidates_file(labeled, cli: Cli) -> None:
    images, out, stems = labeled
    npz = out / "candidates" / "sample_001.npz"  # cut short by a full disk or a pulled USB stick
    npz.write_bytes(npz.read_bytes()[:100])
    code, _, err = cli("label", images, "--out", out, "--backend", "opencv")
    assert code == 0 and "Traceback" not in err, err
    assert_all_labeled(out, stems)


def test_label_rerun_redoes_a_cut_short_trimap(labeled, cli: Cli) -> None:
    images, out, stems = labeled
    tri = out / "sample_002.png"
    tri.write_bytes(tri.read_bytes()[:60])
    code, _, err = cli("label", images, "--out", out, "--backend", "opencv")
    assert code == 0 and "Traceback" not in err, err
    assert_all_labeled(out, stems)


def test_label_rerun_after_labels_csv_was_overwritten(labeled, cli: Cli) -> None:
    images, out, stems = labeled
    # saved over by a spreadsheet program: rebuilt from the files, or a one-line error
    (out / "labels.csv").write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4)
    code, _, err = cli("label", images, "--out", out, "--backend", "opencv")
    if code != 0:
        assert_one_line_error(code, err, "labels.csv", "delete it")
        (out / "labels.csv").unlink()
        assert cli("label", images, "--out", out, "--backend", "opencv")[0] == 0
    assert_all_labeled(out, stems)


def test_train_options_out_of_range(sample_pairs, cli: Cli, tmp_path: Path) -> None:
    from seglib.training.loop import train_run

    images, trimaps, _ = sample_pairs(4)
    for opt, value in (("--lr", "-1"), ("--lr", "nan"), ("--epochs", "0")):
        code, _, err = cli("train", images, trimaps, "--out", tmp_path / "r", opt, value,
                           "--preset", "smoke")
        assert_one_line_error(code, err, opt.lstrip("-"))
    with pytest.raises(SeglibError, match="epochs"):  # what `course -p epochs -3` passes on
        train_run(images, trimaps, tmp_path / "r", preset="smoke", epochs=-3, progress=False)
    assert not (tmp_path / "r").exists()
