from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from seglib.cli import main
from seglib.core.errors import SeglibError
from seglib.course import runner as course


def test_cli_help_names_presets_and_options() -> None:
    out = subprocess.run([sys.executable, "-m", "seglib", "course", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for word in ("--preset", "--images", "--checkpoint", "--out", "-p NAME VALUE", "smoke",
                 "demo", "quick", "full"):
        assert word in out


def test_parse_value_types() -> None:
    assert course.parse_value("5") == 5
    assert course.parse_value("0.5") == 0.5
    assert course.parse_value("False") is False
    assert course.parse_value("none") is None
    assert course.parse_value('["a", "b"]') == ["a", "b"]
    assert course.parse_value("some/path") == "some/path"
    with pytest.raises(SeglibError, match="JSON"):
        course.parse_value("[1, 2")


def test_build_parameters_checks_folders(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "trimaps").mkdir()
    with pytest.raises(SeglibError, match="no .jpg/.jpeg/.png photos in this folder"):
        course.build_parameters("quick", images=tmp_path / "images", out=tmp_path / "o")
    (tmp_path / "images" / "a.jpg").write_bytes(b"x")
    p = course.build_parameters("quick", images=tmp_path / "images", out=tmp_path / "o",
                                overrides={"epochs": 2})
    assert p["images_dir"] == str((tmp_path / "images").resolve())
    assert p["truth_dir"] == str((tmp_path / "trimaps").resolve())
    assert p["preset"] == "quick" and p["epochs"] == 2 and p["interactive"] is False
    with pytest.raises(SeglibError, match="photo folder not found"):
        course.build_parameters("quick", images=tmp_path / "missing", out=tmp_path / "o")
    with pytest.raises(SeglibError, match="no default photos; pass --images"):
        course.build_parameters("full", out=tmp_path / "o")
    with pytest.raises(SeglibError, match="unknown course preset 'huge'"):
        course.build_parameters("huge")
    with pytest.raises(SeglibError, match="checkpoint not found"):
        course.build_parameters("quick", images=tmp_path / "images", checkpoint=tmp_path / "x")


def test_course_with_a_file_that_is_not_a_checkpoint_fails_in_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "sam_vit_b.pth"
    fake.write_text("not a checkpoint")
    with pytest.raises(SeglibError) as err:
        course.run_course("smoke", checkpoint=fake, out=tmp_path / "o", html=False,
                          notebooks=course.notebook_paths()[:1], log=lambda s: None)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("01_sam_masks.ipynb failed at cell")
    assert str(fake) in msg


def _notebook(path: Path, code: str) -> Path:
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# test"),
        new_code_cell("out_dir = 'x'\nimages_dir = 'y'", metadata={"tags": ["parameters"]}),
        new_code_cell("import pathlib\nprint(out_dir)"),
        new_code_cell(code),
    ]
    nbformat.write(nb, str(path))
    return path


def test_run_course_names_the_failing_notebook_and_cell(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"x")
    good = _notebook(tmp_path / "01_good.ipynb",
                     "pathlib.Path(out_dir, 'reports').mkdir(exist_ok=True)\n"
                     "pathlib.Path(out_dir, 'reports', 'a.png').write_bytes(b'x')")
    bad = _notebook(tmp_path / "02_bad.ipynb", "x = 1\nraise ValueError('boom: wrong photo')")
    never = _notebook(tmp_path / "03_never.ipynb", "print('should not run')")
    out = tmp_path / "out"
    with pytest.raises(SeglibError) as err:
        course.run_course("quick", images=tmp_path, out=out, notebooks=[good, bad, never],
                          html=False, log=lambda s: None)
    msg = str(err.value)
    assert "\n" not in msg
    assert "02_bad.ipynb failed at cell" in msg and "`x = 1`" in msg
    assert "ValueError: boom: wrong photo" in msg
    assert (out / "01_good.ipynb").is_file() and (out / "reports" / "a.png").is_file()
    assert not (out / "03_never.ipynb").exists()
    executed = nbformat.read(str(out / "01_good.ipynb"), as_version=4)
    assert str(out.resolve()) in "".join(o.get("text", "") for c in executed.cells
                                         if c.cell_type == "code" for o in c.outputs)


def test_a_dead_kernel_is_reported_in_one_line_with_its_cell(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"x")
    dies = _notebook(tmp_path / "01_dies.ipynb", "import os\nos._exit(1)")
    with pytest.raises(SeglibError) as err:
        course.run_course("quick", images=tmp_path, out=tmp_path / "o", notebooks=[dies],
                          html=False, log=lambda s: None)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("01_dies.ipynb failed at cell ") and "`import os`" in msg
    assert "the kernel died" in msg and "run the same command again" in msg


def test_run_course_rejects_unknown_parameters(tmp_path: Path, capsys) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"x")
    nb = _notebook(tmp_path / "01.ipynb", "pass")
    with pytest.raises(SeglibError, match="unknown notebook parameter.*colour"):
        course.run_course("quick", images=tmp_path, out=tmp_path / "o", notebooks=[nb],
                          overrides={"colour": "red"}, log=lambda s: None)
    code = main(["course", "--preset", "full"])
    assert code == 2
    assert "pass --images" in capsys.readouterr().err


