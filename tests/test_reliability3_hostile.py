"""Issue 23, root cause 4: hostile files and settings are refused in one line (or a skipped
row / annotation with its reason) before they reach C code or a Python error."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

from seglib.formats.coco import read_coco

SQUARE = [10.0, 10.0, 50.0, 10.0, 50.0, 50.0, 10.0, 50.0]


def _coco(path: Path, anns: list[dict], *, images: list[dict] | None = None,
          categories: list[dict] | None = None) -> Path:
    images = images or [{"id": i, "file_name": f"p{i}.jpg", "width": 100, "height": 80}
                        for i in range(1, len(anns) + 1)]
    for i, ann in enumerate(anns, start=1):
        ann.setdefault("id", i)
        ann.setdefault("image_id", i)
        ann.setdefault("category_id", 1)
    doc = {"images": images, "annotations": anns,
           "categories": categories or [{"id": 1, "name": "shoe"}]}
    path.write_text(json.dumps(doc, allow_nan=True))
    return path


def _read_guarded(path: Path) -> dict:
    """read_coco in a child with 2 GB of memory and 60 s: a hostile file that reached
    pycocotools would be killed (or segfault) there, not here."""
    code = textwrap.dedent(f"""
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        from seglib.formats.coco import read_coco
        got = read_coco({str(path)!r})
        print(json.dumps({{"masks": sorted(got.masks), "problems": got.problems}}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_hostile_polygons_and_sizes_are_refused_per_annotation(tmp_path: Path) -> None:
    nan, inf = float("nan"), float("inf")
    bad = {
        "nan": [[10.0, nan, 50.0, 10.0, 50.0, 50.0]],
        "inf": [[10.0, 10.0, inf, 10.0, 50.0, 50.0]],
        "huge": [[-1e9, -1e9, 1e9, -1e9, 1e9, 1e9, -1e9, 1e9]],
        "text": [["10", "10", "50", "10", "50", "50"]],
    }
    anns = [{"segmentation": seg} for seg in bad.values()] + [{"segmentation": [SQUARE]}]
    images = [{"id": i, "file_name": f"{name}.jpg", "width": 100, "height": 80}
              for i, name in enumerate([*bad, "good"], start=1)]
    images += [{"id": 6, "file_name": "absurd.jpg", "width": 10**9, "height": 10**9},
               {"id": 7, "file_name": "negative.jpg", "width": -5, "height": 80}]
    anns += [{"image_id": 6, "segmentation": [SQUARE]}, {"image_id": 7, "segmentation": [SQUARE]}]
    got = _read_guarded(_coco(tmp_path / "c.json", anns, images=images))
    assert got["masks"] == ["good"]
    for name in ("nan", "inf", "huge", "text"):
        assert "coordinate" in got["problems"][f"{name}.jpg"], got["problems"]
    for name in ("absurd", "negative"):
        assert "size" in got["problems"][f"{name}.jpg"], got["problems"]


def test_odd_ids_and_rle_counts_are_one_problem_line_each(tmp_path: Path) -> None:
    images = [{"id": 1, "file_name": "good.jpg", "width": 100, "height": 80},
              {"id": [2], "file_name": "listid.jpg", "width": 100, "height": 80},
              {"id": 3, "file_name": "negative.jpg", "width": 10, "height": 10},
              {"id": 4, "file_name": "odd.jpg", "width": 10, "height": 10},
              {"id": 5, "file_name": "accents.jpg", "width": 10, "height": 10}]
    anns = [{"image_id": 1, "segmentation": [SQUARE]},
            {"image_id": {"a": 1}, "segmentation": [SQUARE]},
            {"image_id": [2], "segmentation": [SQUARE]},
            {"image_id": 3, "segmentation": {"size": [10, 10], "counts": [-5, 105]}},
            {"image_id": 4, "segmentation": {"size": [10, 10], "counts": "~~~{}|"}},
            {"image_id": 5, "segmentation": {"size": [10, 10], "counts": "éé"}},
            {"id": [9], "image_id": 1, "category_id": {"x": 1}, "segmentation": [SQUARE]}]
    categories = [{"id": 1, "name": "shoe"}, {"id": [1], "name": "odd"}]
    got = read_coco(_coco(tmp_path / "c.json", anns, images=images, categories=categories))
    assert sorted(got.masks) == ["good"]
    assert got.masks["good"].annotations == 1
    text = json.dumps(got.problems)
    assert "unhashable" not in text and "Error" not in text
    assert "negative" in got.problems["negative.jpg"]
    assert "characters" in got.problems["odd.jpg"]
    assert "characters" in got.problems["accents.jpg"]
    assert any("id" in k or "id" in v for k, v in got.problems.items() if "listid" in k + v)
    for reason in got.problems.values():
        assert "\n" not in reason


def test_a_background_category_is_not_merged_into_the_object(tmp_path: Path) -> None:
    whole = [0.0, 0.0, 100.0, 0.0, 100.0, 80.0, 0.0, 80.0]
    anns = [{"segmentation": [SQUARE], "category_id": 1},
            {"image_id": 1, "segmentation": [whole], "category_id": 2}]
    images = [{"id": 1, "file_name": "p.jpg", "width": 100, "height": 80}]
    got = read_coco(_coco(tmp_path / "c.json", anns, images=images,
                          categories=[{"id": 1, "name": "shoe"},
                                      {"id": 2, "name": "background"}]))
    assert int(got.masks["p"].mask.sum()) < 100 * 80 // 2  # the square, not the whole
    assert got.masks["p"].annotations == 1
    assert any("background" in n for n in got.notes)


def test_an_empty_mask_is_a_skipped_annotation_not_an_empty_label(tmp_path: Path) -> None:
    empty = {"size": [80, 100], "counts": [8000]}
    anns = [{"segmentation": empty}, {"segmentation": [SQUARE]},
            {"image_id": 2, "segmentation": empty}]
    images = [{"id": 1, "file_name": "empty.jpg", "width": 100, "height": 80},
              {"id": 2, "file_name": "both.jpg", "width": 100, "height": 80}]
    got = read_coco(_coco(tmp_path / "c.json", anns, images=images))
    assert sorted(got.masks) == ["both"]
    assert got.masks["both"].annotations == 1 and got.masks["both"].mask.any()
    assert "empty" in got.problems["empty.jpg"] and "0" in got.problems["empty.jpg"]


@pytest.mark.parametrize("counts", ["", None])
def test_rle_without_counts_is_a_problem_line(tmp_path: Path, counts) -> None:
    anns = [{"segmentation": {"size": [80, 100], "counts": counts}}]
    got = read_coco(_coco(tmp_path / "c.json", anns))
    assert "p1.jpg" in got.problems and not got.masks


def test_import_says_which_category_it_took(tmp_path: Path, cli) -> None:
    from seglib.cli import main

    labels = tmp_path / "labels"
    photos = tmp_path / "photos"
    photos.mkdir()
    src = sorted((ROOT / "data" / "sample" / "images").glob("*.jpg"))[0]
    (photos / src.name).write_bytes(src.read_bytes())
    assert main(["label", str(photos), "--out", str(labels), "--backend", "opencv"]) == 0
    anns = [{"segmentation": [[10.0, 10.0, 200.0, 10.0, 200.0, 200.0, 10.0, 200.0]]},
            {"image_id": 1, "category_id": 2,
             "segmentation": [[0.0, 0.0, 240.0, 0.0, 240.0, 240.0, 0.0, 240.0]]}]
    images = [{"id": 1, "file_name": src.name, "width": 240, "height": 240}]
    path = _coco(tmp_path / "c.json", anns, images=images,
                 categories=[{"id": 1, "name": "shoe"}, {"id": 2, "name": "Background"}])
    code, out, err = cli("import", labels, "--coco", path)
    assert code == 0, err
    assert "left out the background category Background; took shoe" in out


# -- Ray ---------------------------------------------------------------------------------------
def _dead_port() -> int:
    import socket

    with socket.socket() as s:  # bound to localhost only, then closed: nothing answers there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_at_a_dead_address_fails_fast_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import time

    photos = tmp_path / "photos"
    photos.mkdir()
    src = sorted((ROOT / "data" / "sample" / "images").glob("*.jpg"))[0]
    (photos / src.name).write_bytes(src.read_bytes())
    address = f"127.0.0.1:{_dead_port()}"
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "seglib", "label", str(photos), "--out",
                           str(tmp_path / "labels"), "--backend", "opencv", "--engine", "ray",
                           "--address", address], capture_output=True, text=True, timeout=90,
                          cwd=ROOT)
    assert time.monotonic() - t0 < 30
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert address in lines[0] and "nothing answers" in lines[0]


