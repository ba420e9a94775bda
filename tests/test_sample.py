from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from seglib.cli import main
from seglib.core.images import list_images, read_image
from seglib.course.sample import (
    KINDS,
    make_photo,
    photo_seed,
    sample_kinds,
    sample_photo,
    write_sample,
)
from seglib.masks.trimap import BORDER, load_trimap, mask_to_trimap

ROOT = Path(__file__).resolve().parents[1]
DISTRACTOR_KINDS = ("box", "floor", "leg")  # the kinds whose photo has a distractor
COMMITTED = ROOT / "data" / "sample"


def _gray(path: Path) -> np.ndarray:
    return cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)


@pytest.fixture(scope="module")
def photos() -> list:
    """The default sample (seed 0), in memory."""
    return [sample_photo(i) for i in range(48)]


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = write_sample(tmp_path / "a", n=7, seed=3, size=96)
    b = write_sample(tmp_path / "b", n=7, seed=3, size=96)
    assert [p.name for p in a] == [p.name for p in b] == [f"sample_{i:03d}.jpg" for i in range(7)]
    for pa, pb in zip(a, b, strict=True):
        assert np.array_equal(read_image(pa), read_image(pb))
        for sub in ("masks", "trimaps"):
            fa = tmp_path / "a" / sub / f"{pa.stem}.png"
            fb = tmp_path / "b" / sub / f"{pb.stem}.png"
            assert fa.read_bytes() == fb.read_bytes()
    assert (tmp_path / "a/sample.csv").read_bytes() == (tmp_path / "b/sample.csv").read_bytes()
    c = write_sample(tmp_path / "c", n=7, seed=4, size=96)
    assert not np.array_equal(_gray(tmp_path / "a/masks/sample_000.png"),
                              _gray(tmp_path / "c/masks/sample_000.png"))
    assert len(c) == 7