def test_declared_parameters_needs_one_tagged_cell(tmp_path: Path) -> None:
    nb = new_notebook()
    nb.cells = [new_code_cell("a = 1")]
    nbformat.write(nb, str(tmp_path / "n.ipynb"))
    with pytest.raises(SeglibError, match="exactly one cell tagged 'parameters'"):
        course.declared_parameters(tmp_path / "n.ipynb")


def _labeled_folder(tmp_path: Path) -> tuple[Path, Path]:
    """Three photos labeled by a fake proposer: #0 the square object, #1 the background."""
    import numpy as np

    from seglib.core.files import write_png_atomic
    from seglib.labels.labeling import label_folder
    from seglib.masks.candidates import Candidates
    from seglib.masks.trimap import mask_to_trimap, save_trimap

    images, truth = tmp_path / "images", tmp_path / "trimaps"
    obj = np.zeros((40, 40), bool)
    obj[10:30, 12:28] = True
    for i in range(3):
        img = np.full((40, 40, 3), 200, np.uint8)
        img[obj] = (30 * i, 60, 90)
        write_png_atomic(images / f"p{i}.png", img)
        save_trimap(truth / f"p{i}.png", mask_to_trimap(obj))

    def proposer(image: np.ndarray) -> Candidates:
        return Candidates(np.stack([obj, ~obj]), [0.80, 0.95], [0.9, 0.9],
                          ["a", "b"], "fake")

    label_folder(images, tmp_path / "labels", proposer, backend="fake", mode="test")
    return images, tmp_path / "labels"


def test_reviewer_override_and_repick_without_the_model(tmp_path: Path) -> None:
    import numpy as np

    from seglib.course import widgets
    from seglib.masks.trimap import OBJECT, load_trimap

    images, labels = _labeled_folder(tmp_path)
    before = load_trimap(labels / "p1.png")
    assert (before == OBJECT).sum() == 20 * 16  # foreground picks the square
    rv = widgets.Reviewer(labels, images)
    assert len(rv.stems) == 3 and rv.state("p1").photo.shape == (40, 40, 3)
    rv.choose("p1", "1")
    assert (labels / "overrides.csv").read_text() == "stem,candidate\np1,1\n"
    with pytest.raises(SeglibError, match="expected a number 0..1"):
        rv.choose("p1", "7")
    assert (labels / "overrides.csv").read_text() == "stem,candidate\np1,1\n"
    rv.repick()
    after = load_trimap(labels / "p1.png")
    assert (after == OBJECT).sum() == 40 * 40 - 20 * 16  # the override (background) is used
    assert np.array_equal(load_trimap(labels / "p0.png"), load_trimap(labels / "p2.png"))
    rv.choose("p1", None)
    assert "p1" not in (labels / "overrides.csv").read_text()
    # the widget builds and a click writes the override, without a display or a kernel
    ui = rv.widget()
    assert ui.children
    rv.index = rv.stems.index("p2")
    rv._apply("1")
    assert "p2,1" in (labels / "overrides.csv").read_text()
    import matplotlib.pyplot as plt

    plt.close("all")


def test_policy_report_scores_picks_against_truth(tmp_path: Path) -> None:
    from seglib.labels import review

    _, labels = _labeled_folder(tmp_path)
    rows = review.policy_report(labels, tmp_path / "trimaps", progress=False)
    assert [r["stem"] for r in rows] == ["p0", "p1", "p2"]
    assert all(r["seed"] == "1" and not r["agree"] for r in rows)
    assert all(r["iou_foreground"] == 1.0 and r["iou_seed"] == 0.0 for r in rows)
    s = review.summarize_report(rows)
    assert s["policy_agreement"] == 0.0 and s["mean_iou_label"] == 1.0
    assert s["photos_with_truth"] == 3
    assert all(r["seed_background"] and not r["foreground_background"] for r in rows)
    assert s["seed_background_rate"] == 1.0 and s["foreground_background_rate"] == 0.0
    from seglib.course import figures as viz

    fig = viz.policy_figure(rows)  # RQ3: background rate, confidence, IoU per policy
    assert len(fig.axes) == 3
    assert [round(p.get_height(), 2) for p in fig.axes[0].patches] == [1.0, 0.0]
    fig_no_truth = viz.policy_figure(review.policy_report(labels, None, progress=False))
    assert len(fig_no_truth.axes) == 2