def test_ray_starts_no_more_actors_than_items_and_slots(ray_local, monkeypatch) -> None:
    from parallel_toys import pid_setup, with_state

    from seglib.core import parallel

    sizes: list[int] = []
    real = parallel._RayPool.ready

    def ready(self, group):
        sizes.append(len(group))
        if len(group) > 2:  # more than the 2 CPUs: they would wait forever
            raise RuntimeError(f"{len(group)} actors on 2 CPUs")
        return real(self, group)

    monkeypatch.setattr(parallel._RayPool, "ready", ready)
    got = list(parallel.map_photos(with_state, [1], setup=pid_setup, workers=8,
                                   engine="ray"))
    assert [o.value[1] for o in got] == [2] and sizes == [1]  # one item: one actor
    sizes.clear()
    got = list(parallel.map_photos(with_state, [1, 2, 3, 4], setup=pid_setup, workers=8,
                                   engine="ray"))
    assert sorted(o.value[1] for o in got) == [2, 3, 4, 5] and sizes == [2]  # 2 CPUs


# -- one photo's trouble is that photo's row -------------------------------------------------------
@pytest.fixture
def labeled3(tmp_path: Path) -> tuple[Path, Path]:
    from seglib.cli import main

    photos, labels = tmp_path / "photos", tmp_path / "labels"
    photos.mkdir()
    for p in sorted((ROOT / "data" / "sample" / "images").glob("*.jpg"))[:3]:
        (photos / p.name).write_bytes(p.read_bytes())
    assert main(["label", str(photos), "--out", str(labels), "--backend", "opencv"]) == 0
    return photos, labels


