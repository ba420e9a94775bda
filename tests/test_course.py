from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from seglib import course
from seglib.cli import main
from seglib.errors import SeglibError


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


def test_pick_photos_by_count_and_name(tmp_path: Path) -> None:
    paths = [tmp_path / f"p{i:02d}.jpg" for i in range(10)]
    assert course.pick_photos(paths, 3) == [paths[0], paths[3], paths[6]]
    assert course.pick_photos(paths, 50) == paths
    assert course.pick_photos(paths, ["p04", "p01.jpg"]) == [paths[4], paths[1]]
    assert course.pick_photos(paths, "p02, p03") == [paths[2], paths[3]]
    with pytest.raises(SeglibError, match="'nope' not in the folder"):
        course.pick_photos(paths, ["nope"])


def test_build_parameters_checks_folders(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "trimaps").mkdir()
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


def test_run_course_rejects_unknown_parameters(tmp_path: Path, capsys) -> None:
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