def test_files_agree_with_each_other(tmp_path: Path) -> None:
    write_sample(tmp_path, n=4, seed=1, size=128)
    with open(tmp_path / "sample.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == [f"sample_{i:03d}" for i in range(4)]
    for i, row in enumerate(rows):
        img = read_image(tmp_path / "images" / f"{row['name']}.jpg")
        mask = _gray(tmp_path / "masks" / f"{row['name']}.png")
        assert img.shape == (128, 128, 3) and mask.shape == (128, 128)
        assert set(np.unique(mask)) <= {0, 255}
        trimap = load_trimap(tmp_path / "trimaps" / f"{row['name']}.png")
        assert np.array_equal(trimap, mask_to_trimap(mask > 0))
        assert float(row["object_fraction"]) == pytest.approx((mask > 0).mean(), abs=1e-4)
        # the csv seed reproduces the photo
        again = make_photo(np.random.default_rng(int(row["seed"])), 128, row["kind"])
        assert np.array_equal(again.mask, mask > 0)
        assert int(row["seed"]) == photo_seed(1, i)


def test_committed_sample_is_a_fresh_generation(photos: list) -> None:
    assert COMMITTED.is_dir(), "data/sample is missing: run python -m seglib sample"
    images = list_images(COMMITTED / "images")
    assert [p.name for p in images] == [f"sample_{i:03d}.jpg" for i in range(48)]
    with open(COMMITTED / "sample.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["kind"] for r in rows] == [p.kind for p in photos]
    for i, photo in enumerate(photos):
        name = f"sample_{i:03d}"
        assert np.array_equal(_gray(COMMITTED / "masks" / f"{name}.png") > 0, photo.mask), name
        assert np.array_equal(load_trimap(COMMITTED / "trimaps" / f"{name}.png"),
                              mask_to_trimap(photo.mask)), name
        img = read_image(COMMITTED / "images" / f"{name}.jpg")
        # JPEG quality 92: close to the generated photo, not bit-equal
        assert np.abs(img.astype(int) - photo.image).mean() < 4, name


def test_every_kind_appears_and_distractors_are_frequent(photos: list) -> None:
    kinds = [p.kind for p in photos]
    assert set(kinds) == set(KINDS)
    assert sum(k in DISTRACTOR_KINDS for k in kinds) >= len(kinds) / 3
    assert sample_kinds(48) == kinds
    assert set(sample_kinds(len(KINDS), seed=9)) == set(KINDS)


def test_shoe_is_whole_and_inside_the_frame(photos: list) -> None:
    for i, p in enumerate(photos):
        m = p.mask
        assert m.shape == p.image.shape[:2] == (240, 240) and p.image.dtype == np.uint8
        assert 0.04 < m.mean() < 0.6, (i, m.mean())
        assert not (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()), i
        n, _, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
        # one shoe (a pair may be two blobs), no stray specks
        assert n - 1 <= (2 if p.kind == "pair" else 1), (i, p.kind, n - 1)
        assert stats[1:, cv2.CC_STAT_AREA].min() > 200, i


def test_mask_follows_the_drawn_shoe(photos: list) -> None:
    """Image edges concentrate on the mask outline, so the mask is where the shoe is drawn."""
    ratios = []
    for p in photos:
        g = cv2.cvtColor(p.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        grad = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
        border = mask_to_trimap(p.mask) == BORDER
        shifted = mask_to_trimap(np.roll(p.mask, 6, axis=1)) == BORDER
        ratios.append(grad[border].mean() / (grad[shifted].mean() + 1e-6))
    assert np.median(ratios) > 1.5, np.median(ratios)


def test_distractors_are_really_there(photos: list) -> None:
    for i, p in enumerate(photos):
        d = p.distractor
        assert not (d & p.mask).any(), i
        if p.kind not in DISTRACTOR_KINDS:
            assert not d.any(), i
            continue
        assert d.mean() > 0.05, (i, p.kind, d.mean())
        rest = ~d & ~p.mask
        diff = np.abs(p.image[d].mean(0) - np.median(p.image[rest], axis=0)).sum()
        assert diff > 60, (i, p.kind, diff)
        if p.kind == "floor":
            assert (d[-1] | p.mask[-1]).all() and not d[0].any(), i
        elif p.kind == "leg":
            assert d[0].any() and not d[-1].any(), i
            grown = cv2.dilate(d.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            assert (grown & p.mask).any(), f"{i}: the leg does not reach the shoe"
        elif p.kind == "box":
            ys, xs = np.nonzero(d)
            assert np.ptp(xs) > 0.3 * d.shape[1] and np.ptp(ys) > 0.15 * d.shape[0], i


def test_make_photo_options() -> None:
    rng = np.random.default_rng(5)
    p = make_photo(rng, size=64, kind="leg")
    assert p.image.shape == (64, 64, 3) and p.mask.shape == (64, 64) and p.kind == "leg"
    assert p.mask.any()
    assert make_photo(np.random.default_rng(1)).kind in KINDS
    with pytest.raises(ValueError, match="unknown sample kind"):
        make_photo(rng, kind="cat")
    with pytest.raises(ValueError, match="size"):
        make_photo(rng, size=8)


def test_cli_writes_the_sample(tmp_path: Path, capsys) -> None:
    out = tmp_path / "s"
    assert main(["sample", "--out", str(out), "--n", "3", "--seed", "2", "--size", "80"]) == 0
    assert "wrote 3 photos" in capsys.readouterr().out
    for sub, ext in (("images", "jpg"), ("masks", "png"), ("trimaps", "png")):
        files = sorted((out / sub).iterdir())
        assert [f.name for f in files] == [f"sample_{i:03d}.{ext}" for i in range(3)]
    assert read_image(out / "images/sample_002.jpg").shape == (80, 80, 3)
    assert _gray(out / "masks/sample_002.png").shape == (80, 80)
    assert main(["sample", "--out", str(out), "--n", "2", "--size", "80"]) == 0
    assert sorted(f.name for f in (out / "masks").iterdir()) == ["sample_000.png",
                                                                  "sample_001.png"]
    assert len(list((out / "images").iterdir())) == len(list((out / "trimaps").iterdir())) == 2
    assert main(["sample", "--out", str(out), "--n", "0"]) == 2
    assert "--n" in capsys.readouterr().err
