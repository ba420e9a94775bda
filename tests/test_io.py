from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from seglib.core.errors import ImageReadError, SeglibError
from seglib.core.files import write_bytes_atomic, write_png_atomic
from seglib.core.images import list_images, pair_by_stem, pick_photos, read_image


def _write(path: Path, img: np.ndarray) -> Path:
    ok, buf = cv2.imencode(path.suffix, img)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def test_list_images_filters_and_sorts(tmp_path: Path) -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    for name in ["b.JPG", "a.jpeg", "c.Png", "d.png"]:
        _write(tmp_path / name, img) if name.lower().endswith(".png") else (
            tmp_path / name
        ).write_bytes(b"x")
    for name in [".hidden.jpg", "._a.jpeg", ".DS_Store", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "e.png", img)
    assert [p.name for p in list_images(tmp_path)] == ["a.jpeg", "b.JPG", "c.Png", "d.png"]
    assert [p.name for p in list_images(tmp_path, recursive=True)][-1] == "e.png"


def test_list_images_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SeglibError, match="not a folder"):
        list_images(tmp_path / "nope")


def test_read_image_variants_return_rgb_uint8(tmp_path: Path) -> None:
    bgr = np.zeros((5, 6, 3), np.uint8)
    bgr[..., 2] = 200  # red in BGR
    rgb = read_image(_write(tmp_path / "c.png", bgr))
    assert rgb.shape == (5, 6, 3) and rgb.dtype == np.uint8 and rgb[0, 0].tolist() == [200, 0, 0]
    gray = read_image(_write(tmp_path / "g.png", np.full((5, 6), 80, np.uint8)))
    assert gray.shape == (5, 6, 3) and gray[0, 0].tolist() == [80, 80, 80]
    rgba = read_image(_write(tmp_path / "a.png", np.full((5, 6, 4), 30, np.uint8)))
    assert rgba.shape == (5, 6, 3)
    deep = read_image(_write(tmp_path / "d.png", np.full((5, 6), 65535, np.uint16)))
    assert deep.dtype == np.uint8 and deep.max() == 255
    big = read_image(_write(tmp_path / "big.png", np.zeros((300, 600, 3), np.uint8)), max_side=100)
    assert big.shape == (50, 100, 3)


@pytest.mark.parametrize("content, match", [(b"", "0 bytes"), (b"hello", "not a readable")])
def test_read_image_bad_files_name_the_file(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad photo é.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=match) as info:
        read_image(path)
    assert "bad photo é.jpg" in str(info.value)


def test_truncated_jpeg_is_an_error_or_an_image(tmp_path: Path) -> None:
    ok, buf = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    path = tmp_path / "t.jpg"
    path.write_bytes(buf.tobytes()[:200])
    try:
        img = read_image(path)
    except ImageReadError as exc:
        assert "t.jpg" in str(exc)
    else:
        assert img.shape == (64, 64, 3)


def test_atomic_writes_leave_no_temp_files(tmp_path: Path) -> None:
    write_bytes_atomic(tmp_path / "x" / "a.bin", b"123")
    write_png_atomic(tmp_path / "x" / "b.png", np.zeros((3, 3), np.uint8))
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["a.bin", "b.png"]


def test_pair_by_stem_reports_unpaired() -> None:
    imgs = [Path("a.jpg"), Path("b.jpg"), Path("c.jpg")]
    tris = [Path("b.png"), Path("c.png"), Path("z.png")]
    pairing = pair_by_stem(imgs, tris)
    assert [p[0].stem for p in pairing.pairs] == ["b", "c"]
    assert pairing.images_without_label == [Path("a.jpg")]
    assert pairing.labels_without_image == [Path("z.png")]
    assert "1 photos without trimap: a.jpg" in pairing.describe()


def test_atomic_writes_get_the_usual_file_mode(tmp_path: Path) -> None:
    import os

    umask = os.umask(0o022)
    os.umask(umask)
    path = write_bytes_atomic(tmp_path / "a.bin", b"1")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize(("shape", "side"), [((480, 640, 3), 160), ((1201, 899, 3), 480),
                                             ((97, 301, 3), 128), ((120, 90, 3), 160),
                                             ((5, 4000, 3), 160)])
def test_resize_max_side_is_the_area_shrink_it_always_was(shape: tuple, side: int) -> None:
    from seglib.core.images import fit_size, resize_image, resize_max_side

    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    h, w = shape[:2]
    s = side / max(h, w)
    if s >= 1:  # fits already: the same array back
        assert resize_max_side(img, side) is img and fit_size(img.shape, side) == (h, w)
        return
    old = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))),
                     interpolation=cv2.INTER_AREA)
    assert max(fit_size(img.shape, side)) == side
    assert np.array_equal(resize_max_side(img, side), old)
    assert np.array_equal(resize_image(img, old.shape[:2]), old)


def test_pick_photos_by_count_and_name(tmp_path: Path) -> None:
    paths = [tmp_path / f"p{i:02d}.jpg" for i in range(10)]
    assert pick_photos(paths, 3) == [paths[0], paths[3], paths[6]]
    assert pick_photos(paths, 50) == paths
    assert pick_photos(paths, ["p04", "p01.jpg"]) == [paths[4], paths[1]]
    assert pick_photos(paths, "p02, p03") == [paths[2], paths[3]]
    with pytest.raises(SeglibError, match="'nope' not in the folder"):
        pick_photos(paths, ["nope"])
