"""Issue 26, a hostile tester's probes of ``seglib fix`` / ``fix_label``: each test is a promise
a probe found broken (a label silently corrupted, a click ignored, a message that leads in a
circle, a user's column dropped). ``BUG`` in a docstring names what the probe saw."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from seglib.backends.prompts import OpencvPrompter, Prompts
from seglib.cli import main
from seglib.core.errors import SeglibError
from seglib.core.images import read_image
from seglib.labels.fixing import PROMPTS_CSV, fix_label, read_prompts

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
BOX = (20.0, 20.0, 220.0, 220.0)  # around the shoe of sample_000 (a 240x240 photo)
INSIDE = (120.0, 130.0)  # a pixel of sample_000's shoe


def _needs_sample() -> None:
    if not (SAMPLE / "images").is_dir():
        pytest.skip("data/sample is missing")


@pytest.fixture
def labeled(tmp_path: Path) -> tuple[Path, Path]:
    """Three sample photos labeled with the opencv backend: (images, labels)."""
    _needs_sample()
    images, out = tmp_path / "img", tmp_path / "labels"
    images.mkdir()
    for i in range(3):
        shutil.copyfile(SAMPLE / "images" / f"sample_{i:03d}.jpg", images / f"sample_{i:03d}.jpg")
    assert main(["label", str(images), "--out", str(out), "--backend", "opencv"]) == 0
    return images, out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {r["stem"]: r for r in csv.DictReader(f)}


def test_a_negative_click_inside_the_object_is_left_out() -> None:
    """BUG: a negative point inside the object (the hole of a loop, a sock on the shoe) was
    put back by the hole filling: the mask held the very pixel the person said was not it."""
    _needs_sample()
    prompter = OpencvPrompter()
    prompter.set_photo(read_image(SAMPLE / "images" / "sample_000.jpg"))
    for prompts in (Prompts(box=(5.0, 60.0, 235.0, 230.0), negative=(INSIDE,)),
                    Prompts(positive=((120.0, 160.0),), negative=(INSIDE,))):
        mask = prompter.mask(prompts)
        x, y = (int(v) for v in INSIDE)
        assert not mask[y, x], prompts
        assert 0.2 < mask.mean() < 0.6  # the rest of the shoe is still there


@pytest.mark.parametrize("box", [(10.0, 10.0, 11.0, 11.0), (0.0, 0.0, 240.0, 240.0),
                                 (-50.0, -50.0, 500.0, 500.0)])
def test_prompts_that_draw_no_object_or_the_whole_photo_write_nothing(
        labeled: tuple[Path, Path], box: tuple[float, ...], capsys) -> None:
    """BUG: a box on nothing wrote an all-background label, a box over the whole photo an
    all-object one, both with a person's confidence 1, replacing the label without a word."""
    _, labels = labeled
    before = _files(labels)
    with pytest.raises(SeglibError, match="nothing written") as err:
        fix_label(labels, "sample_000", box=box)
    assert "\n" not in str(err.value)
    assert _files(labels) == before
    assert main(["fix", str(labels), "sample_000", "--box", *map(str, box)]) == 2
    assert "nothing written" in capsys.readouterr().err and _files(labels) == before


def test_a_changed_photo_under_a_persons_label_says_how_to_fix_it(
        labeled: tuple[Path, Path], capsys) -> None:
    """BUG: fixing a prompted label whose photo was replaced said "label the folder again",
    but `label` keeps a person's label: the two commands sent the user round in a circle."""
    images, labels = labeled
    fix_label(labels, "sample_000", box=BOX)
    shutil.copyfile(SAMPLE / "images" / "sample_010.jpg", images / "sample_000.jpg")
    assert main(["label", str(images), "--out", str(labels), "--backend", "opencv"]) == 0
    with pytest.raises(SeglibError, match="--replace-kept") as err:
        fix_label(labels, "sample_000", box=BOX)
    assert "\n" not in str(err.value)
    # what the line says works: the photo is labeled again, then it can be fixed
    assert main(["label", str(images), "--out", str(labels), "--backend", "opencv",
                 "--replace-kept"]) == 0
    assert fix_label(labels, "sample_000", box=BOX).record.source == "prompted"


def test_prompts_csv_with_a_users_column_or_a_stem_twice_is_refused(
        labeled: tuple[Path, Path]) -> None:
    """BUG: a column added to prompts.csv (a note) was dropped by the next fix, and a stem in
    two rows was silently merged (the later row won); labels.csv refuses both. And the label
    was written before prompts.csv was read: a prompts.csv that did not read left a prompted
    label with no prompts recorded."""
    _, labels = labeled
    fix_label(labels, "sample_000", box=BOX)
    path = labels / PROMPTS_CSV
    good = path.read_text(encoding="utf-8")
    header, row = good.splitlines()[:2]
    extra = f"{header},note\n{row},the sock\n"
    twice = good + row.replace("[20.0,20.0,220.0,220.0]", "[30.0,30.0,210.0,210.0]") + "\n"
    for text, said in ((extra, "note"), (twice, "row 3")):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(SeglibError, match=said) as err:
            fix_label(labels, "sample_001", box=BOX)
        assert "\n" not in str(err.value) and "delete" in str(err.value)
        assert path.read_text(encoding="utf-8") == text  # nothing lost, nothing written
        assert _rows(labels / "labels.csv")["sample_001"]["source"] != "prompted"


def test_a_damaged_prompts_row_says_what_to_do(labeled: tuple[Path, Path]) -> None:
    """Unclear: a row whose prompts do not read stopped every fix with "not prompts seglib
    wrote" and no way out named."""
    _, labels = labeled
    fix_label(labels, "sample_000", box=BOX)
    path = labels / PROMPTS_CSV
    path.write_text(path.read_text(encoding="utf-8").replace('{""box""', '{""box"" x'),
                    encoding="utf-8")
    with pytest.raises(SeglibError, match="fix or delete the row") as err:
        read_prompts(labels)
    assert "row 2" in str(err.value) and "'sample_000'" in str(err.value)


def test_photos_of_another_folder_are_named_as_such(labeled: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    """Guard for the line above: with ``--images`` at another folder holding photos of the
    same names, the line must not advise labeling that folder into this label folder (that
    would replace the labels with labels of other photos)."""
    _, labels = labeled
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(SAMPLE / "images" / "sample_010.jpg", other / "sample_000.jpg")
    with pytest.raises(SeglibError, match="not the photo 'sample_000' was labeled from") as err:
        fix_label(labels, "sample_000", box=BOX, images_dir=other)
    assert "seglib label" not in str(err.value) and "--replace-kept" not in str(err.value)


def test_a_stem_typed_decomposed_finds_its_label(tmp_path: Path) -> None:
    """Unclear: `fix LABELS 'chaussure é'` with the é decomposed (NFD, as macOS's file names
    and their tab completion give it) said "no label for 'chaussure é' (labels: chaussure é)";
    ``import`` already compares stems in NFC."""
    import unicodedata

    _needs_sample()
    images, labels = tmp_path / "img", tmp_path / "labels"
    images.mkdir()
    shutil.copyfile(SAMPLE / "images" / "sample_000.jpg", images / "chaussure é.jpg")
    assert main(["label", str(images), "--out", str(labels), "--backend", "opencv"]) == 0
    typed = unicodedata.normalize("NFD", "chaussure é")
    result = fix_label(labels, typed, box=BOX)
    assert result.record.stem == "chaussure é"
    assert list(_rows(labels / PROMPTS_CSV)) == ["chaussure é"]
    assert _rows(labels / "labels.csv")["chaussure é"]["source"] == "prompted"