def test_kernel_is_this_python_even_with_a_broken_python3_kernel(tmp_path: Path,
                                                                 monkeypatch) -> None:
    import json
    import os

    from jupyter_client.kernelspec import KernelSpecManager

    bogus = tmp_path / "data" / "kernels" / "python3"
    bogus.mkdir(parents=True)
    (bogus / "kernel.json").write_text(json.dumps(
        {"argv": ["/nonexistent/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
         "display_name": "broken", "language": "python"}))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "data"))
    with course.kernel_of_this_python() as name:
        spec = KernelSpecManager().get_kernel_spec(name)
        assert spec.argv[0] == sys.executable
        assert str(course.REPO) in spec.env["PYTHONPATH"]
    assert os.environ["JUPYTER_PATH"] == str(tmp_path / "data")  # restored


def test_missing_embedded_sample_is_written_into_the_output_folder(tmp_path: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.setattr(course, "SAMPLE_DIR", tmp_path / "no-sample")
    params = course.build_parameters("smoke", out=tmp_path / "out")
    images = Path(params["images_dir"])
    assert images == (tmp_path / "out" / "sample" / "images").resolve()
    assert len(list(images.glob("*.jpg"))) == 48
    assert params["truth_dir"] == str(images.parent / "trimaps")


# -- the output folder knows the photos it was made from -------------------------------------
def _photos(folder: Path, first: int) -> Path:
    from conftest import SAMPLE

    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(("IMG_0001", "IMG_0002", "IMG_0003")):
        src = SAMPLE / "images" / f"sample_{first + i:03d}.jpg"
        (folder / f"{name}.jpg").write_bytes(src.read_bytes())
    return folder


def _labels_notebook(path: Path) -> Path:
    """A stand-in for notebook 01: writes labels/ and counts its runs in OUT/runs.txt."""
    return _notebook(path, "p = pathlib.Path(out_dir)\n(p / 'labels').mkdir(exist_ok=True)\n"
                           "(p / 'labels' / 'labels.csv').write_text('stem\\n')\n"
                           "with open(p / 'runs.txt', 'a') as f:\n    f.write('ran\\n')")


def test_course_rerun_with_other_photos_stops_before_notebook_01(tmp_path: Path) -> None:
    a, b = _photos(tmp_path / "A", 0), _photos(tmp_path / "B", 3)
    nb = _labels_notebook(tmp_path / "01_labels.ipynb")
    out = tmp_path / "X"
    run = dict(out=out, notebooks=[nb], html=False, log=lambda s: None)
    course.run_course("quick", images=a, **run)
    manifest = json.loads((out / "course.json").read_text())
    assert manifest["images"] == str(a.resolve()) and manifest["preset"] == "quick"
    assert sorted(manifest["photos"]) == ["IMG_0001", "IMG_0002", "IMG_0003"]
    with pytest.raises(SeglibError) as err:
        course.run_course("quick", images=b, **run)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{out.resolve()}: was made from other photos")
    assert "3 photos changed (IMG_0001, IMG_0002, IMG_0003)" in msg
    assert "new --out" in msg and "--fresh" in msg
    assert (out / "runs.txt").read_text() == "ran\n"  # notebook 01 did not run again
    (b / "IMG_0004.jpg").write_bytes((b / "IMG_0001.jpg").read_bytes())
    course.run_course("quick", images=a, **run)  # the same photos: resumes
    assert (out / "runs.txt").read_text() == "ran\nran\n"
    with pytest.raises(SeglibError, match="was made with preset 'quick', not 'full'"):
        course.run_course("full", images=a, **run)
    said: list[str] = []
    course.run_course("quick", images=b, fresh=True, out=out, notebooks=[nb], html=False,
                      log=said.append)
    assert any("--fresh: deleted labels, course.json" in s for s in said)
    assert (out / "runs.txt").read_text() == "ran\nran\nran\n"  # not a course output: kept
    assert sorted(json.loads((out / "course.json").read_text())["photos"]) == [
        "IMG_0001", "IMG_0002", "IMG_0003", "IMG_0004"]


def test_course_refuses_an_out_it_cannot_check_or_that_is_an_input(tmp_path: Path,
                                                                   capsys) -> None:
    a = _photos(tmp_path / "A", 0)
    nb = _labels_notebook(tmp_path / "01_labels.ipynb")
    old = tmp_path / "old"  # written by an older version: labels/ but no course.json
    (old / "labels").mkdir(parents=True)
    (old / "labels" / "labels.csv").write_text("stem\n")
    with pytest.raises(SeglibError, match="no course.json .* pass --fresh"):
        course.run_course("quick", images=a, out=old, notebooks=[nb], html=False,
                          log=lambda s: None)
    assert not (old / "runs.txt").exists()
    for out, why in ((old / "labels", "label folder"), (a, "input folder")):
        assert main(["course", "--images", str(a), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and why in err and "Traceback" not in err
    assert sorted(p.name for p in a.iterdir()) == ["IMG_0001.jpg", "IMG_0002.jpg",
                                                   "IMG_0003.jpg"]