@pytest.mark.parametrize("command", ["label", "pick"])
def test_a_read_only_trimap_fails_its_photo_not_the_run(labeled3, cli, monkeypatch,
                                                        command: str) -> None:
    import os

    from seglib.labels import store

    photos, labels = labeled3
    stuck = sorted(labels.glob("*.png"))[0]
    real = os.replace

    def replace(src, dst):  # as a trimap another user owns (or immutable) in a sticky folder
        if Path(dst).name == stuck.name:
            raise PermissionError(13, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    argv = (["label", photos, "--out", labels, "--backend", "opencv", "--overwrite"]
            if command == "label" else ["pick", labels, "--policy", "seed"])
    code, out, err = cli(*argv)
    assert code == 0, err
    assert "Traceback" not in err
    assert f"{stuck.stem}" in err and "Permission denied" in err
    rows = store.LabelStore(labels).records()
    assert rows[stuck.stem].status == "failed" and "Permission denied" in rows[stuck.stem].reason
    assert sum(r.ok for r in rows.values()) == 2


def test_a_very_long_thin_photo_is_a_skipped_row_with_its_reason(tmp_path: Path, cli) -> None:
    import cv2
    import numpy as np

    photos = tmp_path / "photos"
    photos.mkdir()
    img = np.full((100, 8000, 3), 200, np.uint8)
    img[30:70, 1000:3000] = (30, 60, 90)
    cv2.imwrite(str(photos / "banner.jpg"), img)
    src = sorted((ROOT / "data" / "sample" / "images").glob("*.jpg"))[0]
    (photos / src.name).write_bytes(src.read_bytes())
    code, out, err = cli("label", photos, "--out", tmp_path / "labels", "--backend", "opencv")
    assert code == 0 and "1 skipped" in out, err
    line = [ln for ln in err.splitlines() if "banner.jpg" in ln]
    assert len(line) == 1 and "8000×100" in line[0]
    assert "OpenCV" not in err and "Assertion" not in err


# -- settings ------------------------------------------------------------------------------------
def test_train_batch_1_is_refused_in_one_line(tmp_path: Path, cli) -> None:
    from conftest import copy_pairs

    copy_pairs(tmp_path / "images", tmp_path / "trimaps", 6)
    code, _, err = cli("train", tmp_path / "images", tmp_path / "trimaps", "--out",
                       tmp_path / "run", "--preset", "smoke", "--size", 32, "--epochs", 1,
                       "--batch", 1, "--no-amp", "--device", "cpu")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "--batch" in lines[0] and "2" in lines[0] and "ValueError" not in err
    assert not (tmp_path / "run").exists()
